"""Stage 4's widgets: the conversation list, memory controls, the panel of
what the model received, and exports."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from llmapp.chat import ChatStore
from llmapp.conversations import ConversationStore, PersistedChatStore, StoreError
from llmapp.errors import LlmappError
from llmapp.export import ExportError, to_finetune_jsonl, to_json, to_markdown
from llmapp.memory import DEFAULT_STRATEGY, LABELS, MAX_K, STRATEGIES, Memory, MemoryReport
from llmapp.settings import Settings
from llmapp.storage.urls import sqlite_file

_CURRENT = "_llmapp_conversation"


_FAILED = "_llmapp_store_failed"
RETRY_AFTER_S = 30.0
EMPTY_KEPT_S = 7 * 24 * 3600.0  # an unused conversation is dropped after a week
"""After a database could not be opened, how long a session waits before it
tries again, in seconds (an unreachable server costs a connect timeout)."""


@st.cache_resource(show_spinner="Opening the conversation store…")
def _shared(url: str) -> ConversationStore:
    return ConversationStore(url)


def _open(settings: Settings) -> ConversationStore:
    """The store for the configured URL: shared by the process when the URL
    comes from the deployment (secrets, environment, default), kept in this
    session when it was typed in the sidebar, so one user's credentials
    never serve another session."""
    url = settings.database_url.get_secret_value()
    if settings.source("LLMAPP_DATABASE_URL") != "sidebar":
        path = sqlite_file(url)
        return _shared(f"sqlite:///{path.resolve()}" if path is not None else url)
    mine = st.session_state.get("_llmapp_own_store")
    if mine is None or mine[0] != url:
        mine = (url, ConversationStore(url))
        st.session_state["_llmapp_own_store"] = mine
    return mine[1]


def store_failed(settings: Settings) -> bool:
    """True when this session could not open the configured database."""
    failed = st.session_state.get(_FAILED)
    return bool(failed) and failed[0] == settings.database_url.get_secret_value()


def open_store(settings: Settings) -> tuple[ConversationStore | None, str | None]:
    """``(store, None)`` for the database at ``LLMAPP_DATABASE_URL``, or
    ``(None, why)`` when it cannot be opened. Draws nothing. A failure is
    retried after :data:`RETRY_AFTER_S`."""
    url = settings.database_url.get_secret_value()
    failed = st.session_state.get(_FAILED)
    if failed and failed[0] == url and time.monotonic() - failed[1] < RETRY_AFTER_S:
        return None, failed[2]
    try:
        store = _open(settings)
    except StoreError as exc:
        st.session_state[_FAILED] = (url, time.monotonic(), str(exc))
        return None, str(exc)
    st.session_state.pop(_FAILED, None)
    return store, None


def conversation_store(settings: Settings) -> ConversationStore | None:
    """The store at ``LLMAPP_DATABASE_URL``, or None with an error shown: the
    page then keeps its chat in this browser session only, and says that
    nothing will be saved."""
    store, error = open_store(settings)
    if error is not None:
        st.error(f"{error} Nothing will be saved: this chat is kept in this browser session "
                 "only.", icon="🗄️")
    return store


def _current(page: str) -> str:
    """The session-state key of the conversation open on ``page``: each page
    keeps its own."""
    return f"{_CURRENT}:{page}"


def _select(conversation_id: str, page: str) -> None:
    st.session_state[_current(page)] = conversation_id


def open_conversation(db: ConversationStore | None, page: str = "memory") -> ChatStore:
    """The conversation open on ``page``, kept in the database: the one
    picked in its sidebar, else the one the address names (``?chat=<id>``,
    so a reload opens it again), else a new one of this session's own.

    A new session never opens another's conversation (found: two visitors
    at once were given one empty conversation and saw each other's
    messages); earlier ones are a click away in the sidebar's list. Each
    page lists its own (found: the Agent page opened on the Memory page's
    conversation, without saying so). Without a store (or when it fails) a
    session-only chat store. Draws nothing but an error: the list comes
    last, from :func:`conversation_picker`, so it shows this run's reply.
    ``page`` is recorded with feedback on its replies."""
    store = _conversation(db, page)
    store.page = page
    return store


def _store_key(conversation_id: str) -> str:
    """The session-state key of a stored conversation's chat store."""
    return f"_llmapp_chat_memory_{conversation_id}"


def _conversation(db: ConversationStore | None, page: str) -> ChatStore:
    unsaved = f"_llmapp_chat_{page}_unsaved"
    if db is None:
        return st.session_state.setdefault(unsaved, ChatStore())
    try:
        current = st.session_state.get(_current(page))
        ids = [c.id for c in db.list(page=page)]
        if current not in ids:
            linked = st.query_params.get("chat")
            current = linked if linked in ids else _new_conversation(db, page)
            _select(current, page)
    except StoreError as exc:
        st.error(str(exc))
        return st.session_state.setdefault(unsaved, ChatStore())
    st.query_params["chat"] = current
    key = _store_key(current)
    if key not in st.session_state:
        st.session_state[key] = db.load(current)
    return st.session_state[key]


