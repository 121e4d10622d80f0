"""Stages 5 and 6: tools and the agent, drawn step by step.

Each step of a run renders into an ``st.status`` block as it happens; the
steps are kept on the reply (``ChatMessage.steps``) and redrawn, collapsed,
after every rerun.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from llmapp import config
from llmapp.agent import AgentEvent
from llmapp.chat import ChatMessage, ChatStore
from llmapp.errors import LlmappError
from llmapp.providers import GenerationParams, active_provider
from llmapp.rag.store import DEFAULT_COLLECTION
from llmapp.routed import run_with_tools
from llmapp.routing import tool_choice
from llmapp.safety import SafetyError
from llmapp.settings import Settings
from llmapp.streaming import ReplyStats
from llmapp.tools import ToolError, available_tools, run_tool
from llmapp.ui.chat import CUT_NOTICE, edit_earlier, render_body, render_earlier, reply_controls

log = logging.getLogger(__name__)

_CHOICE_LABELS = {"auto": "auto (router for small models)", "router": "semantic router",
                  "model": "the model"}


def tool_choice_control(settings: Settings) -> Settings:
    """A sidebar select for who picks tools (``LLMAPP_TOOL_CHOICE``); returns
    the settings with the choice made here."""
    current = settings.tool_choice
    chosen = st.sidebar.selectbox(
        "Who picks the tool", config.TOOL_CHOICES, index=config.TOOL_CHOICES.index(current),
        format_func=_CHOICE_LABELS.get, key="tool_choice",
        help="The semantic router compares the question with each tool's example requests; "
             "the model chooses by itself only if it can (OpenAI, or a tool-capable model on "
             "an OpenAI-compatible server).")
    return dataclasses.replace(settings, tool_choice=chosen)


def tool_calling_notice(settings: Settings) -> None:
    """Say plainly who picks the tools and what the bundled model cannot do."""
    provider, _ = active_provider(settings)
    mode, _ = tool_choice(settings)
    if mode == "router":
        small = ("The bundled 135M model is far too small to plan tool calls, so here "
                 if provider.name == "local" else "Here ")
        st.info(small + "a **semantic router** picks the tool by how close your question is to "
                "each tool's example requests (or picks none), the model fills in the "
                "arguments under a grammar that allows only what your question offers (its "
                "numbers, its quoted text, the cities it names), and then words the answer. "
                "Each step says which part decided. Results that answer by themselves are shown "
                "plainly under the model's words.", icon="🧭")
    elif provider.name == "local":
        st.warning("The bundled 135M model is far too small to plan tool calls: it often answers "
                   "without a tool, or calls one with a useless input (asked 23*19, it may call "
                   "the calculator with an empty expression). Set *Who picks the tool* to the "
                   "semantic router, or use OpenAI or an OpenAI-compatible server with a "
                   "tool-capable model (for example Ollama with llama3.1 or qwen2.5).", icon="🐣")


def tool_picker(settings: Settings, kb=None, collection: str | None = DEFAULT_COLLECTION):
    """A multiselect of tools; returns the chosen tools by name. The
    knowledge-base tool searches ``collection`` when ``kb`` is given."""
    tools = available_tools(kb, collection)
    chosen = st.sidebar.multiselect("Tools", list(tools), default=[
        n for n in (*config.OFFLINE_TOOLS, "knowledge_base") if n in tools], key="agent_tools")
    return {name: tools[name] for name in chosen}


def agent_limits() -> tuple[int, int]:
    """Sidebar sliders: ``(max model calls, max tool calls)`` per run."""
    st.sidebar.subheader("Limits")
    return (st.sidebar.slider("Model calls per run", 1, 20, 6, key="agent_model_calls"),
            st.sidebar.slider("Tool calls per run", 1, 20, 8, key="agent_tool_calls"))


def manual_console(tools) -> None:
    """Call any tool directly with arguments: useful offline and for teaching."""
    with st.expander("Tool console: call a tool yourself", expanded=False):
        if not tools:
            st.caption("Pick some tools in the sidebar.")
            return
        name = st.selectbox("Tool", list(tools), key="console_tool")
        tool = tools[name]
        st.caption(tool.description)
        args = {}
        for arg, spec in tool.args.items():
            args[arg] = st.text_input(arg, key=f"console_{name}_{arg}",
                                      help=spec.get("description") or spec.get("type"))
            if spec.get("type") == "integer" and args[arg]:
                try:
                    args[arg] = int(args[arg])
                except ValueError:
                    pass
            if args[arg] == "" and arg not in tool.tool_call_schema.model_json_schema().get(
                    "required", []):
                del args[arg]
        if st.button("Call", key="console_call"):
            try:
                result, seconds = run_tool(tool, args)
            except ToolError as exc:
                st.error(str(exc))
            else:
                st.success(f"{name} answered in {seconds * 1000:.0f} ms")
                st.code(result, language=None, wrap_lines=True)


def render_steps(steps: list[dict], expanded: bool = False) -> None:
    """An agent's kept steps, as a completed status block."""
    if not steps:
        return
    calls = sum(s["kind"] == "tool_call" for s in steps)
    limit = next((s for s in steps if s["kind"] == "limit"), None)
    state = "error" if limit else "complete"
    with st.status(_label(calls, bool(limit)), state=state, expanded=expanded):
        for step in steps:
            _render_step(step)


