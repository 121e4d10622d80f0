"""Stage 6: a ReAct-style agent (``langchain.agents.create_agent``).

The agent thinks, calls a tool, reads the observation, and repeats until it
can answer. It is bounded by middleware: at most ``max_model_calls`` model
calls and ``max_tool_calls`` tool calls per run. A tool that fails
(:class:`~llmapp.tools.ToolError`) sends its message back to the model as an
error observation instead of crashing the run.

:func:`run_agent` turns the agent's stream into :class:`AgentEvent` values in
order (tool call, tool result, answer tokens, limit), so a page can draw each
step as it happens and keep them to redraw after a rerun. Nothing here imports
streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.tools import BaseTool

from llmapp.tools import ToolError

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful assistant with tools. Think about what you need, call a tool when it "
    "helps (the calculator for arithmetic, the knowledge base for the user's documents), read "
    "the result, and answer briefly once you can. Cite knowledge-base snippets as [n].")


EMPTY_ANSWER = "(The model gave an empty answer.)"
MODEL_DECIDED = "chosen by the model"


@dataclass
class AgentEvent:
    """One thing the agent did.

    Attributes:
        kind: ``tool_call``, ``tool_result``, ``token`` (a piece of the final
            answer), ``answer`` (the whole final answer), ``limit``,
            ``no_tool`` (the router chose no tool; ``text`` says why), or
            ``withdrawn`` (the safety filter withdrew the answer; ``text``
            says why).
        name: the tool's name, for tool events.
        args: the tool call's arguments.
        text: a result, a token, the answer, or the limit message.
        ok: False for a tool result that is an error.
        call_id: links a tool result to its call.
        seconds: for a tool result: seconds since its call was made.
        decided_by: for a tool call, what chose the tool: "the model", or
            the router's reason such as "chosen by similarity to examples (0.71)";
            for an answer, "llmapp" when llmapp stated it from the tools'
            results instead of a model writing it.
        plain: for a tool result that answers the question by itself (a
            number, a count, a time): pages show it under the model's words.
        finish_reason: for an answer, why the model ended it, as
            :attr:`llmapp.streaming.ReplyStats.finish_reason` (``"length"``:
            cut at max tokens); empty when unknown or stated by llmapp.
        stopped: for an answer, why llmapp ended it early, as
            :attr:`llmapp.streaming.ReplyStats.stopped`, or empty.
    """

    kind: str
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    ok: bool = True
    call_id: str = ""
    seconds: float = 0.0
    decided_by: str = ""
    plain: bool = False
    finish_reason: str = ""
    stopped: str = ""

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (for the chat store)."""
        return asdict(self)


def _tool_error(exc: BaseException, *args: Any, **kwargs: Any) -> str | None:
    if isinstance(exc, ToolError):
        return f"Error: {exc}"
    return None  # anything else is a bug: let it stop the run


def build_agent(model: BaseChatModel, tools: Sequence[BaseTool], *,
                system_prompt: str = DEFAULT_SYSTEM_PROMPT, max_model_calls: int = 6,
                max_tool_calls: int = 8, checkpointer: Any = None):
    """A compiled agent graph with call limits and tool errors as observations.

    Args:
        model: a chat model that supports tool calling (``bind_tools``).
        tools: the tools it may call.
        max_model_calls: model calls per run before the run ends.
        max_tool_calls: tool calls per run; further calls are answered with
            a limit message instead of running.
        checkpointer: a LangGraph checkpointer for memory across turns
            (threads keyed by ``thread_id``), or None.
    """
    from langchain.agents import create_agent
    from langchain.agents.middleware import (ModelCallLimitMiddleware, ToolCallLimitMiddleware,
                                             ToolErrorMiddleware)

    middleware = [ModelCallLimitMiddleware(run_limit=max_model_calls, exit_behavior="end"),
                  ToolCallLimitMiddleware(run_limit=max_tool_calls),
                  ToolErrorMiddleware(on_error=_tool_error)]
    return create_agent(model, list(tools), system_prompt=system_prompt, middleware=middleware,
                        checkpointer=checkpointer)


def run_agent(agent, question: str, thread_id: str | None = None,
              history: Sequence[dict[str, str]] = ()) -> Iterator[AgentEvent]:
    """Run the agent on ``question`` and yield its steps in order.

    ``history`` (earlier turns as ``{"role", "content"}`` dicts, e.g. from a
    stage-4 conversation) goes before the question: memory across turns.

    Tool calls and results come from the graph's ``updates`` stream; the final
    answer's tokens from its ``messages`` stream. A run stopped by the model
    call limit ends with a ``limit`` event.
    """
    config = {"configurable": {"thread_id": thread_id}} if thread_id else {}
    started: dict[str, float] = {}
    answered = False
    messages = [(m["role"], m["content"]) for m in history] + [("user", question)]
    for mode, chunk in agent.stream({"messages": messages}, config,
                                    stream_mode=["updates", "messages"]):
        if mode == "messages":
            message, meta = chunk
            if (meta.get("langgraph_node") == "model" and type(message).__name__ ==
                    "AIMessageChunk" and not message.tool_call_chunks and message.text):
                yield AgentEvent("token", text=str(message.text))
            continue
        for node, update in chunk.items():
            for message in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                kind = type(message).__name__
                if kind == "ToolMessage":
                    yield AgentEvent("tool_result", name=message.name or "", text=str(
                        message.content), ok=message.status != "error",
                        call_id=message.tool_call_id,
                        seconds=time.perf_counter() - started.get(message.tool_call_id,
                                                                  time.perf_counter()))
                elif kind.startswith("AIMessage") and "Limit" in node:
                    yield AgentEvent("limit", text=str(message.text))
                elif kind.startswith("AIMessage"):
                    for call in message.tool_calls:
                        started[call["id"]] = time.perf_counter()
                        yield AgentEvent("tool_call", name=call["name"], args=call["args"],
                                         call_id=call["id"], decided_by=MODEL_DECIDED)
                    if not message.tool_calls:
                        answered = True
                        yield AgentEvent("answer", text=str(message.text) or EMPTY_ANSWER,
                                         finish_reason=str((message.response_metadata or {})
                                                           .get("finish_reason") or ""))
    if not answered:
        yield AgentEvent("limit", text="The agent stopped before it could answer.")
