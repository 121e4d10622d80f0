"""A semantic router: which tool a question needs, decided by embeddings
instead of by the model (stages 5 and 6 for models that cannot choose tools).

Every tool's :class:`~llmapp.tools.ToolGuide` carries example requests. The
router embeds them once with the bundled all-MiniLM-L6-v2, and scores a
question against each tool as the cosine similarity to its closest example.
The best tool wins if it scores at least the threshold and beats
:data:`NO_TOOL_EXAMPLES`, requests that need no tool; otherwise the answer is
"no tool". This is the design of aurelio-labs/semantic-router (routes of
utterances, nearest utterance, a score threshold). That library is not used:
its core install pulls cohere, mistralai, voyageai and aurelio-sdk clients,
and its offline encoders need torch or download models at run time.

The router always embeds with the local MiniLM, whatever ``LLMAPP_EMBEDDER``
says: the threshold (:data:`llmapp.config.ROUTER_THRESHOLD`) was chosen for it,
and routing costs no API call.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.tools import BaseTool

from llmapp import config
from llmapp.settings import Settings
from llmapp.tools import guide_of

NO_TOOL_EXAMPLES = (
    "Hi there!", "Good afternoon to you", "Thank you so much", "Tell me a joke",
    "Write a short poem about the sea",
    "Who wrote Romeo and Juliet?", "Explain how photosynthesis works",
    "What is the capital of Italy?", "Give me three ideas for a birthday party",
    "What are you?", "Translate 'good night' into French", "Summarize the plot of Hamlet",
    "How do I become a better writer?", "What's the difference between a list and a tuple?",
    "See you later", "I feel a bit tired today",
)
"""Requests that need no tool: a question closer to one of these than to any
tool's examples gets "no tool", whatever its score."""
NO_TOOL = "(no tool)"

_QUOTED = re.compile(r'"[^"]+"|“[^”]+”|‘[^’]+’|(?<![A-Za-z])\'[^\']+\'(?![A-Za-z])')


def request_form(text: str) -> str:
    """``text`` with quoted spans replaced by ``'text'``: what is asked, not
    what it is asked about. "How many words are in 'a stitch in time saves
    nine'?" is a word-count request whatever the quote says, but its
    embedding leans to the quote (0.34 for word count, 0.40 for the
    calculator, before masking)."""
    return _QUOTED.sub("'text'", text)


_VECTORS: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


def _embed(embedder: Embeddings, texts: Sequence[str]) -> np.ndarray:
    """Unit vectors of ``texts`` as an (n, d) array, cached per text for the
    process (the examples are embedded once, not per question)."""
    with _LOCK:
        missing = [t for t in dict.fromkeys(texts) if t not in _VECTORS]
        if missing:
            for text, vector in zip(missing, embedder.embed_documents(missing), strict=True):
                vector = np.asarray(vector, dtype=np.float32)
                _VECTORS[text] = vector / (np.linalg.norm(vector) or 1.0)
        return np.stack([_VECTORS[t] for t in texts])


@dataclass(frozen=True)
class Route:
    """The router's decision for one question.

    Attributes:
        tool: the tool's name, or None for "no tool".
        score: cosine similarity (-1..1) of the question to the chosen tool's
            closest example; for "no tool", to the closest tool's.
        closest: the best-scoring tool, chosen or not (None if none was open).
        scores: every open tool's score, and :data:`NO_TOOL`'s.
        threshold: the threshold it was held to.
        by_relevance: the chosen tool's score is its guide's own relevance
            (the knowledge base's best chunk, or the question naming the
            documents), not its examples'.
        why: the guide's words for that relevance, if it has any.
    """

    tool: str | None
    score: float
    closest: str | None
    scores: dict[str, float] = field(default_factory=dict)
    threshold: float = config.ROUTER_THRESHOLD
    by_relevance: bool = False
    why: str = ""

    @property
    def reason(self) -> str:
        """What decided, in a user's words, e.g. "chosen by similarity to
        examples (0.71)"."""
        if self.tool and self.by_relevance:
            return (f"chosen because {self.why} ({self.score:.2f})" if self.why else
                    f"chosen by its own relevance to the question ({self.score:.2f})")
        if self.tool:
            return f"chosen by similarity to examples ({self.score:.2f})"
        if self.closest is None:
            return "no tool left to choose"
        if self.scores.get(NO_TOOL, -1.0) >= self.score:
            return (f"no tool: the question is closer to chit-chat "
                    f"({self.scores[NO_TOOL]:.2f}) than to {self.closest} ({self.score:.2f})")
        return (f"no tool: the closest, {self.closest}, scored {self.score:.2f}, "
                f"below {self.threshold:.2f}")


