"""Stage 7: learn from use. A dataset from feedback, conversations or a file,
LoRA training on the CPU, and the tuned model beside the base."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="7 · Fine-tuning", page_icon="🎓", layout="wide")
settings = ui.sidebar()

st.title("🎓 7 · Fine-tuning")
st.caption("Teach the bundled model from examples: a LoRA adapter trains on this CPU in a few "
           "minutes and every page can use it. Fine-tuning teaches **form** (a style, a "
           "format) cheaply; facts take many more epochs and still get confused: for facts, "
           "use RAG.")
can_train = ui.training_notice()
st.subheader("1 · Dataset")
dataset, held_out = ui.dataset_panel(settings)
st.subheader("2 · Train")
ui.train_panel(settings, dataset, held_out, can_train)
st.subheader("3 · Tuned models")
ui.tuned_models(settings)
