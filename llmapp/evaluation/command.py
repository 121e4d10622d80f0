"""``llmapp eval retrieval``: retrieval metrics over a question set, for one
retriever or several side by side (``--compare``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from llmapp.errors import ConfigError

RETRIEVAL_PRESETS: dict[str, dict[str, Any]] = {
    "hybrid": {},
    "dense": {"retriever": "dense"},
    "lexical": {"retriever": "lexical"},
    "hybrid-mmr": {"mmr": True},
    "hybrid-cap1": {"max_per_source": 1},
    "hybrid-cap2": {"max_per_source": 2},
    "dense-mmr": {"retriever": "dense", "mmr": True},
}
"""Named retrieval settings, as keyword arguments of
:meth:`llmapp.rag.store.KnowledgeBase.search`."""


def add_parser(sub: argparse._SubParsersAction,
               common: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Register ``eval retrieval`` on the CLI's subparsers; ``common`` adds
    the shared options (collection). Returns the ``retrieval`` parser, for
    the CLI to set its ``func``."""
    evaluate = sub.add_parser("eval", help="evaluate retrieval over a question set")
    kinds = evaluate.add_subparsers(dest="kind", required=True, metavar="retrieval")
    retrieval = kinds.add_parser(
        "retrieval", help="hit@k, MRR@k and nDCG@k of a collection's retriever",
        description="QUESTIONS is JSON Lines: one {\"question\": ..., \"source\": ...} per "
                    "line, source being the answering document's name or path suffix.")
    retrieval.add_argument("questions", metavar="QUESTIONS")
    common(retrieval)
    retrieval.add_argument("--k", type=int, default=5)
    retrieval.add_argument("--compare", nargs="+", choices=list(RETRIEVAL_PRESETS),
                           metavar="RETRIEVER", default=["hybrid"],
                           help=f"retrievers to run side by side: {', '.join(RETRIEVAL_PRESETS)}")
    retrieval.add_argument("--json", action="store_true",
                           help="the totals and each question's rank as JSON")
    return retrieval


def cmd_eval_retrieval(args: argparse.Namespace, settings) -> int:
    """Run each retriever over the questions; a table (or JSON) on stdout,
    the questions the last retriever missed on stderr.

    Raises:
        ConfigError: a bad ``--k``.
        EvaluationError: a bad question file.
        RagError: no such collection.
    """
    from llmapp.evaluation.retrieval import evaluate, load_questions
    from llmapp.rag.store import knowledge_base

    if args.k < 1:
        raise ConfigError(f"--k must be at least 1, got {args.k}.")
    questions = load_questions(args.questions)
    kb = knowledge_base(settings)
    counts = kb.documents(args.collection)
    reports = []
    for name in args.compare:
        options = RETRIEVAL_PRESETS[name]

        def search(question: str, options=options) -> list[str]:
            return [h.source for h in kb.search(args.collection, question, args.k, **options)]

        reports.append(evaluate(questions, search, args.k, counts, name))
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=1))
        return 0
    k = args.k
    print(f"{len(questions)} questions, collection {args.collection!r}, k={k}")
    print(f"{'retriever':<12} {'hit@' + str(k):>7} {'MRR@' + str(k):>7} {'nDCG@' + str(k):>7} "
          f"{'p50 ms':>7}")
    for r in reports:
        print(f"{r.name:<12} {r.hit:>7.3f} {r.mrr:>7.3f} {r.ndcg:>7.3f} {r.p50_ms:>7.1f}")
    missed = [q for q in reports[-1].results if q.rank is None]
    if missed:
        print(f"\nmissed by {reports[-1].name} ({len(missed)}):", file=sys.stderr)
        for q in missed:
            print(f"  {q.question}  [{q.source}; found {', '.join(q.found[:3])}]",
                  file=sys.stderr)
    return 0