class SemanticRouter:
    """Routes a question to one of ``tools`` by their guides' example requests.

    Tools without a :class:`~llmapp.tools.ToolGuide` are never chosen.

    Args:
        tools: the tools it may choose.
        embedder: default the bundled all-MiniLM-L6-v2 (see the module's docstring).
        threshold: see :data:`llmapp.config.ROUTER_THRESHOLD`.
    """

    def __init__(self, tools: Iterable[BaseTool], embedder: Embeddings | None = None,
                 threshold: float = config.ROUTER_THRESHOLD) -> None:
        if embedder is None:
            from llmapp.rag.embeddings import LocalEmbeddings

            embedder = LocalEmbeddings()
        self.embedder = embedder
        self.threshold = threshold
        guides = {t.name: guide for t in tools if (guide := guide_of(t)) is not None}
        self.examples: dict[str, tuple[str, ...]] = {
            n: tuple(map(request_form, g.requests)) for n, g in guides.items()}
        self.examples[NO_TOOL] = NO_TOOL_EXAMPLES
        self.relevance = {n: g.relevance for n, g in guides.items() if g.relevance}
        self.why = {n: g.relevance_reason for n, g in guides.items()}

    def scores(self, question: str) -> dict[str, float]:
        """Each route's score for ``question``: the cosine similarity to its
        closest example, by tool name (and :data:`NO_TOOL`), or the tool's
        own relevance where its guide has one and it is higher."""
        return self._scores(question)[0]

    def _scores(self, question: str) -> tuple[dict[str, float], set[str]]:
        """:meth:`scores`, and the tools whose score is their own relevance."""
        query = _embed(self.embedder, [request_form(question.strip())])[0]
        scores = {name: float((_embed(self.embedder, examples) @ query).max())
                  for name, examples in self.examples.items()}
        own = set()
        for name, relevance in self.relevance.items():
            value = relevance(question)
            if value > scores[name]:
                scores[name] = value
                own.add(name)
        return scores, own

    def route(self, question: str, exclude: Iterable[str] = ()) -> Route:
        """The tool ``question`` needs, leaving out the tools in ``exclude``
        (those already used in an agent run)."""
        skip = set(exclude)
        every, own = self._scores(question)
        scores = {n: s for n, s in every.items() if n not in skip}
        tools = {n: s for n, s in scores.items() if n != NO_TOOL}
        if not tools:
            return Route(None, 0.0, None, scores, self.threshold)
        best = max(tools, key=tools.get)
        chosen = tools[best] >= self.threshold and tools[best] > scores[NO_TOOL]
        return Route(best if chosen else None, tools[best], best, scores, self.threshold,
                     by_relevance=chosen and best in own, why=self.why.get(best, ""))

    def next_route(self, question: str, used: Sequence[str]) -> tuple[Route, str]:
        """The next step of an agent run and the text it serves, as
        ``(route, part)``. The first step routes the whole question. Later
        steps route each of its :func:`clauses` in turn, among the tools not
        used yet, and take the first that finds one; a one-clause question
        thus takes one tool at most."""
        if not used:
            return self.route(question), question
        first = None
        parts = clauses(question)
        for part in parts if len(parts) > 1 else ():
            route = self.route(part, exclude=used)
            if route.tool:
                return route, part
            first = first or route
        return first or Route(None, 0.0, None, {}, self.threshold), question


_CLAUSE_BREAK = re.compile(
    r"(?<=[?;!])\s+|\.\s+(?=[A-Z])|,?\s+(?:and|then|also)\s+(?=(?:what|what's|how|who|when|"
    r"where|which|tell|give|count|find|search|look|is|are|do|does|can|could)\b)",
    flags=re.IGNORECASE)


def clauses(question: str) -> list[str]:
    """The parts of a question that may each need a tool: "What is 23*19,
    and what time is it in Tokyo?" -> ``["What is 23*19", "what time is it
    in Tokyo?"]``. It splits at sentence ends, and at "and"/"then"/"also"
    followed by a question word, so "Add 8, 15 and 4" stays whole."""
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK.split(question.strip())]
    return [p for p in parts if p] or [question.strip()]


def tool_choice(settings: Settings) -> tuple[str, str]:
    """Who picks tools with these settings, and why: ``("router" | "model",
    reason)``. ``LLMAPP_TOOL_CHOICE=auto`` routes when the active provider's
    model cannot choose tools (the bundled one)."""
    from llmapp.providers import active_provider

    if settings.tool_choice in ("router", "model"):
        return settings.tool_choice, f"LLMAPP_TOOL_CHOICE is {settings.tool_choice}"
    provider, _ = active_provider(settings)
    if provider.picks_tools:
        return "model", f"the {provider.label} model chooses tools itself"
    return "router", (f"the {provider.label} model is too small to choose tools, so a "
                      "semantic router does")
