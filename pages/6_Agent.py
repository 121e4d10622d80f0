"""Stage 6: an agent that plans tool calls until it can answer, with its steps shown."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="6 · Agent", page_icon="🤖")
settings = ui.tool_choice_control(ui.sidebar())
params, _ = ui.generation_controls(settings, page="agent", system=False)
max_model_calls, max_tool_calls = ui.agent_limits()
tools = ui.tool_picker(settings, ui.knowledge_base_quiet(settings))
db = ui.conversation_store(settings)
store = ui.open_conversation(db, page="agent")

st.title("🤖 6 · Agent")
st.caption("The agent thinks, calls a tool, reads the result, and repeats until it can answer "
           "(ReAct), within the limits in the sidebar. Every step shows as it happens.")
ui.tool_calling_notice(settings)
ui.manual_console(tools)

if prompt := ui.chat_prompt("agent", "Ask something that needs a tool"):
    ui.add_user(store, prompt)
ui.render_agent_chat(store)
if ui.awaiting(store):
    ui.agent_reply(store, settings, tools, max_model_calls=max_model_calls,
                   max_tool_calls=max_tool_calls, params=params)
ui.conversation_picker(db, store)
