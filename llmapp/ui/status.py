"""Provider status and the roadmap, as Home shows them."""

from __future__ import annotations

import streamlit as st

from llmapp.providers import PROVIDERS, active_provider
from llmapp.roadmap import PRODUCTION_PIECES, STAGES
from llmapp.settings import Settings
from llmapp.ui.memory import store_failed


def _sentence(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        text = text[:1].upper() + text[1:]
    return text + ("" if text.endswith(".") else ".")


def provider_status(settings: Settings) -> None:
    """The active provider and why, then every provider's status."""
    provider, reason = active_provider(settings)
    status = provider.status(settings)
    text = (f"**Active: {provider.label}** · `{provider.model_name(settings)}`  \n"
            f"Chosen because {reason}.  \n")
    if status.ok:
        st.success(text + _sentence(status.reason), icon="✅")
    else:
        st.error(text + "It cannot run: " + _sentence(status.reason), icon="⛔")
    notice_key = f"_llmapp_shutdown_{provider.name}_{provider.model_name(settings)}"
    if notice_key not in st.session_state:  # one request per model and session
        st.session_state[notice_key] = provider.shutdown_notice(settings)
    if st.session_state[notice_key]:
        st.warning(st.session_state[notice_key], icon="📅")
    lines = []
    for p in PROVIDERS.values():
        s = p.status(settings) if p is not provider else status
        mark = "✅" if s.ok else "❌"
        lines.append(f"- {mark} **{p.name}** · `{p.model_name(settings)}`: {s.reason}")
    st.markdown("\n".join(lines))


def roadmap() -> None:
    """The six stages, with a link to each built page and an honest
    'not built yet' for the rest."""
    for stage in STAGES:
        with st.container(border=True):
            if stage.built:
                st.page_link(stage.page, label=f"**{stage.number}. {stage.title}**", icon="✅")
            else:
                st.markdown(f"**{stage.number}. {stage.title}** · _not built yet_")
            st.caption(stage.summary)
    st.markdown("**Around the stages: the production pieces of an LLM system**")
    for piece in PRODUCTION_PIECES:
        with st.container(border=True):
            if piece.page:
                st.page_link(piece.page, label=f"**{piece.name}**", icon="🧩")
            else:
                st.markdown(f"🧩 **{piece.name}**")
            st.caption(piece.status)


def local_model_notice(settings: Settings) -> None:
    """An honest word about the bundled model, when it is the one in use."""
    provider, _ = active_provider(settings)
    if provider.name == "local" and settings.local_model_path:
        from pathlib import Path

        st.info(f"You are chatting with a **local model** on this machine's CPU, "
                f"`{Path(settings.local_model_path).name}` (picked in the sidebar's Model "
                "provider panel). The pages still treat it as small: tools are routed for it, "
                "and RAG answers quote the documents unless *Answer* is generative.", icon="💻")
    elif provider.name == "local":
        st.info("You are chatting with the **bundled local model**, SmolLM2-135M: fast and "
                "offline, but tiny. It often gets facts wrong and drifts on long answers. "
                "It shows the mechanics; for quality, add an OpenAI key or an "
                "OpenAI-compatible server in the sidebar.", icon="🐣")


def context_window(settings: Settings) -> int:
    """The active model's context window, in tokens."""
    provider, _ = active_provider(settings)
    return provider.context_window(settings)


def storage_notice(settings: Settings, what: str) -> None:
    """Say where ``what`` ("documents" or "conversations") is kept, and, when
    it is this machine's disk, that Community Cloud wipes it."""
    from llmapp.storage_place import local_storage

    place = local_storage(settings, what)
    if place is None:
        if what == "conversations" and not store_failed(settings):
            from llmapp.storage.urls import database_url, mask_url

            shown = mask_url(database_url(settings.database_url.get_secret_value()))
            st.caption(f"💾 Your conversations are kept in the database at `{shown}`.")
        return
    text = (f"Your {what} are kept on this machine's disk ({place.where}). Streamlit Community "
            f"Cloud wipes that disk when the app sleeps, reboots or is redeployed; set "
            f"`{place.setting}` to keep them elsewhere.")
    if place.on_cloud:
        st.warning(text, icon="💾")
    else:
        st.caption(f"💾 {text}")
