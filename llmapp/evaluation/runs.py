"""Evaluation runs kept in the database (:mod:`llmapp.storage`), to list and
compare, on the page and in ``llmapp eval runs``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from llmapp.evaluation import EvaluationError
from llmapp.evaluation.answers import EvalRun, Row, RunConfig
from llmapp.storage import Database


@dataclass(frozen=True)
class RunSummary:
    """A saved run's header: ``id``, ``name``, ``created_at``, ``status``,
    its ``config`` and ``totals`` as dicts."""

    id: int
    name: str
    created_at: float
    status: str
    config: dict
    totals: dict


def save_run(database: Database, run: EvalRun) -> int:
    """Save ``run`` with its rows; returns its id (also set on ``run``).

    Raises:
        StoreError: the database failed.
    """
    from llmapp.storage.schema import eval_rows, eval_runs

    with database.write() as conn:
        run.id = conn.execute(eval_runs.insert().values(
            name=run.config.name, created_at=run.created_at, status=run.status,
            config=json.dumps(run.config.to_dict()), totals=json.dumps(run.totals))
        ).inserted_primary_key[0]
        for idx, row in enumerate(run.rows):
            conn.execute(eval_rows.insert().values(run_id=run.id, idx=idx,
                                                   data=json.dumps(row.to_dict())))
    return run.id


def list_runs(database: Database) -> list[RunSummary]:
    """Saved runs, newest first."""
    from sqlalchemy import select

    from llmapp.storage.schema import eval_runs as t

    with database.read() as conn:
        rows = conn.execute(select(t).order_by(t.c.created_at.desc(), t.c.id.desc())).all()
    return [RunSummary(r.id, r.name, r.created_at, r.status, json.loads(r.config),
                       json.loads(r.totals)) for r in rows]


def load_run(database: Database, run_id: int) -> EvalRun:
    """A saved run with its rows.

    Raises:
        EvaluationError: no such run.
    """
    from sqlalchemy import select

    from llmapp.storage.schema import eval_rows, eval_runs

    with database.read() as conn:
        head = conn.execute(select(eval_runs).where(eval_runs.c.id == run_id)).first()
        if head is None:
            raise EvaluationError(f"There is no evaluation run {run_id}: see llmapp eval runs.")
        rows = conn.execute(select(eval_rows.c.data).where(eval_rows.c.run_id == run_id)
                            .order_by(eval_rows.c.idx)).scalars().all()
    config = json.loads(head.config)
    config["metrics"] = tuple(config.get("metrics", ()))
    return EvalRun(RunConfig(**config), [Row(**json.loads(r)) for r in rows],
                   json.loads(head.totals), head.status, head.id, head.created_at)


def delete_run(database: Database, run_id: int) -> None:
    """Delete a run and its rows."""
    from llmapp.storage.schema import eval_rows, eval_runs

    with database.write() as conn:
        conn.execute(eval_rows.delete().where(eval_rows.c.run_id == run_id))
        conn.execute(eval_runs.delete().where(eval_runs.c.id == run_id))


def comparison(runs: Sequence[RunSummary | EvalRun], metrics: Sequence[str]) -> list[dict]:
    """One row per run: id, name, model, judge, each metric's mean, hit@k,
    flagged share, questions; what the page charts and the CLI prints."""
    out = []
    for run in runs:
        config = run.config if isinstance(run.config, dict) else run.config.to_dict()
        totals = run.totals
        k = config.get("retrieval", {}).get("k", 4)
        out.append({"run": run.id, "name": config["name"], "model": config["model"],
                    "judge": config["judge"],
                    **{m: totals.get(m) for m in metrics},
                    f"hit@{k}": totals.get(f"hit@{k}"), "flagged": totals.get("flagged"),
                    "questions": totals.get("questions")})
    return out


def rows_csv(run: EvalRun) -> str:
    """The run's rows as CSV: question, reference, answer, rank, each
    metric's score and reason, flagged, error, seconds."""
    metrics = list(run.config.metrics)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["question", "reference", "source", "answer", "rank",
                     *[f"{m}" for m in metrics], *[f"{m}_reason" for m in metrics],
                     "flagged", "error", "seconds"])
    for r in run.rows:
        writer.writerow([r.question, r.reference, r.source, r.answer, r.rank,
                         *[r.scores.get(m) for m in metrics],
                         *[r.reasons.get(m, "") for m in metrics], r.flagged, r.error or "",
                         r.seconds])
    return buffer.getvalue()
