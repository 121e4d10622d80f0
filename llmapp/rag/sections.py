"""Section ranking: a collection's section headings, embedded on their own.

A question in a user's words often names a page's topic better than any one
of its chunks does ("split a big app into reusable components" and the
heading "Modular Applications with Blueprints"). Each chunk carries its
document title and section path (``Chunk.section``, e.g. ``Options > Multi
Value Options``); this index embeds every distinct path once and ranks them
by cosine similarity to the question. Each section's rank then goes to its
best chunk among those the chunk embeddings and BM25 found, so the headings
reorder candidates and never add one of their own.

It is the third ranking that :func:`llmapp.rag.lexical.fuse` merges with the
chunk embeddings and BM25 (reciprocal rank fusion), the multi-field idea of
ranking titles separately from bodies (Robertson, Zaragoza and Taylor,
"Simple BM25 extension to multiple weighted fields", CIKM 2004), here with
embeddings. Measured with ``benchmarks/bench_retrieval.py`` on 66 questions
over Click's and Flask's docs: see the README's retrieval table.

Like the BM25 index it is a cache of Chroma, never a second store: built from
the collection's own chunks, keyed by the collection's ``revision``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

import numpy as np
from langchain_core.embeddings import Embeddings


MIN_SIMILARITY = 0.30
"""Headings less similar to the question than this (cosine) are not ranked:
they say nothing about it. Measured with all-MiniLM-L6-v2: on the 66
questions of ``tests/data/retrieval_questions.jsonl`` the best heading's
similarity has p25 0.39 and minimum 0.28, and MRR@5 was 0.889 with no floor,
0.892 at 0.30 and 0.848 at 0.35; on the sample handbook, "How many
dimensions does all-MiniLM-L6-v2 produce?" matched its best heading ("Stage 6:
agents") at 0.18, and without a floor that pushed the answering chunk from
first to second."""


class SectionIndex:
    """Distinct section paths of a collection's chunks, embedded.

    Args:
        rows: ``(chunk id, source, section path)``. A chunk without a section
            path (a PDF, a text file without headers) is ranked by its file's
            name instead (``03_rag_in_practice.pdf``: "03 rag in practice"),
            so documents without headings are not left out of this ranking.
        embedder: the collection's embedder (the query is embedded by it too).
        previous: the index this one replaces (same collection and embedder):
            headings it already embedded are not embedded again. Measured
            with ``benchmarks/bench_rag.py``: 2,500 headings of 10,000 chunks
            take ~5 s to embed on 2 cores.
    """

    def __init__(self, rows: Iterable[tuple[str, str, str | None]],
                 embedder: Embeddings, previous: SectionIndex | None = None) -> None:
        members: dict[str, list[tuple[str, str]]] = {}
        for chunk_id, source, section in rows:
            heading = section if section and section.strip() else file_heading(source)
            if heading:
                members.setdefault(heading, []).append((chunk_id, source))
        self._sections = list(members)
        self._members = [members[s] for s in self._sections]
        known = previous.vectors() if previous is not None else {}
        new = [s for s in self._sections if s not in known]
        known |= dict(zip(new, _unit(embedder.embed_documents(new)) if new else [], strict=True))
        self._vectors = np.array([known[s] for s in self._sections], dtype=np.float32) \
            if self._sections else np.zeros((0, 1), dtype=np.float32)
        self.size = len(self._sections)

    def vectors(self) -> dict[str, np.ndarray]:
        """Each heading's unit vector, by heading."""
        return dict(zip(self._sections, self._vectors, strict=True))

    def search(self, vector: Sequence[float], n: int, sources: Sequence[str] | None = None,
               min_similarity: float = MIN_SIMILARITY) -> list[list[str]]:
        """Chunk ids grouped by section, best section first, about ``n``
        chunks in all (whole sections: the last one may overshoot), only from
        ``sources`` when given, only sections at least ``min_similarity``
        (cosine) like the question. ``vector`` is the embedded question."""
        if not self.size or n < 1:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query = query / (float(np.linalg.norm(query)) or 1.0)
        wanted = set(sources) if sources else None
        groups: list[list[str]] = []
        total = 0
        similarity = self._vectors @ query
        for index in np.argsort(-similarity, kind="stable"):
            if similarity[index] < min_similarity:
                break
            ids = [i for i, s in self._members[index] if wanted is None or s in wanted]
            if ids:
                groups.append(ids)
                total += len(ids)
            if total >= n:
                break
        return groups


def file_heading(source: str) -> str:
    """A heading made of a file's name: its stem, with ``_``, ``-`` and ``.``
    read as spaces (``docs/03_rag_in_practice.pdf`` -> ``03 rag in practice``)."""
    stem = PurePosixPath(source.replace("\\", "/")).stem
    return " ".join(re.split(r"[_\-.\s]+", stem)).strip()


def _unit(vectors: list[list[float]]) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.clip(np.linalg.norm(array, axis=1, keepdims=True), 1e-12, None)