def _new_conversation(db: ConversationStore, page: str) -> str:
    """A new conversation of ``page``; those left empty for a week go."""
    db.drop_empty(page, older_than_s=EMPTY_KEPT_S)
    return db.create(page=page).id


_ANSWERING: dict[str, str] = {}
"""Stored conversations being answered now, by the session answering them:
a reload or a second tab opens a new session on the same conversation while
the old one may still stream its reply (found in a browser walk: a reload
mid-stream answered the question twice)."""
_ANSWERING_LOCK = threading.Lock()


def _session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


@contextmanager
def answering(store: ChatStore) -> Iterator[None]:
    """Mark ``store``'s stored conversation as being answered by this
    session while the block runs (session-only chats need no mark)."""
    conversation = getattr(store, "conversation_id", None)
    if conversation is None:
        yield
        return
    me = _session_id()
    with _ANSWERING_LOCK:
        _ANSWERING[conversation] = me
    try:
        yield
    finally:
        with _ANSWERING_LOCK:
            if _ANSWERING.get(conversation) == me:
                del _ANSWERING[conversation]


def awaiting(store: ChatStore) -> bool:
    """True when the last message awaits a reply that this session should
    give. When another session (a tab, or this one before a reload) is
    answering the same conversation, says so instead, with *Show it* (reload
    the conversation) and *Answer here instead*; False then."""
    if not store.awaiting_reply:
        return False
    conversation = getattr(store, "conversation_id", None)
    with _ANSWERING_LOCK:
        other = _ANSWERING.get(conversation) if conversation else None
    if other is None or other == _session_id():
        return True
    st.info("This question is being answered in another tab, or by this page before it was "
            "reloaded. Its reply is kept in the conversation when it ends.", icon="⏳")
    show, here = st.columns(2)
    if show.button("Show it", key="_llmapp_show_other", icon="🔄", width="stretch",
                   help="Read the conversation again from the database."):
        st.session_state.pop(_store_key(conversation), None)
        st.rerun()
    return here.button("Answer here instead", key="_llmapp_answer_here", width="stretch")


def clear_button(store: ChatStore) -> None:
    """"Clear chat" in the sidebar: a stored chat starts a new, empty
    conversation of its page (the old one stays in the database); a
    session-only one is emptied."""
    def clear() -> None:
        if isinstance(store, PersistedChatStore):
            try:
                _select(_new_conversation(store.db, store.page), store.page)
                return
            except StoreError:
                pass  # the chat stays; emptied below, in this session only
        store.clear()

    st.sidebar.button("Clear chat", icon="🧹", on_click=clear, width="stretch")


def conversation_picker(db: ConversationStore | None, store: ChatStore) -> None:
    """The sidebar's conversation list, with New, Rename and Delete. Call it
    after the reply, so titles and counts include it."""
    if db is None or not isinstance(store, PersistedChatStore):
        return
    try:
        conversations = db.list(page=store.page)
    except StoreError as exc:
        st.sidebar.error(str(exc))
        return
    current = store.conversation_id
    # Every visit opens its own conversation: list the used ones, and this one.
    conversations = [c for c in conversations if c.messages or c.id == current]
    ids = [c.id for c in conversations]
    if current not in ids:  # deleted by another session meanwhile
        return
    bar = st.sidebar
    bar.subheader("Conversations")
    page = store.page
    bar.button("New conversation", icon="➕", width="stretch",
               on_click=lambda: _select(_new_conversation(db, page), page))
    titles = {c.id: f"{c.title} · {c.messages} msgs" for c in conversations}
    st.session_state["_w_conversation"] = current
    bar.radio("Open", ids, format_func=titles.get, key="_w_conversation",
              on_change=lambda: _select(st.session_state["_w_conversation"], page),
              label_visibility="collapsed")
    with bar.expander("Rename or delete"):
        with st.form("_rename", clear_on_submit=True, border=False):
            title = st.text_input("New title")
            if st.form_submit_button("Rename"):
                try:
                    db.rename(current, title)
                    st.rerun()
                except StoreError as exc:
                    st.error(str(exc))
        sure = st.checkbox("Yes, delete this conversation")
        if st.button("Delete", disabled=not sure, type="primary"):
            db.delete(current)
            st.session_state.pop(_current(page), None)
            st.rerun()


def add_user(store: ChatStore, text: str) -> None:
    """Add the user's message, drawn with the transcript after it (call this
    before drawing it, so the controls under the last reply are this
    turn's); if it cannot be saved, say so (it stays in this session)."""
    try:
        store.add_user(text)
    except LlmappError as exc:
        st.warning(f"Not saved: {exc}")


