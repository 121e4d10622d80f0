"""``knowledge_base``: cited snippets from a stage-3 Chroma collection, and
its guide. For a model that cannot choose tools, the search query is the
question itself, as in stage 3."""

from __future__ import annotations

import dataclasses
import logging

from langchain_core.tools import BaseTool, tool

from llmapp.tools.base import ToolGuide, guided

log = logging.getLogger(__name__)

KNOWLEDGE_GUIDE = ToolGuide(
    examples=(
        ("What do my documents say about the vacation policy?", {"query": "vacation policy"}),
        ("Search the knowledge base for how onboarding works", {"query": "onboarding"}),
        ("According to the handbook, who approves expenses?", {"query": "who approves expenses"}),
        ("What does the guide recommend for naming files?", {"query": "naming files"}),
        ("Look up in my notes what we decided about the launch date",
         {"query": "launch date decision"}),
        ("What is written in the docs about error handling?", {"query": "error handling"}),
        ("Find the part of my files that explains the pricing", {"query": "pricing"}),
    ),
    narrow=lambda question: {"query": {"const": question.strip()}})


def make_knowledge_base_tool(kb, collection: str, k: int = 3) -> BaseTool:
    """The ``knowledge_base`` tool over a stage-3 collection: ``k`` snippets,
    numbered ``[n]`` with their source, each cut to 800 characters."""

    @tool
    def knowledge_base(query: str) -> str:
        """Search the user's documents; returns numbered snippets with their
        source file and page, to cite."""
        hits = kb.search(collection, query, k)
        return "\n\n".join(f"[{n}] {h.cite()}\n{' '.join(h.context.split())[:800]}"
                           for n, h in enumerate(hits, start=1)) or "Nothing found."

    def relevance(question: str) -> float:
        """The best chunk's cosine similarity (embeddings only: a fused
        ranking's first hit need not be the closest)."""
        try:
            hits = kb.search(collection, question, 1, retriever="dense")
        except Exception:  # an empty or missing collection: nothing is relevant
            log.debug("knowledge-base relevance failed", exc_info=True)
            return -1.0
        return hits[0].score if hits else -1.0

    return guided(knowledge_base, dataclasses.replace(KNOWLEDGE_GUIDE, relevance=relevance))