def _label(calls: int, stopped: bool) -> str:
    return f"{calls} tool call(s)" + (" · stopped" if stopped else "")


def render_results(steps: list[dict]) -> None:
    """Tool results that answer the question by themselves, under the
    model's words: a wrong sentence from a small model cannot hide them."""
    for step in steps:
        if step["kind"] == "tool_result" and step.get("plain"):
            st.success(f"**{step['name']}** says: {step['text']}", icon="🎯")


def _render_step(step: dict) -> None:
    if step["kind"] == "tool_call":
        st.markdown(f"🔧 **{step['name']}** `{json.dumps(step['args'], ensure_ascii=False)}`")
        if step.get("decided_by"):
            st.caption(step["decided_by"].capitalize())
    elif step["kind"] == "no_tool":
        st.markdown(f"🧭 {step['text'].capitalize()}: the model answers by itself.")
    elif step["kind"] == "tool_result":
        mark = "✅" if step["ok"] else "⚠️"
        st.markdown(f"{mark} result of **{step['name']}** ({step['seconds'] * 1000:.0f} ms)")
        st.code(step["text"][:2000], language=None, wrap_lines=True)
    elif step["kind"] == "limit":
        st.error(step["text"] or "The run hit its limit.", icon="🛑")


def render_agent_chat(store: ChatStore) -> None:
    """The transcript, each agent reply with its steps; under the last
    reply, Retry, Regenerate and Edit question, or the box to edit a blocked
    message (:func:`~llmapp.ui.chat.reply_controls`)."""
    from llmapp.ui.feedback import feedback_row, saved_feedback

    saved = saved_feedback(store)
    for message in store:
        with st.chat_message(message.role):
            render_steps(message.steps)
            render_body(message, after_text=lambda steps=message.steps: render_results(steps))
            edit_earlier(store, message)
            feedback_row(store, message, saved.get(message.id))
    reply_controls(store)


def agent_reply(store: ChatStore, settings: Settings, tools, *, max_model_calls: int,
                max_tool_calls: int, params: GenerationParams) -> ChatMessage:
    """Run the agent on the last user message; steps render live into a
    status block, the answer streams as Markdown; all is kept in ``store``.
    Who picks the tools follows :func:`llmapp.routing.tool_choice`. The
    conversation is marked as being answered meanwhile
    (:func:`llmapp.ui.memory.awaiting`)."""
    from llmapp.ui.memory import answering

    with answering(store):
        return _agent_reply(store, settings, tools, max_model_calls=max_model_calls,
                            max_tool_calls=max_tool_calls, params=params)


