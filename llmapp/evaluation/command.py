"""``llmapp eval retrieval``: retrieval metrics over a question set, for one
retriever or several side by side (``--compare``). ``llmapp eval answers``:
answers graded by a judge model, saved as a run. ``llmapp eval runs``: the
saved runs, listed or compared."""

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
    evaluate = sub.add_parser("eval", help="evaluate retrieval or answers over a question set")
    kinds = evaluate.add_subparsers(dest="kind", required=True,
                                    metavar="retrieval|answers|runs|judge")
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

    answers = kinds.add_parser(
        "answers", help="answer each question from a collection, graded by a judge model",
        description='QUESTIONS is JSON Lines: one {"question": ..., "reference": ..., '
                    '"source": ...} per line (source optional). The run is saved.')
    answers.add_argument("questions", metavar="QUESTIONS")
    common(answers)
    answers.add_argument("--judge", default="local", metavar="PROVIDER[:MODEL]",
                         help="the judge: local, openai[:model] or openai-compatible[:model] "
                              "(default local: the bundled model, whose grades are noise)")
    answers.add_argument("--k", type=int, default=4, help="chunks per answer")
    answers.add_argument("--name", help="the run's name (default: model and judge)")
    answers.add_argument("--metrics", nargs="+", metavar="METRIC",
                         help="some of correctness, faithfulness, relevance, readability")
    answers.add_argument("--json", action="store_true", help="the run as JSON")

    check = kinds.add_parser(
        "judge", help="check the judge against people's feedback: agreement, Cohen's kappa, "
                      "position-swap consistency",
        description="The judge grades every reply people rated on the chat pages and compares "
                    "each corrected reply with its correction, in both orders.")
    check.add_argument("--judge", default="local", metavar="PROVIDER[:MODEL]",
                       help="the judge: local, openai[:model] or openai-compatible[:model]")
    check.add_argument("--limit", type=int, default=50,
                       help="the most recent N feedback items (default 50)")
    check.add_argument("--json", action="store_true", help="the report as JSON")

    runs = kinds.add_parser("runs", help="list saved runs, or compare some")
    runs.add_argument("--compare", nargs="+", type=int, metavar="ID",
                      help="runs to compare side by side")
    runs.add_argument("--json", action="store_true")
    return retrieval


def _database(settings):
    from llmapp.storage import Database

    return Database(settings.database_url.get_secret_value())


def cmd_eval_answers(args: argparse.Namespace, settings) -> int:
    """Run the answer evaluation, print the totals (or the run as JSON) and
    save it.

    Raises:
        ConfigError: a bad ``--k``, judge or metric.
        EvaluationError: a bad question file.
        RagError: an empty or missing collection.
        ProviderError: the judge or the model failed.
    """
    from llmapp.evaluation.answers import (
        RunConfig,
        judge_is_meaningless,
        judge_settings,
        load_answer_set,
        run_answers,
    )
    from llmapp.evaluation.judge import METRICS
    from llmapp.evaluation.runs import save_run
    from llmapp.providers import active_provider
    from llmapp.rag.answer import GROUNDED_TEMPLATE
    from llmapp.rag.store import knowledge_base
    from llmapp.safety import guard_for

    if args.k < 1:
        raise ConfigError(f"--k must be at least 1, got {args.k}.")
    metrics = tuple(args.metrics or METRICS)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"Unknown metric(s) {', '.join(unknown)}: use {', '.join(METRICS)}.")
    questions = load_answer_set(args.questions)
    judge = judge_settings(settings, args.judge)
    provider, _ = active_provider(settings)
    model = f"{provider.name}:{provider.model_name(settings)}"
    jp, _ = active_provider(judge)
    judge_name = f"{jp.name}:{jp.model_name(judge)}"
    if judge_is_meaningless(judge):
        print("note: the judge is the bundled 135M model; its grades are noise. The pipeline "
              "runs end to end; for scores that mean something, use --judge openai or a "
              "larger model on an OpenAI-compatible server.", file=sys.stderr)
    config = RunConfig(args.name or f"{model} judged by {judge_name}", model, judge_name,
                       args.collection, {"k": args.k}, GROUNDED_TEMPLATE,
                       safety_level=settings.safety_level, metrics=metrics)
    kb = knowledge_base(settings)
    if not kb.documents(args.collection):
        from llmapp.rag import RagError

        raise RagError(f"The collection {args.collection!r} is empty or missing: ingest first "
                       f"(llmapp ingest data/handbook --collection {args.collection}).")
    guard = guard_for(settings) if settings.safety_level != "off" else None

    def progress(index: int, row) -> None:
        scores = " ".join(f"{m[:4]} {row.scores.get(m, '-')}" for m in metrics)
        status = f"error: {row.error}" if row.error else scores
        print(f"[{index + 1}/{len(questions)}] {row.seconds:.1f} s  {status}  "
              f"{row.question[:60]}", file=sys.stderr)

    run = run_answers(questions, kb, settings, judge, config, guard=guard, on_row=progress)
    save_run(_database(settings), run)
    if args.json:
        print(json.dumps(run.to_dict(), ensure_ascii=False, indent=1))
        return 0
    _print_comparison([run], metrics)
    return 0


