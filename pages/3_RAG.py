"""Stage 3: answers grounded in your documents, with citations."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="3 · RAG", page_icon="📚")
settings = ui.sidebar()

st.title("📚 3 · RAG over Chroma")
st.caption("Retrieve the chunks of your documents closest to the question, add them to the "
           "prompt, and answer from them, citing each one. Every source is shown.")
ui.local_model_notice(settings)
kb = ui.knowledge_base(settings)
if kb is None:
    st.stop()
name = ui.ingest_panel(kb)
ui.storage_notice(settings, "documents")
documents = ui.collection_manager(kb, name)
retrieval = ui.retrieval_controls(documents)
settings = ui.answer_mode_control(settings)
store = ui.open_conversation(ui.conversation_store(settings), page="rag")
ui.clear_button(store)

if prompt := ui.chat_prompt("rag", f"Ask the {name} collection", disabled=not documents):
    ui.add_user(store, prompt)
ui.render_rag_chat(store)
if ui.awaiting(store):
    ui.answer(kb, name, store, settings, retrieval)
