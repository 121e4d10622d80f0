"""Stage 1: one prompt, one streamed answer, and what it cost."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="1 · Simple prompt", page_icon="💬")
settings = ui.sidebar()
params, system_prompt = ui.generation_controls(settings, page="simple")
store = ui.open_conversation(ui.conversation_store(settings), page="simple")
ui.clear_button(store)

st.title("💬 1 · Simple prompt")
st.caption("A system prompt, sampling controls, and one model call per turn. The answer "
           "streams in as Markdown; under it: time to first token, tokens/s, tokens and cost.")
ui.local_model_notice(settings)

if prompt := ui.chat_prompt("simple", "Ask anything"):
    ui.add_user(store, prompt)
ui.render_chat(store)
if ui.awaiting(store):
    ui.respond(store, settings, params, system_prompt)
