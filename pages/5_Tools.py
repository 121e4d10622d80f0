"""Stage 5: tool calling. The model picks a tool; you see the call and its result."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="5 · Tools", page_icon="🔧")
settings = ui.tool_choice_control(ui.sidebar())
params, _ = ui.generation_controls(settings, page="tools", system=False)
tools = ui.tool_picker(settings, ui.knowledge_base_quiet(settings))
store = ui.open_conversation(ui.conversation_store(settings), page="tools")
ui.clear_button(store)

st.title("🔧 5 · Tools")
st.caption("With tool calling, the app runs a function for the model and it reads the result: "
           "one tool round, then the answer. Each call shows what chose it, its arguments, "
           "result and time. The console below calls any tool directly.")
ui.tool_calling_notice(settings)
ui.manual_console(tools)

if prompt := ui.chat_prompt("tools", "Ask something a tool can answer"):
    ui.add_user(store, prompt)
ui.render_agent_chat(store)
if ui.awaiting(store):
    ui.agent_reply(store, settings, tools, max_model_calls=2, max_tool_calls=3, params=params)
