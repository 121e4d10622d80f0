"""Stage 2: prompt templates, few-shot examples, chains and structured output."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="2 · Prompt chains", page_icon="🔗")
settings = ui.sidebar()
params, _ = ui.generation_controls(settings, page="chains", system=False)

st.title("🔗 2 · Prompt chains")
st.caption("A production system is rarely one call. Pick a technique: every step shows the "
           "prompt exactly as sent, and what came back.")
ui.local_model_notice(settings)
technique = ui.technique_picker()
if technique == "template":
    ui.template_panel(settings, params)
elif technique == "structured":
    ui.structured_panel(settings)
else:
    ui.chain_panel(settings, technique, params)
