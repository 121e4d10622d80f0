"""Home: the roadmap of an LLM application, and which model is active."""

import streamlit as st

from llmapp import ui

st.set_page_config(page_title="llmapp · roadmap", page_icon="🧭", layout="wide")
settings = ui.sidebar()

st.title("🧭 Building an LLM application, stage by stage")
st.markdown(
    "Each page is one stage of the roadmap, running on a real model. With no API key and "
    "no network it uses the **bundled local model** (SmolLM2-135M, ~100 MB, on the CPU). "
    "Add an OpenAI key, or point the app at your own Ollama or vLLM server, in the "
    "sidebar's **Model provider** panel, and every page uses it."
)
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("The roadmap")
    ui.roadmap()
with right:
    st.subheader("Model providers")
    ui.provider_status(settings)
    st.caption("Configure in the sidebar, `.streamlit/secrets.toml`, environment variables or "
               "`.env`, in that order of precedence. See the README.")