def _agent_reply(store: ChatStore, settings: Settings, tools, *, max_model_calls: int,
                 max_tool_calls: int, params: GenerationParams) -> ChatMessage:
    from llmapp.ui.feedback import feedback_row
    from llmapp.ui.safety import page_guard

    history = store.history()
    question = history[-1]["content"]
    steps: list[dict] = []
    withdrawn = ""
    box = st.chat_message("assistant")
    with box:
        try:
            status = st.status("Thinking…", expanded=True)
            answer_box = st.empty()
            stop = st.empty()  # any click reruns the page, which stops the run
            stop.button("Stop", key="_llmapp_stop", icon="⏹️",
                        help="Stop this reply and keep what has arrived.")
            tokens: list[str] = []
            answer = ""
            started, first, stated = time.perf_counter(), None, False
            ended = AgentEvent("answer")  # the answer event: why the answer ended
            events = run_with_tools(settings, tools, question, params=params,
                                    history=history[:-1], max_model_calls=max_model_calls,
                                    max_tool_calls=max_tool_calls, guard=page_guard(settings))
            try:
                for event in events:
                    if event.kind in ("token", "answer") and first is None:
                        first = time.perf_counter() - started
                    stated = stated or (event.kind == "answer" and event.decided_by == "llmapp")
                    ended = event if event.kind == "answer" else ended
                    if event.kind == "withdrawn":
                        withdrawn = event.text
                        answer_box.warning(withdrawn, icon="🛡️")
                        continue
                    answer = _show(event, status, answer_box, tokens, steps) or answer
            except ScriptControlException:  # Stop, a page switch or another click
                _keep_cut(store, answer or "".join(tokens), steps)
                raise
            finally:
                events.close()  # frees the model now, not at garbage collection
                stop.empty()
            calls = sum(s["kind"] == "tool_call" for s in steps)
            stopped = any(s["kind"] == "limit" for s in steps)
            status.update(label=_label(calls, stopped), state="error" if stopped else "complete",
                          expanded=False)
            render_results(steps)
            stats = _stats(settings, stated, first, time.perf_counter() - started, ended)
            st.caption(stats.summary())
            message = ChatMessage("assistant", answer or "".join(tokens), steps=steps,
                                  stats=stats)
            if withdrawn:
                message = ChatMessage("assistant", "", steps=steps, notices=[withdrawn],
                                      withheld=True)
        except SafetyError as exc:
            store.withhold_last_user()
            status.update(label="Not sent: the safety filter blocked it", state="error",
                          expanded=False)
            message = ChatMessage("assistant", "", error=str(exc))
            st.error(str(exc), icon="🛡️")
        except LlmappError as exc:
            message = ChatMessage("assistant", "", error=str(exc), steps=steps)
            st.error(str(exc), icon="⚠️")
    store.add(message)
    with box:
        render_earlier(message)  # a regenerated reply gets the one it replaced when stored
        feedback_row(store, message)
    reply_controls(store)
    return message


def _keep_cut(store: ChatStore, text: str, steps: list[dict]) -> None:
    """Keep an agent reply that was interrupted mid-run, marked as cut (as
    :func:`llmapp.ui.chat.stream_reply` does); nothing when nothing arrived."""
    if not text.strip() and not steps:
        return
    try:
        store.add(ChatMessage("assistant", text, steps=list(steps), notices=[CUT_NOTICE]))
    except Exception:
        log.warning("the interrupted reply could not be kept", exc_info=True)


def _stats(settings: Settings, stated: bool, ttft_s: float | None, total_s: float,
           answer: AgentEvent) -> ReplyStats:
    """The stats line of an agent's reply: its time to the first word of
    the answer (tools included), its total time, who wrote the answer, and
    why it ended when that was early (found in a walk: an answer cut at max
    tokens said nothing of it)."""
    if stated:
        return ReplyStats(provider="llmapp", model="stated from the tool's result",
                          ttft_s=ttft_s, total_s=total_s)
    provider, _ = active_provider(settings)
    return ReplyStats(provider=provider.name, model=provider.model_name(settings),
                      ttft_s=ttft_s, total_s=total_s, stopped=answer.stopped or None,
                      finish_reason=answer.finish_reason or None)


def _show(event: AgentEvent, status, answer_box, tokens: list[str], steps: list[dict]) -> str:
    if event.kind == "token":
        tokens.append(event.text)
        answer_box.markdown("".join(tokens))
        return ""
    if event.kind == "answer":
        answer_box.markdown(event.text)
        return event.text
    step = event.to_dict()
    steps.append(step)
    with status:
        _render_step(step)
    if event.kind == "tool_call":
        status.update(label=f"Calling {event.name}…")
    elif event.kind == "limit":
        status.update(label="Stopped by a limit", state="error")
    return ""
