"""What every tool shares: its error type, and the guide that lets a model
which cannot choose tools use it anyway (see :mod:`llmapp.routing`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool

from llmapp.errors import LlmappError


class ToolError(LlmappError):
    """A tool could not do what was asked; the message says why."""


Narrow = Callable[[str], Mapping[str, dict[str, Any]]]
"""``question -> {argument: JSON Schema keywords}`` merged into that
argument's schema before decoding, e.g. ``{"text": {"enum": ["the quick fox"]}}``."""


@dataclass(frozen=True)
class ToolGuide:
    """How a tool is used by a model that cannot choose tools itself.

    Attributes:
        examples: ``(request, arguments)`` pairs. The requests are what the
            semantic router compares a question with; the pairs are the
            few-shot examples for filling in the arguments.
        narrow: optional; given the question, JSON Schema keywords per
            argument (``pattern``, ``enum``, ``const``) that the decoder's
            grammar enforces: only the numbers in the question, the quoted
            text, the time zones it names.
        result_is_answer: the result answers the question by itself (a
            number, a count, a time), so pages show it plainly under the
            model's words.
        hint: one sentence for the model that fills in the arguments.
        answer_phrases: optional; given the tool's result and the question,
            the phrases of which the model's answer must state one (a
            grammar enforces it), e.g. ``["437"]``; only used when
            ``result_is_answer``.
        state: optional; given the arguments and the result, the answer in
            one sentence ("23 * 19 = 437"): what a model too small to word
            the answer says instead (only used when ``result_is_answer``).
        reader: optional; given the arguments and the result, the answer
            read out of the result by llmapp, for a model too small to read
            it (the knowledge base quotes its sentence closest to the query,
            with its source, as stage 3's extractive answers do).
        relevance: optional; given the question, a cosine similarity from the
            tool's own data that the router takes when it beats the examples'.
            The knowledge base's is its best chunk's: whether a question is
            about the user's documents depends on what they contain, which
            no fixed example can know.
        relevance_reason: what a route chosen by ``relevance`` says, e.g.
            "the question writes its arithmetic out".
    """

    examples: tuple[tuple[str, Mapping[str, Any]], ...]
    narrow: Narrow | None = None
    result_is_answer: bool = False
    hint: str = ""
    answer_phrases: Callable[[str, str], list[str]] | None = None
    relevance: Callable[[str], float] | None = None
    state: Callable[[Mapping[str, Any], str], str] | None = None
    reader: Callable[[Mapping[str, Any], str], str] | None = None
    relevance_reason: str = ""
    requests: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.examples:
            raise ValueError("A tool guide needs at least one example request.")
        object.__setattr__(self, "requests", tuple(r for r, _ in self.examples))


GUIDE_KEY = "llmapp_guide"


def guided(tool: BaseTool, guide: ToolGuide) -> BaseTool:
    """Attach ``guide`` to ``tool`` (in its ``metadata``) and return the tool."""
    tool.metadata = {**(tool.metadata or {}), GUIDE_KEY: guide}
    return tool


def guide_of(tool: BaseTool) -> ToolGuide | None:
    """The tool's guide, or None for a tool that has none (the router then
    never picks it)."""
    guide = (tool.metadata or {}).get(GUIDE_KEY)
    return guide if isinstance(guide, ToolGuide) else None
