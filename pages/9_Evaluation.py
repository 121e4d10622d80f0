"""Production piece: evaluation. Answer a question set from a collection,
grade the answers with a judge model, and compare runs."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="Evaluation", page_icon="⚖️", layout="wide")
settings = ui.sidebar()

st.title("⚖️ Evaluation")
st.caption("One run answers every question of a set from a collection, as the RAG page does, "
           "and a judge model grades each answer from 0 to 3: correctness against the "
           "reference, faithfulness to the retrieved chunks, relevance, readability. Runs are "
           "saved, so a change (a model, a prompt, the chunking) can be compared with the last.")
kb = ui.knowledge_base(settings)
if kb is None:
    st.stop()
questions, collection = ui.question_set(kb)
judge = ui.judge_picker(settings)
ui.run_panel(settings, kb, collection, questions, judge)
tab_rows, tab_compare, tab_people, tab_tuned = st.tabs(
    ["A run", "Compare runs", "Judge vs people", "Base vs tuned"])
with tab_rows:
    ui.run_rows(settings)
with tab_compare:
    ui.compare_runs(settings)
with tab_people:
    ui.judge_vs_people(settings, judge)
with tab_tuned:
    ui.base_vs_tuned(settings)
