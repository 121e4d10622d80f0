"""``knowledge_base``: cited snippets from a stage-3 Chroma collection, and
its guide. For a model that cannot choose tools, the search query is the
question itself, as in stage 3."""

from __future__ import annotations

import dataclasses
import logging
import re

from langchain_core.tools import BaseTool, tool

from llmapp.tools.base import ToolGuide, guided

log = logging.getLogger(__name__)

NAMES_THE_DOCUMENTS = re.compile(
    r"\b(?:my|our|the|these|those|uploaded|your)\s+(?:documents?|docs|files?|notes|handbook|"
    r"pdfs?|knowledge base|sources|manual|guide)\b|\baccording to\b", re.I)
"""A question that names the user's documents ("According to my documents,
what is TTFT?") is about them, however far its words are from the
examples and chunks: MiniLM scored that question 0.26 with both (below the
router's 0.40), and the bundled model answered about American football."""
EXPLICIT_RELEVANCE = 0.6
"""The relevance of a question that names the documents (above the router's
threshold, below what a close example scores)."""

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
        ranking's first hit need not be the closest), at least
        :data:`EXPLICIT_RELEVANCE` when the question names the documents."""
        try:
            hits = kb.search(collection, question, 1, retriever="dense")
        except Exception:  # an empty or missing collection: nothing is relevant
            log.debug("knowledge-base relevance failed", exc_info=True)
            return -1.0
        score = hits[0].score if hits else -1.0
        return max(score, EXPLICIT_RELEVANCE) if hits and NAMES_THE_DOCUMENTS.search(question) \
            else score

    def read(args, result: str) -> str:
        """The snippets' sentence closest to the query, quoted with its
        source (:func:`llmapp.rag.extractive.extract`), or that the
        documents do not say. Found in a walk: the bundled model, asked to
        answer from the snippets, cited a source that was not among them."""
        from llmapp.rag.extractive import CANDIDATE_CHUNKS, NOT_COVERED, extract

        query = str(args.get("query", ""))
        found = extract(query, kb.search(collection, query, CANDIDATE_CHUNKS), kb.embedder)
        if not found.quotes:
            return NOT_COVERED
        return f"{found.quotes[0][1]} (from {found.hits[0].cite()})"

    return guided(knowledge_base, dataclasses.replace(
        KNOWLEDGE_GUIDE, relevance=relevance, reader=read,
        relevance_reason="the question is close to your documents"))