def _print_comparison(runs, metrics) -> None:
    from llmapp.evaluation.runs import comparison

    table = comparison(runs, metrics)
    if not table:
        print("No runs yet: llmapp eval answers QUESTIONS.jsonl --collection NAME")
        return
    columns = list(table[0])
    print("  ".join(f"{c:>12}" if c not in ("name", "model", "judge") else f"{c:<28}"
                    for c in columns))
    for row in table:
        cells = []
        for c in columns:
            value = row[c]
            if c in ("name", "model", "judge"):
                cells.append(f"{str(value)[:28]:<28}")
            elif isinstance(value, float):
                cells.append(f"{value:>12.3f}")
            else:
                cells.append(f"{'-' if value is None else value!s:>12}")
        print("  ".join(cells))


def cmd_eval_judge(args: argparse.Namespace, settings) -> int:
    """``llmapp eval judge``: the judge against the feedback in the database.

    Raises:
        ConfigError: a bad ``--limit`` or judge.
        ProviderError: the judge failed.
    """
    from llmapp.evaluation.agreement import check_judge
    from llmapp.evaluation.answers import judge_settings
    from llmapp.feedback import list_feedback

    if args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}.")
    judge = judge_settings(settings, args.judge)
    items = list_feedback(_database(settings))[-args.limit:]
    if not items:
        print("No feedback yet: rate replies with the thumbs under them on the chat pages.")
        return 0

    def progress(index: int, item) -> None:
        print(f"[{index + 1}/{len(items)}] thumb {item.thumb or '-'} judge "
              f"{'-' if item.score is None else item.score}  {item.question[:60]}",
              file=sys.stderr)

    report = check_judge(items, judge, on_item=progress)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        return 0
    kappa = "-" if report.kappa is None else f"{report.kappa:.2f}"
    print(f"rated replies {report.rated}, graded {report.scored}: agreement "
          f"{_share(report.agreement)}, Cohen's kappa {kappa}")
    print("thumb/judge: " + ", ".join(f"{k} {v}" for k, v in sorted(report.confusion.items())))
    print(f"corrected replies compared both ways {report.pairs}: consistent "
          f"{_share(report.consistency)}, preferring the correction "
          f"{report.prefers_correction} of {report.consistent}")
    return 0


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def cmd_eval_runs(args: argparse.Namespace, settings) -> int:
    """``llmapp eval runs``: every saved run, or ``--compare ID ...``."""
    from llmapp.evaluation.judge import METRICS
    from llmapp.evaluation.runs import comparison, list_runs, load_run

    database = _database(settings)
    runs = [load_run(database, i) for i in args.compare] if args.compare else \
        list_runs(database)
    if args.json:
        print(json.dumps(comparison(runs, list(METRICS)), ensure_ascii=False, indent=1))
        return 0
    _print_comparison(runs, list(METRICS))
    return 0


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
