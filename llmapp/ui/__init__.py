"""The only part of llmapp that imports streamlit.

Pages call these helpers; the helpers call the rest of llmapp and render.
"""

from llmapp.ui.chat import chat_store, render_chat, render_message, respond
from llmapp.ui.controls import generation_controls
from llmapp.ui.settings import read_secrets, sidebar
from llmapp.ui.status import local_model_notice, provider_status, roadmap

__all__ = [
    "chat_store", "generation_controls", "local_model_notice", "provider_status",
    "read_secrets",
    "render_chat", "render_message", "respond", "roadmap", "sidebar",
]
