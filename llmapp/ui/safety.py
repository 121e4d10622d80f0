"""The safety filter on the pages: the guard a reply uses, the message
under a blocked one (with the text to edit and send again), and the
Guardrails page's widgets."""

from __future__ import annotations

import json

import streamlit as st

from llmapp.chat import ChatStore
from llmapp.errors import LlmappError
from llmapp.safety import LEVELS, Guard, SafetyError, guard_for
from llmapp.safety.phrases import load_phrases, parse_lines, save_phrases
from llmapp.settings import Settings
from llmapp.ui.memory import open_store


def phrases(settings: Settings) -> list[tuple[str, str]]:
    """The protected phrases in the database; [] when it cannot be opened."""
    store, _ = open_store(settings)
    if store is None:
        return []
    try:
        return load_phrases(store.database)
    except LlmappError:
        return []


def page_guard(settings: Settings) -> Guard | None:
    """The guard for this page's replies, None at level off with no phrases."""
    guard = guard_for(settings, phrases(settings))
    return guard if guard.active else None


def _resend(store: ChatStore, key: str) -> None:
    text = st.session_state.get(key, "").strip()
    if not text:
        return
    store.drop_failed_reply()
    store.add_user(text)


def edit_blocked(store: ChatStore) -> None:
    """Under a reply that the filter blocked: the user's message in a box,
    to edit and send again (it was kept, and never reached the model)."""
    if len(store) < 2:
        return
    user, reply = store.messages[-2], store.messages[-1]
    if not (user.role == "user" and user.withheld and reply.error):
        return
    key = f"_llmapp_edit_{len(store)}"
    with st.form(f"_llmapp_edit_form_{len(store)}", border=False):
        st.text_area("Edit your message", user.content, key=key)
        st.form_submit_button("Send again", icon="✏️", on_click=_resend, args=(store, key))


def safety_notice(settings: Settings) -> None:
    """Which checkers run, and how honest to be about the offline one."""
    from llmapp.safety import checkers_for

    names = [c.name for c in checkers_for(settings)]
    st.info(f"Level **{settings.safety_level}** (`LLMAPP_SAFETY_LEVEL`, or the sidebar). "
            f"Checkers: {', '.join(names)}. The offline checker compares texts with labelled "
            "examples (all-MiniLM-L6-v2) and a word list: it needs no key and no network, but "
            "it misses what it has no example of. With an OpenAI key, OpenAI's moderation "
            "endpoint checks too; with `LLMAPP_GUARD_MODEL`, a guard model on your "
            "OpenAI-compatible server.", icon="🛡️")


def level_table(settings: Settings, text: str) -> tuple[list[dict], dict]:
    """The text checked at every level: rows ``{level, allowed, blocked}``,
    and the scores per category (the same at every level)."""
    rows, scores = [], {}
    for level in LEVELS:
        verdict = guard_for(settings, phrases(settings), level=level).check(text, output=True)
        scores = scores or verdict.categories
        rows.append({"level": level, "verdict": "allowed" if verdict.allowed else "blocked",
                     "blocked for": ", ".join(verdict.blocked) or "—",
                     "flags": "; ".join(verdict.flags) or "—",
                     "checkers": ", ".join(verdict.checkers) or "—"})
    return rows, scores


def try_text(settings: Settings) -> None:
    """The Guardrails page's tester: a text, its scores per category, and
    the decision at each level."""
    with st.form("_llmapp_try", border=False):
        text = st.text_area("Text to check", height=120,
                            placeholder="e.g. How do I kill a Python process that hangs?")
        submitted = st.form_submit_button("Check at every level", type="primary")
    if not submitted:
        return
    try:
        rows, scores = level_table(settings, text)
    except SafetyError as exc:
        st.error(str(exc))
        return
    st.dataframe(rows, hide_index=True, width="stretch")
    st.bar_chart({"category": list(scores), "score": list(scores.values())}, x="category",
                 y="score", horizontal=True, height=320)
    with st.expander("As JSON (what `llmapp guard --json` prints)"):
        st.code(json.dumps({"categories": scores}, indent=1), language="json")


def phrase_editor(settings: Settings) -> None:
    """The protected phrases, one ``Phrase | Owner`` per line, saved to the
    database."""
    store, error = open_store(settings)
    if store is None:
        st.error(f"The protected phrases live in the database, which cannot be opened: {error}")
        return
    current = load_phrases(store.database)
    with st.form("_llmapp_phrases", border=False):
        text = st.text_area("Protected phrases (one per line: `Phrase | Owner`)",
                            "\n".join(f"{p} | {o}" if o else p for p, o in current), height=240)
        if st.form_submit_button("Save phrases"):
            try:
                kept = save_phrases(store.database, parse_lines(text))
            except LlmappError as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved {kept} protected phrases.")
    st.caption(f"A reply that contains one is {'withdrawn' if settings.phrase_action == 'block' else 'flagged'} "
               "(`LLMAPP_PHRASE_ACTION`: flag or block).")
