"""Stage 4: conversation memory, and exactly what the model received."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="4 · Memory", page_icon="🧠")
settings = ui.sidebar()
params, system_prompt = ui.generation_controls(settings, page="memory")
db = ui.conversation_store(settings)
store = ui.open_conversation(db)

st.title("🧠 4 · Memory")
st.caption("A model remembers only what is put back into its prompt. Pick a strategy, chat, "
           "and open the panel below to see exactly what the model received.")
ui.local_model_notice(settings)
ui.storage_notice(settings, "conversations")
memory = ui.memory_controls(ui.context_window(settings), params.max_tokens)

if prompt := ui.chat_prompt("memory", "Tell me something to remember, then ask about it"):
    ui.add_user(store, prompt)
ui.render_chat(store)
if ui.awaiting(store):
    ui.respond(store, settings, params, system_prompt, memory=memory)
ui.memory_panel(store)
ui.conversation_picker(db, store)
ui.export_buttons(db, store, system_prompt)
