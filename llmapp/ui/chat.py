"""Chat rendering: the transcript, live replies, stats and errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from llmapp.chat import ChatMessage, ChatStore, start_reply
from llmapp.errors import LlmappError, ProviderError
from llmapp.memory import Memory
from llmapp.providers import GenerationParams
from llmapp.settings import Settings
from llmapp.streaming import coalesce

log = logging.getLogger(__name__)


def _notice(text: str) -> None:
    st.caption(text if text.startswith(("🛡️", "⏹️")) else f"ℹ️ {text}")


LONG_MESSAGE_CHARS = 1200
"""A user message longer than this (characters) shows its start, and the
rest in an expander: a pasted document would push the reply off screen."""


def render_body(message: ChatMessage, after_text: Callable[[], None] | None = None) -> None:
    """One message's body: notices, text (a long user message collapsed),
    whatever ``after_text`` draws (an agent's tool results), the safety
    filter's mark, an error and the stats line, last."""
    withdrawn = message.withheld and message.role == "assistant"
    for notice in message.notices[:-1] if withdrawn else message.notices:
        _notice(notice)
    if withdrawn and message.notices:
        st.warning(message.notices[-1], icon="🛡️")
    if message.role == "user" and len(message.content) > LONG_MESSAGE_CHARS:
        cut = message.content.rfind(" ", 0, LONG_MESSAGE_CHARS // 2) + 1 or LONG_MESSAGE_CHARS // 2
        st.markdown(message.content[:cut] + "…")
        with st.expander(f"The whole message ({len(message.content):,} characters)"):
            st.text(message.content)
    elif message.content:
        st.markdown(message.content)
    if after_text is not None:
        after_text()
    if message.withheld and message.role == "user":
        st.caption("🛡️ Not sent to the model: the safety filter blocked it.")
    if message.error:
        st.error(message.error, icon="⚠️")
    if message.stats is not None:
        st.caption(message.stats.summary())
    render_earlier(message)


def _blocked(store: ChatStore) -> bool:
    """True when the last reply is the safety filter's refusal of the user's
    message (edited and sent again, not retried as it is)."""
    return len(store) >= 2 and store.messages[-2].withheld


def render_message(message: ChatMessage) -> None:
    """Draw one stored message."""
    with st.chat_message(message.role):
        render_body(message)


def render_chat(store: ChatStore) -> None:
    """Draw the stored transcript, with feedback controls under each reply;
    under a failed reply, offer Retry; under a cached one, "Ask the model
    instead"."""
    from llmapp.ui.feedback import feedback_row, saved_feedback

    saved = saved_feedback(store)
    for message in store:
        with st.chat_message(message.role):
            render_body(message)
            edit_earlier(store, message)
            feedback_row(store, message, saved.get(message.id))
    reply_controls(store)


def edit_earlier(store: ChatStore, message: ChatMessage) -> None:
    """Under an earlier question (not the last one: *Edit question* under
    the last reply does that), a small *Edit* popover: sending it takes back
    everything after that question and answers the edited one; the old
    branch stays under the question's Earlier versions."""
    users = [m for m in store.messages if m.role == "user" and not m.withheld]
    if message.role != "user" or message.withheld or not users or message is users[-1]:
        return
    box = f"_llmapp_edit_{message.id}"
    with st.popover("Edit", icon="✏️"):
        text = st.text_area("Your question", message.content, key=box)
        st.button("Send edited", key=f"{box}_send", type="primary",
                  on_click=lambda: store.edit_user(message.id, st.session_state[box]),
                  disabled=not text.strip(),
                  help="The replies after this question are taken back; they stay under "
                       "its Earlier versions.")


def reply_controls(store: ChatStore) -> None:
    """Under the last reply: Retry when it failed, the box to edit a message
    the safety filter blocked, "Ask the model instead" when it was cached."""
    from llmapp.ui.cache import bypass_button
    from llmapp.ui.safety import edit_blocked

    last = store.messages[-1] if len(store) else None
    if last is not None and last.error is not None and not _blocked(store):
        st.button("Retry", key="_llmapp_retry", icon="🔁", on_click=store.drop_failed_reply,
                  help="Send your last message again.")
    edit_blocked(store)
    bypass_button(store)
    if store.can_regenerate:  # keys per reply: a run that adds one draws these twice
        left, right = st.columns(2)
        left.button("Regenerate", key=f"_llmapp_regenerate_{last.id}", icon="🔄",
                    on_click=store.regenerate, width="stretch",
                    help="Answer the last question again; this reply stays under Earlier "
                         "versions.")
        with right.popover("Edit question", icon="✏️", width="stretch"):
            users = [m for m in store.messages if m.role == "user"]
            box = f"_llmapp_edit_{last.id}"
            text = st.text_area("Your question", users[-1].content if users else "", key=box)
            st.button("Send edited", key=f"{box}_send", type="primary",
                      on_click=lambda: store.edit_last_user(st.session_state[box]),
                      disabled=not text.strip())


def render_earlier(message: ChatMessage) -> None:
    """The versions a message replaced (a regenerated reply, an edited
    question and its reply), collapsed."""
    if not message.earlier:
        return
    with st.expander(f"Earlier versions ({len(message.earlier)})"):
        for n, version in enumerate(message.earlier, start=1):
            if n > 1:
                st.divider()
            if message.role == "user":
                st.markdown(f"**You asked:** {version['content']}")
                if version.get("reply"):
                    st.markdown(f"**Reply:** {version['reply']}")
                if version.get("later"):
                    st.caption(f"and {version['later']} later message(s), taken back by the edit")
            else:
                st.markdown(version["content"])


CUT_NOTICE = ("⏹️ Stopped: Stop, a page switch or another click interrupted this reply while "
              "it streamed. What arrived is kept; Regenerate for a whole one.")


def _keep_cut(store: ChatStore, reply: Any) -> None:
    """Keep a reply that a page switch or a rerun interrupted, marked as cut,
    rather than lose it and generate a different one on return. Nothing is
    kept when nothing had arrived: the question is then answered anew."""
    if not reply.stream.text.strip():
        return
    try:
        reply.stream.close()  # its stats as they stand
        message = reply.message()
        message.notices.append(CUT_NOTICE)
        store.add(message)
    except Exception:  # noqa: BLE001 - never mask the interruption itself
        log.warning("the interrupted reply could not be kept", exc_info=True)


def stream_reply(store: ChatStore, start: Callable[[], Any],
                 spinner: str = "Preparing the model…",
                 after: Callable[[ChatMessage], None] | None = None) -> tuple[ChatMessage, Any]:
    """Draw an assistant reply live and store it (or its error) in ``store``,
    the conversation marked as being answered meanwhile
    (:func:`llmapp.ui.memory.awaiting`). See :func:`_stream_reply`."""
    from llmapp.ui.memory import answering

    with answering(store):
        return _stream_reply(store, start, spinner, after)


PROGRESS_MIN_TOKENS = 512
"""Prompts at least this long show their reading progress: shorter ones are
read in well under a second on two cores, and a bar would only flicker."""


def _prompt_progress(bar) -> Callable[[int, int], None]:
    """Draws the prompt's reading progress into the placeholder ``bar``;
    clears it once the prompt is read."""
    def show(processed: int, total: int) -> None:
        if processed >= total:
            bar.empty()
        elif total >= PROGRESS_MIN_TOKENS:
            bar.progress(processed / total, text=f"Reading the prompt: {processed:,} of "
                                                 f"{total:,} tokens")
    return show


def _stream_reply(store: ChatStore, start: Callable[[], Any], spinner: str,
                  after: Callable[[ChatMessage], None] | None) -> tuple[ChatMessage, Any]:
    """Draw an assistant reply live and store it (or its error) in ``store``.

    Args:
        start: prepares the reply (a :class:`~llmapp.chat.Reply` or anything
            with ``stream``, ``notices``, ``message()`` and ``failed(error)``).
        spinner: shown while ``start`` runs.
        after: draws more under a finished reply (e.g. its sources).

    Returns:
        ``(message, reply)``; ``reply`` is None when ``start`` failed. Never
        raises an :class:`~llmapp.errors.LlmappError`: it becomes the message.
    """
    from llmapp.ui.feedback import feedback_row

    reply = None
    box = st.chat_message("assistant")
    with box:
        try:
            with st.spinner(spinner):
                reply = start()
        except LlmappError as exc:
            message = ChatMessage("assistant", "", error=str(exc),
                                  retryable=getattr(exc, "retryable", False))
        else:
            for notice in reply.notices:
                _notice(notice)
            reading = st.empty()
            reply.stream.on_progress = _prompt_progress(reading)
            shown = st.empty()
            stop = st.empty()  # any click reruns the page, which stops the stream
            stop.button("Stop", key="_llmapp_stop", icon="⏹️",
                        help="Stop this reply and keep what has arrived.")
            try:
                with shown.container():
                    st.write_stream(coalesce(reply.stream))
            except ProviderError as exc:
                message = reply.failed(exc)
            except ScriptControlException:
                _keep_cut(store, reply)
                raise
            else:
                message = reply.message()
            finally:
                # A rerun or a page switch stops the script mid-stream: free
                # the shared local model now rather than at garbage collection.
                reply.stream.close()
                stop.empty()
                reading.empty()
            if message.withheld:  # withdrawn by the safety filter: take back what was shown
                shown.warning(message.notices[-1], icon="🛡️")
            else:
                for notice in message.notices[len(reply.notices):]:
                    _notice(notice)
            if message.stats is not None:
                st.caption(message.stats.summary())
            if after is not None:
                after(message)
        if message.error:
            st.error(message.error, icon="⚠️")
    try:
        store.add(message)
    except LlmappError as exc:  # the reply is shown and kept in this session
        st.warning(f"Not saved: {exc}")
    with box:
        render_earlier(message)  # a regenerated reply gets the one it replaced when stored
        feedback_row(store, message)
    return message, reply


def respond(store: ChatStore, settings: Settings, params: GenerationParams,
            system_prompt: str = "", memory: Memory | None = None) -> ChatMessage:
    """Stream the assistant's reply to the last user message, live, as
    Markdown, and store it (or the error) in ``store``. With ``memory``, its
    strategy picks the history, and ``store.summary_state`` and
    ``store.last_budget`` are updated. Never raises an
    :class:`~llmapp.errors.LlmappError`: it becomes a message in the chat."""
    from llmapp.ui.cache import cache_use
    from llmapp.ui.safety import page_guard

    def start():
        reply = start_reply(store, settings, params, system_prompt, memory, store.summary_state,
                            cache=cache_use(settings), guard=page_guard(settings))
        store.last_budget = reply.budget
        return reply

    busy = "Summarizing older turns…" if memory and memory.strategy == "summary" \
        else "Preparing the model…"
    message, reply = stream_reply(store, start, busy)
    if memory is not None and reply is not None and message.error is None:
        store.summary_state = reply.budget.summary_state
    reply_controls(store)
    return message


def chat_prompt(page: str, placeholder: str, disabled: bool = False) -> str | None:
    """The user's next message: one of the page's examples, clicked
    (:func:`llmapp.demo.prompts`, as pills above the input), or what they
    typed. None when there is none, or it is only whitespace."""
    from llmapp.demo import prompts

    options = prompts(page)
    clicked = f"_example_{page}"
    if options:
        def pick() -> None:  # one click sends once: the pill does not stay selected
            st.session_state[clicked] = st.session_state[f"{clicked}_pills"]
            st.session_state[f"{clicked}_pills"] = None

        st.bottom.pills("Try an example", options, key=f"{clicked}_pills", on_change=pick,
                        disabled=disabled, label_visibility="collapsed")  # above the input
    typed = st.chat_input(placeholder, disabled=disabled)
    text = st.session_state.pop(clicked, None) or typed
    return text if text and text.strip() else None
