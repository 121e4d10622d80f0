"""Thumbs up or down, and a better answer, under every reply of every chat page."""

from __future__ import annotations

import logging

import streamlit as st

from llmapp.chat import ChatMessage, ChatStore
from llmapp.feedback import DOWN, UP, Feedback, feedback_for, save_feedback
from llmapp.storage import Database, StoreError

log = logging.getLogger(__name__)

SETTINGS = "_llmapp_settings"
"""session_state key where :func:`llmapp.ui.sidebar` leaves this run's settings."""
_WIDGET = {UP: 1, DOWN: 0}
_RATING = {1: UP, 0: DOWN, None: None}


def _database() -> tuple[Database | None, str | None]:
    """The app's database (``LLMAPP_DATABASE_URL``), or None and why not."""
    from llmapp.ui.memory import open_store

    settings = st.session_state.get(SETTINGS)
    if settings is None:
        return None, "the page has no settings yet"
    store, error = open_store(settings)
    return (store.database, None) if store is not None else (None, error)


def saved_feedback(store: ChatStore) -> dict[str, Feedback]:
    """The feedback already given on this chat's replies, by message id (one
    query; empty when the database cannot be opened)."""
    ids = [m.id for m in store if m.ratable]
    database, _ = _database()
    if database is None or not ids:
        return {}
    try:
        return feedback_for(database, ids)
    except StoreError as exc:
        log.warning("feedback not read: %s", exc)
        return {}


def _save(store: ChatStore, message: ChatMessage, **change) -> None:
    database, error = _database()
    if database is None:
        st.toast(f"Feedback not saved: {error}", icon="⚠️")
        return
    try:
        save_feedback(database, store, message, **change)
    except StoreError as exc:
        st.toast(f"Feedback not saved: {exc}", icon="⚠️")
    else:
        st.toast("Thanks, feedback saved." if change.get("rating", UP) is not None or
                 change.get("correction") else "Feedback taken back.", icon="🗳️")


def _rated(store: ChatStore, message: ChatMessage, key: str) -> None:
    _save(store, message, rating=_RATING[st.session_state.get(key)])


def feedback_row(store: ChatStore, message: ChatMessage, saved: Feedback | None = None) -> None:
    """Under a finished reply: thumbs up or down, and a box for a better
    answer. Nothing for a failed, withdrawn or empty reply."""
    if not message.ratable:
        return
    key = f"_llmapp_feedback_{message.id}"
    thumbs, better = st.columns([1, 4], vertical_alignment="center")
    with thumbs:
        st.feedback("thumbs", key=key, default=_WIDGET.get(saved.rating) if saved else None,
                    on_change=_rated, args=(store, message, key))
    with better, st.popover("Better answer", icon="✏️"), \
            st.form(f"_llmapp_better_{message.id}", border=False):
        text = st.text_area("What should the reply have said?",
                            value=(saved.correction or "") if saved else "",
                            height=150, help="Saved with the reply; stage 7 can train on "
                            "corrected replies. Leave it empty to take a correction back.")
        if st.form_submit_button("Save"):
            _save(store, message, correction=text)