def memory_controls(window: int, max_tokens: int) -> Memory:
    """Strategy picker and its parameter; the Memory is kept per session so
    its token cache survives reruns."""
    left, right = st.columns([2, 1])
    strategy = left.selectbox("Memory strategy", STRATEGIES, format_func=LABELS.get,
                              index=STRATEGIES.index(DEFAULT_STRATEGY), key="memory_strategy")
    if strategy in ("window", "summary"):
        k = right.number_input("Turns kept verbatim (k)", 0, MAX_K, 2, key="memory_k",
                               help="A turn is your message and the reply to it.")
    else:
        k = 2
        room = max(window - max_tokens, 0)
        right.metric("Input budget", f"{room} tokens",
                     help=f"{window}-token window minus {max_tokens} max tokens for the reply")
    previous: Memory | None = st.session_state.get("_llmapp_memory")
    memory = Memory(strategy, int(k), cache=previous.cache if previous else None)
    st.session_state["_llmapp_memory"] = memory
    return memory


def memory_panel(store: ChatStore) -> None:
    """Exactly what the model received on the last turn, with tokens per
    message, and what was dropped or summarized; when no model was called
    (the answer recalled from the profile, or served by the response
    cache), says so, and shows the prompt it would have received."""
    report: MemoryReport | None = store.last_budget
    with st.expander("What the model received this turn", expanded=report is not None):
        if report is None:
            st.caption("Send a message to see the exact prompt here.")
            return
        skipped = _not_called(store)
        if skipped:
            st.info(f"The model was not called this turn: {skipped}. This is the prompt it "
                    "would have received.", icon="🪪")
        st.markdown(f"**{LABELS.get(report.strategy, report.strategy)}** · "
                    f"{report.prompt_tokens} prompt tokens of a {report.window}-token window, "
                    f"{report.max_tokens} reserved for the reply"
                    + ("" if report.exact else " (approximate counts)"))
        rows = [{"#": i + 1, "role": m["role"], "tokens": t,
                 "content": m["content"] if len(m["content"]) <= 300
                 else m["content"][:300] + "…"}
                for i, (m, t) in enumerate(zip(report.messages, report.tokens, strict=True))]
        st.dataframe(rows, hide_index=True, width="stretch")
        if report.strategy == "profile":
            if report.profile:
                st.info("**Your profile**, pinned to the system prompt in your words:\n\n"
                        + "\n".join(f"- {fact}" for fact in report.profile), icon="🪪")
            else:
                st.caption("Your profile is empty: tell the model something about yourself "
                           "(\"My name is …\", \"I live in …\").")
        if report.summary:
            st.info(f"Summary of messages 1–{len(report.summarized)}: {report.summary}",
                    icon="🗜️")
        if report.dropped:
            st.caption(f"Not sent: {len(report.dropped)} of the {report.earlier} earlier "
                       f"messages (#{', #'.join(str(i + 1) for i in report.dropped[:20])}"
                       f"{'…' if len(report.dropped) > 20 else ''}).")


def _not_called(store: ChatStore) -> str:
    """Why no model answered the last reply ("" when one did)."""
    from llmapp.chat import NOTED_MODEL, RECALL_MODEL

    last = store.messages[-1] if store.messages else None
    stats = last.stats if last is not None and last.role == "assistant" else None
    if stats is None:
        return ""
    if stats.model in (RECALL_MODEL, NOTED_MODEL):
        return "llmapp answered from your profile, in your own words"
    if (stats.cache or "").startswith("hit"):
        return "the response cache answered"
    return ""


def export_buttons(db: ConversationStore | None, store: ChatStore, system_prompt: str) -> None:
    """Download the open conversation (Markdown, JSON) and all of them as
    OpenAI fine-tuning JSONL."""
    bar = st.sidebar
    bar.subheader("Export")
    if db is None or not isinstance(store, PersistedChatStore):
        bar.caption("Exports need the conversation store.")
        return
    try:
        conv = db.get(store.conversation_id)
        markdown = to_markdown(conv, store.messages)
        transcript = to_json(conv, store.messages)
    except ExportError as exc:
        bar.caption(str(exc))
    except StoreError as exc:
        bar.error(str(exc))
        return
    else:
        name = f"conversation-{conv.id[:8]}"
        bar.download_button("Markdown", markdown, f"{name}.md", "text/markdown", width="stretch")
        bar.download_button("JSON", transcript, f"{name}.json", "application/json",
                            width="stretch")
    try:
        jsonl = to_finetune_jsonl((db.messages(c.id) for c in db.list()), system_prompt)
    except (ExportError, StoreError) as exc:
        bar.caption(str(exc))
    else:
        bar.download_button("Fine-tuning JSONL (all conversations)", jsonl,
                            "finetune.jsonl", "application/jsonl", width="stretch")
