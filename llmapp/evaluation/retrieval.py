"""Retrieval metrics over a question set: hit@k, MRR@k and nDCG@k.

A question set is JSON Lines, one ``{"question": ..., "source": ...}`` per
line; ``source`` is the document that answers it, as a file name or a path
suffix (``options.html`` matches ``click/options.html``). A retrieved chunk is
relevant when its document matches (binary relevance).

* hit@k: the share of questions with a relevant chunk in the top k.
* MRR@k: the mean of 1 / rank of the first relevant chunk (0 if none in the
  top k); Voorhees, "The TREC-8 Question Answering Track Report" (1999).
* nDCG@k: DCG = sum of rel_i / log2(i + 1) over the top k, divided by the
  DCG of an ideal ranking with the relevant document's chunks first (as many
  as it has, up to k); Järvelin and Kekäläinen, "Cumulated gain-based
  evaluation of IR techniques", ACM TOIS 20(4), 2002.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmapp.evaluation import EvaluationError, read_jsonl


@dataclass(frozen=True)
class RetrievalQuestion:
    """A question and the document that answers it."""

    question: str
    source: str


def load_questions(path: str | Path) -> list[RetrievalQuestion]:
    """The questions of a JSON Lines file; blank lines are skipped.

    Raises:
        EvaluationError: a missing file, a line that is not JSON, or one
            without a non-empty ``question`` and ``source``; the message names
            the line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    rows = read_jsonl("\n".join(lines), str(path), ("question", "source"))
    questions = [RetrievalQuestion(r["question"].strip(), r["source"].strip()) for r in rows]
    return questions


def is_source(found: str, source: str) -> bool:
    """Whether a retrieved document name ``found`` is ``source``: equal, or
    ending in ``/`` + ``source``."""
    return found == source or found.endswith("/" + source.lstrip("/"))


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome.

    Attributes:
        question, source: from the set.
        rank: 1-based rank of the first relevant chunk in the top k, or None.
        ndcg: this question's nDCG@k, 0 to 1.
        found: the top k documents, in order.
    """

    question: str
    source: str
    rank: int | None
    ndcg: float
    found: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetrievalReport:
    """Totals over a question set for one retriever.

    Attributes:
        name: the retriever's name, e.g. ``dense``.
        k: the cutoff.
        hit: hit@k, 0 to 1.
        mrr: MRR@k, 0 to 1.
        ndcg: nDCG@k, 0 to 1.
        results: per question.
        p50_ms: median search time per question, in milliseconds.
    """

    name: str
    k: int
    hit: float
    mrr: float
    ndcg: float
    results: list[QuestionResult] = field(default_factory=list)
    p50_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the totals and each question's rank."""
        return {"name": self.name, "k": self.k, f"hit@{self.k}": round(self.hit, 4),
                f"mrr@{self.k}": round(self.mrr, 4), f"ndcg@{self.k}": round(self.ndcg, 4),
                "p50_ms": round(self.p50_ms, 1),
                "questions": [{"question": r.question, "source": r.source, "rank": r.rank,
                               "found": list(r.found)} for r in self.results]}


def score(found: Sequence[str], source: str, k: int, relevant_total: int) -> tuple[int | None,
                                                                                     float]:
    """``(rank, nDCG@k)`` of one ranked list of document names.

    Args:
        found: the retrieved chunks' documents, best first.
        source: the relevant document.
        k: the cutoff.
        relevant_total: how many chunks the relevant document has (at least
            1 is assumed), for the ideal ranking.
    """
    relevant = [is_source(f, source) for f in found[:k]]
    rank = relevant.index(True) + 1 if any(relevant) else None
    dcg = sum(1 / math.log2(i + 2) for i, rel in enumerate(relevant) if rel)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, max(1, relevant_total))))
    return rank, dcg / ideal


def evaluate(questions: Sequence[RetrievalQuestion], search: Callable[[str], Sequence[str]],
             k: int, chunks_per_source: Mapping[str, int], name: str = "retriever"
             ) -> RetrievalReport:
    """Run ``search`` (question -> document names of its top hits, best
    first) on every question and total the metrics.

    Args:
        chunks_per_source: chunk counts by document name, for nDCG's ideal
            ranking (:meth:`llmapp.rag.store.KnowledgeBase.documents`).
    """
    import statistics
    import time

    results, times = [], []
    for q in questions:
        started = time.perf_counter()
        found = tuple(search(q.question))[:k]
        times.append(1000 * (time.perf_counter() - started))
        total = sum(n for doc, n in chunks_per_source.items() if is_source(doc, q.source))
        rank, ndcg = score(found, q.source, k, total)
        results.append(QuestionResult(q.question, q.source, rank, ndcg, found))
    n = len(results)
    return RetrievalReport(
        name, k, hit=sum(r.rank is not None for r in results) / n,
        mrr=sum(1 / r.rank for r in results if r.rank) / n,
        ndcg=sum(r.ndcg for r in results) / n, results=results,
        p50_ms=statistics.median(times))
