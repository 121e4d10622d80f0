"""Lexical retrieval: BM25 over a collection's chunks, and its fusion with
dense retrieval.

Chroma ranks by embeddings only on a local client ("Sparse vector indexing
is not enabled in local", chromadb 1.5), so the BM25 index is SQLite's FTS5
(``bm25()``, Porter stemming), built in memory from the collection's own
chunks. It is a cache of Chroma, never a second store: it is keyed by the
collection's ``revision``, which :class:`~llmapp.rag.store.KnowledgeBase`
changes on every add, replace and delete, and rebuilt when the revision (or
the chunk count) differs. Every process, on disk or on a Chroma server, thus
searches exactly what Chroma holds.

Dense, lexical and section-heading rankings (:mod:`llmapp.rag.sections`)
are merged by reciprocal rank fusion (RRF):
score = sum over rankings of 1 / (60 + rank); Cormack, Clarke and Büttcher,
"Reciprocal rank fusion outperforms Condorcet and individual rank learning
methods", SIGIR 2009 (k = 60 is theirs).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RRF_K = 60
_STOPWORD_TEXT = (
    "a an and are as at be by can do does for from how i if in into is it its my of on or "
    "so than that the their then there these this to was we what when where which who why "
    "will with you your")
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""Words too common to rank by; a question's other words are ORed."""


def match_expression(query: str) -> str | None:
    """An FTS5 query that ORs ``query``'s words, each quoted (so no word is
    read as FTS5 syntax); None when it has no word but stopwords."""
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words)) or None


class LexicalIndex:
    """BM25 (SQLite FTS5) over chunks, in memory.

    Args:
        rows: ``(chunk id, source, text)``; the text is what is indexed (the
            chunk's section path and its text).
    """

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE VIRTUAL TABLE chunks USING fts5(id UNINDEXED, source "
                         "UNINDEXED, body, tokenize='porter unicode61')")
        self._db.executemany("INSERT INTO chunks VALUES (?, ?, ?)", rows)
        self.size = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def search(self, query: str, n: int, sources: Sequence[str] | None = None) -> list[str]:
        """The ids of the ``n`` best chunks for ``query`` by BM25, best first,
        only from ``sources`` when given."""
        expression = match_expression(query)
        if expression is None or n < 1:
            return []
        sql = "SELECT id FROM chunks WHERE chunks MATCH ?"
        args: list = [expression]
        if sources:
            sql += f" AND source IN ({', '.join('?' * len(sources))})"
            args += list(sources)
        with self._lock:
            return [row[0] for row in self._db.execute(
                sql + " ORDER BY bm25(chunks) LIMIT ?", [*args, n])]


@dataclass(frozen=True)
class Fused:
    """One chunk after fusion: its id, RRF score, and which rankings found it."""

    id: str
    score: float
    found_by: str


def fuse(dense: Sequence[str], lexical: Sequence[str],
         sections: Sequence[Sequence[str]] = (), k: int = RRF_K) -> list[Fused]:
    """Reciprocal rank fusion of rankings of chunk ids, best first.

    Args:
        dense: chunk ids by embedding similarity, best first.
        lexical: chunk ids by BM25, best first.
        sections: chunk ids grouped by section, best section first
            (:meth:`llmapp.rag.sections.SectionIndex.search`). A section's
            rank goes to one chunk: its best one that ``dense`` or
            ``lexical`` found. So the headings reorder what the other two
            rankings found and add nothing of their own, and one section
            (or, with chunks that carry only a title, one document) cannot
            fill the results.
        k: RRF's constant.

    ``found_by`` is ``dense``, ``lexical`` or ``both``.
    """
    scores: dict[str, float] = {}
    for ranking in (dense, lexical):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    for rank, group in enumerate(sections, start=1):
        found = [i for i in group if i in scores]
        if found:
            best = max(found, key=lambda i: (scores[i], i))
            scores[best] += 1.0 / (k + rank)
    dense_set, lexical_set = set(dense), set(lexical)

    def by(chunk_id: str) -> str:
        if chunk_id in dense_set and chunk_id in lexical_set:
            return "both"
        return "dense" if chunk_id in dense_set else "lexical"

    ordered = sorted(scores, key=lambda i: (-scores[i], i))
    return [Fused(i, scores[i], by(i)) for i in ordered]
