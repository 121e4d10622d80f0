"""The sidebar: provider choice, keys, and the settings every page reads.

Values typed here live in this session's ``st.session_state`` only, so they
serve every page of the session and no other session. API keys go through a
password form that clears itself; they are kept as ``SecretStr`` and never
shown back, not even in part.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import streamlit as st
from pydantic import SecretStr

from llmapp import config
from llmapp.errors import ConfigError
from llmapp.providers import Provider, active_provider
from llmapp.settings import Settings, resolve

log = logging.getLogger(__name__)

_VALUES = "_llmapp_sidebar"
"""session_state key of the sidebar's typed values, by setting name."""
_PROVIDER_OPTIONS = ("auto",) + config.PROVIDERS


def _values() -> dict[str, Any]:
    return st.session_state.setdefault(_VALUES, {})


def _persist(name: str) -> None:
    _values()[name] = st.session_state[f"_w_{name}"]


def _persistent_widget(widget, label: str, name: str, default: Any = "", **kwargs: Any) -> Any:
    """A widget whose value survives page switches (Streamlit's documented
    "save widget values in a dummy key" pattern for multipage apps)."""
    key = f"_w_{name}"
    st.session_state[key] = _values().get(name, default)
    return widget(label, key=key, on_change=_persist, args=(name,), **kwargs)


def typed(name: str) -> Any:
    """The value typed for setting ``name`` this session (the sidebar layer
    of :func:`llmapp.settings.resolve`), or None."""
    return _values().get(name)


def set_typed(name: str, value: Any) -> None:
    """Type ``value`` for setting ``name`` this session, as the sidebar does
    (None forgets it); pages that edit a setting (the Guardrails page's topic
    scope) write here, so every page of the session resolves with it."""
    if value is None:
        _values().pop(name, None)
    else:
        _values()[name] = value


def read_secrets() -> dict[str, Any]:
    """``st.secrets`` as a flat dict; ``{}`` when there is no secrets file.

    A missing file is normal. A malformed one gets a sidebar warning, and the
    app carries on without it.
    """
    try:
        return {k: v for k, v in st.secrets.items() if not isinstance(v, Mapping)}
    except FileNotFoundError:
        return {}
    except Exception as exc:  # a TOML syntax error, reported by streamlit
        log.warning("could not read secrets.toml: %s", type(exc).__name__)
        st.sidebar.warning("`.streamlit/secrets.toml` could not be read; it is ignored. "
                           "Check its TOML syntax.")
        return {}


def _key_form(name: str, label: str, noun: str = "key") -> None:
    values = _values()
    if isinstance(values.get(name), SecretStr):
        st.caption(f"{label}: set for this session (hidden).")
        if st.button(f"Forget {noun}", key=f"_forget_{name}"):
            values.pop(name, None)
            st.rerun()
        return
    with st.form(f"_form_{name}", clear_on_submit=True, border=False):
        typed = st.text_input(label, type="password", placeholder=f"paste here, then Use {noun}",
                              help="Kept for this browser session only; never shown or logged.")
        if st.form_submit_button(f"Use {noun}") and typed.strip():
            values[name] = SecretStr(typed.strip())
            st.rerun()


def sidebar() -> Settings:
    """Render the provider settings in the sidebar and resolve all settings.

    Stops the page with a clear message if a setting is malformed.
    """
    from llmapp.ui.navigation import menu

    menu()
    provider_box = st.sidebar.expander("Model provider", expanded=False)
    with provider_box:
        _persistent_widget(st.selectbox, "Provider", "LLMAPP_PROVIDER", "auto",
                           options=_PROVIDER_OPTIONS,
                           help="auto: OpenAI when a key is set, else an OpenAI-compatible "
                                "server when its URL is set, else the bundled local model.")
        st.markdown("**OpenAI**")
        _key_form("OPENAI_API_KEY", "OpenAI API key")
        _persistent_widget(st.text_input, "OpenAI model", "OPENAI_MODEL",
                           placeholder=config.OPENAI_DEFAULT_MODEL)
        st.markdown("**OpenAI-compatible server** (Ollama, vLLM, LM Studio, llama.cpp)")
        _persistent_widget(st.text_input, "Base URL", "OPENAI_COMPATIBLE_BASE_URL",
                           placeholder="http://localhost:11434/v1")
        _persistent_widget(st.text_input, "Model name", "OPENAI_COMPATIBLE_MODEL",
                           placeholder=config.COMPATIBLE_DEFAULT_MODEL)
        _key_form("OPENAI_COMPATIBLE_API_KEY", "Server API key (optional)")
    _persistent_widget(st.sidebar.selectbox, "Safety level", "LLMAPP_SAFETY_LEVEL", "",
                       options=("",) + config.SAFETY_LEVELS,
                       format_func=lambda v: v or "default (LLMAPP_SAFETY_LEVEL)",
                       help="What the safety filter blocks, in your messages and in replies: "
                            "child blocks the most, adult (the default) only the worst, off "
                            "nothing. Try texts on the Safety filter page.")
    storage = st.sidebar.expander("Storage and cache", expanded=False)
    with storage:
        st.caption("Conversations and the response cache: a SQLite file by default, or a "
                   "PostgreSQL database that outlives the machine "
                   "(`postgresql://user:password@host:5432/dbname`).")
        _key_form("LLMAPP_DATABASE_URL", "Database URL", noun="URL")
        _persistent_widget(st.selectbox, "Response cache", "LLMAPP_CACHE", "",
                           options=("",) + config.CACHE_MODES,
                           format_func=lambda v: v or "default (LLMAPP_CACHE)",
                           help="semantic: a similar question (same meaning, checked word by "
                                "word) gets the cached reply; exact: the same question only. "
                                "Replies are cached for this browser session unless "
                                "LLMAPP_CACHE_SCOPE is shared.")
    typed = {k: v for k, v in _values().items() if v not in ("", None, "auto")}
    try:
        settings = resolve(sidebar=typed, secrets=read_secrets())
    except ConfigError as exc:
        st.sidebar.error(str(exc))
        st.error(f"A setting needs fixing before the model can run: {exc}")
        st.stop()
    with storage:
        from llmapp.ui.cache import clear_cache_button

        clear_cache_button(settings)
    with provider_box:  # drawn once the settings say where the models live; a pick
        from llmapp.ui.models import model_manager  # reruns the page, which then resolves with it

        model_manager(settings)
        _tuned_model_picker(settings)
    provider, reason = active_provider(settings)
    st.sidebar.caption(f"Model: **{provider.label}** · `{provider.model_name(settings)}`  \n"
                       f"Why: {reason}.")
    from llmapp.ui.feedback import SETTINGS

    st.session_state[SETTINGS] = settings  # feedback saves to this run's database
    return settings


def _tuned_model_picker(settings: Settings) -> None:
    """The tuned models (stage 7), when there are any: the local provider
    then runs the bundled model with the one picked."""
    from llmapp.tuning.models import list_models

    names = [m.name for m in list_models(settings)]
    if not names and not _values().get("LLMAPP_LOCAL_ADAPTER"):
        return
    st.markdown("**Tuned model** (the bundled model with a LoRA adapter)")
    _persistent_widget(st.selectbox, "Tuned model", "LLMAPP_LOCAL_ADAPTER", "",
                       options=["", *names], format_func=lambda v: v or "none: the base model",
                       help="Made on the Fine-tuning page. Applies when the provider is local.")


def active(settings: Settings) -> tuple[Provider, str]:
    """The active provider and the reason it was chosen."""
    return active_provider(settings)
