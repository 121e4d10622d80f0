"""The app's entry point: the menu, with the roadmap's stages numbered and the
production pieces grouped (``streamlit run Home.py``)."""

import streamlit as st

from llmapp import ui

st.navigation(ui.navigation()).run()
