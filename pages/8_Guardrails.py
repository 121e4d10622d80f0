"""Production piece: the safety filter. Try texts at every level, and edit
the protected phrases."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="Safety filter", page_icon="🛡️")
settings = ui.sidebar()

st.title("🛡️ Safety filter")
st.caption("A safety filter checks your message before the model sees it, and the reply while "
           "it streams. Its level fits the audience: child blocks the most, adult (the "
           "default) only the worst. Categories follow OpenAI's moderation categories.")
ui.safety_notice(settings)
ui.try_text(settings)
ui.safety_figures()
st.subheader("Topic scope")
st.caption("What this assistant is for. A system prompt can ask the model to stay on topic; "
           "a request that wraps an off-topic ask inside the topic gets past that. The topic "
           "scope checks each ask of the request before the model sees it.")
ui.topic_editor(settings)
ui.topic_vs_prompt(settings)
st.subheader("Protected phrases")
st.caption("Slogans and other text a reply must not copy. Matched fuzzily, so “just-do-it!” "
           "matches “Just Do It”.")
ui.phrase_editor(settings)
