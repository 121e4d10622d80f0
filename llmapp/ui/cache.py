"""The response cache on the pages: which cache a reply uses, the bypass
button under a cached reply, and the sidebar's clear button."""

from __future__ import annotations

import uuid

import streamlit as st

from llmapp.cache import CacheUse, ResponseCache
from llmapp.chat import ChatStore
from llmapp.errors import LlmappError
from llmapp.settings import Settings
from llmapp.ui.memory import open_store

_BYPASS = "_llmapp_cache_bypass"


def session_scope(settings: Settings) -> str:
    """``shared``, or this browser session's own scope (``LLMAPP_CACHE_SCOPE``)."""
    if settings.cache_scope == "shared":
        return "shared"
    return "session:" + st.session_state.setdefault("_llmapp_session_id", uuid.uuid4().hex)


def _cache(settings: Settings) -> ResponseCache | None:
    store, _ = open_store(settings)
    if store is None:
        return None
    return ResponseCache(store.database, ttl_s=settings.cache_ttl_s,
                         threshold=settings.cache_threshold)


def cache_use(settings: Settings) -> CacheUse | None:
    """How the next reply uses the cache: None when it is off or its database
    cannot be opened; ``bypass`` once after "Ask the model instead"."""
    if settings.cache_mode == "off":
        return None
    cache = _cache(settings)
    if cache is None:
        return None
    return CacheUse(cache, settings.cache_mode, session_scope(settings),
                    bypass=bool(st.session_state.pop(_BYPASS, False)))


def _bypass(store: ChatStore, index: int) -> None:
    if len(store) - 1 == index and store.messages[index].role == "assistant":
        try:
            store.drop_last_reply()
        except LlmappError as exc:
            st.session_state["_llmapp_bypass_error"] = str(exc)
            return
        st.session_state[_BYPASS] = True


def bypass_button(store: ChatStore) -> None:
    """Under a cached last reply: ask the model instead, once."""
    if not len(store):
        return
    last = store.messages[-1]
    if last.role != "assistant" or last.stats is None or not (last.stats.cache or "") \
            .startswith("hit"):
        return
    if last.stats.cached_question and last.stats.cache == "hit-semantic":
        st.caption(f"Answered from the cache: you asked something close before "
                   f"(“{last.stats.cached_question}”).")
    st.button("Ask the model instead", key=f"_llmapp_bypass_{len(store)}", icon="🔄",
              on_click=_bypass, args=(store, len(store) - 1),
              help="Replace this cached reply with a new one from the model.")


def clear_cache_button(settings: Settings) -> None:
    """The sidebar's "Clear the response cache" button. The database is
    opened only when it is clicked, so pages that never reply (Home) don't
    load it."""
    if not st.button("Clear the response cache", key="_llmapp_clear_cache", icon="🧹"):
        return
    cache = _cache(settings)
    if cache is None:
        st.caption("The response cache's database cannot be opened.")
        return
    try:
        st.caption(f"Cleared {cache.clear()} cached replies.")
    except LlmappError as exc:
        st.caption(f"The response cache could not be cleared: {exc}")
