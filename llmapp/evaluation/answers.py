"""Answer evaluation: one run asks every question of a set through the RAG
path, as the RAG page does, and grades each answer with a judge model.

A question set is JSON Lines, one ``{"question", "reference", "source"?}``
per line (``source``, the document that answers, is optional; with it the
run also measures retrieval). A run evaluates one configuration: the model
under test, its prompt, the retrieval settings, and a judge chosen apart
from it. Its totals per metric are the mean score over the scored rows
(unscored rows are counted, never dropped); retrieval gives hit@k and MRR@k
(:mod:`llmapp.evaluation.retrieval`); safety, the share of answers the safety
filter flags at the run's level.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmapp.errors import LlmappError
from llmapp.evaluation import EvaluationError, read_jsonl
from llmapp.evaluation.judge import METRICS, SCALE, Judgement, judge_group
from llmapp.evaluation.retrieval import is_source
from llmapp.settings import Settings

MAX_QUESTIONS = 500


@dataclass(frozen=True)
class AnswerQuestion:
    """A question with its reference answer and, optionally, its source."""

    question: str
    reference: str
    source: str = ""


def parse_answer_set(text: str, name: str = "the question set") -> list[AnswerQuestion]:
    """The questions of JSON Lines text; blank lines are skipped.

    Raises:
        EvaluationError: a line that is not JSON, or lacks a non-empty
            ``question`` and ``reference``; an empty set; more than
            :data:`MAX_QUESTIONS`. The message names the line.
    """
    out = [AnswerQuestion(r["question"].strip(), r["reference"].strip(),
                          str(r.get("source") or "").strip())
           for r in read_jsonl(text, name, ("question", "reference"))]
    if len(out) > MAX_QUESTIONS:
        raise EvaluationError(f"{name}: {len(out)} questions; a run takes at most "
                              f"{MAX_QUESTIONS}.")
    return out


def load_answer_set(path: str | Path) -> list[AnswerQuestion]:
    """:func:`parse_answer_set` of a file.

    Raises:
        EvaluationError: the file cannot be read, or as for the parser.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    return parse_answer_set(text, str(path))


@dataclass
class RunConfig:
    """What one run evaluates.

    Attributes:
        name: for people.
        model: ``provider:model`` under test.
        judge: ``provider:model`` of the judge.
        collection: the Chroma collection answered from.
        retrieval: k, retriever, max_per_source.
        prompt: the system prompt of the answers (``{context}`` stands for their
            numbered chunks).
        memory: the memory strategy (a run asks single questions: ``none``).
        safety_level: the level the safety metric uses.
        metrics: the judge's metrics.
    """

    name: str
    model: str
    judge: str
    collection: str
    retrieval: dict[str, Any]
    prompt: str
    memory: str = "none (one question per conversation)"
    safety_level: str = "adult"
    metrics: tuple[str, ...] = tuple(METRICS)

    def to_dict(self) -> dict:
        return {**asdict(self), "metrics": list(self.metrics)}


@dataclass
class Row:
    """One question's outcome.

    Attributes:
        question, reference, source: from the set.
        answer: the model's answer ("" on error).
        sources: the retrieved chunks (source, page, index, score).
        rank: 1-based rank of the first chunk of ``source``, or None.
        scores: metric -> 0..3, or None when unscored.
        reasons: metric -> the judge's sentence.
        raw: metric -> the judge's raw text.
        flagged: whether the safety filter flags the answer (None: not checked).
        error: why there is no answer, or None.
        seconds: to answer and grade.
    """

    question: str
    reference: str
    source: str
    answer: str = ""
    sources: list[dict] = field(default_factory=list)
    rank: int | None = None
    scores: dict[str, int | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    flagged: bool | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalRun:
    """A finished (or stopped) run.

    Attributes:
        config: what was evaluated.
        rows: per question, in order.
        totals: see :func:`summarize`.
        status: ``complete`` or ``stopped``.
        id: its id once saved, else None.
        created_at: seconds since the epoch.
    """

    config: RunConfig
    rows: list[Row]
    totals: dict[str, Any]
    status: str = "complete"
    id: int | None = None
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {"id": self.id, "created_at": self.created_at, "status": self.status,
                "config": self.config.to_dict(), "totals": self.totals,
                "rows": [r.to_dict() for r in self.rows]}


def summarize(rows: Sequence[Row], metrics: Sequence[str], k: int) -> dict[str, Any]:
    """Totals of a run::

        {"questions": n, "answered": n,
         "<metric>": mean score or None, "<metric>_scored": n, "<metric>_unscored": n,
         "hit@k": share or None, "mrr@k": mean or None,   # over rows with a source
         "flagged": share of answers flagged, or None,
         "seconds_p50": median seconds per question}
    """
    out: dict[str, Any] = {"questions": len(rows), "answered": sum(bool(r.answer) for r in rows)}
    for metric in metrics:
        scored = [r.scores[metric] for r in rows if r.scores.get(metric) is not None]
        out[metric] = round(statistics.fmean(scored), 3) if scored else None
        out[f"{metric}_scored"] = len(scored)
        out[f"{metric}_unscored"] = sum(metric in r.scores and r.scores[metric] is None
                                        for r in rows)
    with_source = [r for r in rows if r.source and r.error is None]
    out[f"hit@{k}"] = (round(sum(r.rank is not None for r in with_source) / len(with_source), 3)
                       if with_source else None)
    out[f"mrr@{k}"] = (round(sum(1 / r.rank for r in with_source if r.rank) / len(with_source), 3)
                       if with_source else None)
    checked = [r.flagged for r in rows if r.flagged is not None]
    out["flagged"] = round(sum(checked) / len(checked), 3) if checked else None
    out["seconds_p50"] = round(statistics.median(r.seconds for r in rows), 2) if rows else None
    return out


def judge_settings(settings: Settings, spec: str) -> Settings:
    """The settings of a judge named ``provider[:model]`` (``local``,
    ``openai:gpt-5.4-mini``, ``openai-compatible:qwen2.5``), the rest as
    ``settings``.

    Raises:
        ConfigError: an unknown provider.
    """
    from llmapp import config
    from llmapp.errors import ConfigError
    from llmapp.settings import resolve

    provider, _, model = spec.partition(":")
    if provider not in config.PROVIDERS:
        raise ConfigError(f"The judge must be PROVIDER[:MODEL] with a provider among "
                          f"{', '.join(config.PROVIDERS)}, not {spec!r}.")
    overrides: dict[str, Any] = {"LLMAPP_PROVIDER": provider}
    if model:
        from llmapp.providers import get_provider

        overrides[get_provider(provider).model_setting] = model
    for name, value in (("OPENAI_API_KEY", settings.openai_api_key),
                        ("OPENAI_COMPATIBLE_BASE_URL", settings.compatible_base_url),
                        ("OPENAI_COMPATIBLE_API_KEY", settings.compatible_api_key)):
        if value:
            overrides.setdefault(name, value)
    return resolve(sidebar=overrides, overrides_label="judge")


def judge_is_meaningless(judge: Settings) -> bool:
    """True when the judge is the bundled 135M model, whose grades are noise."""
    from llmapp.providers import active_provider

    provider, _ = active_provider(judge)
    return provider.name in ("local", "scripted") and not judge.local_model_path


def run_answers(questions: Sequence[AnswerQuestion], kb, settings: Settings, judge: Settings,
                config: RunConfig, *, guard=None,
                on_row: Callable[[int, Row], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                grader: Callable[..., dict[str, Judgement]] = judge_group) -> EvalRun:
    """Answer and grade every question; the run is returned, not saved.

    Args:
        kb: the :class:`~llmapp.rag.store.KnowledgeBase` holding
            ``config.collection``.
        settings: the model under test.
        judge: the judge's settings (:func:`judge_settings`).
        guard: a :class:`~llmapp.safety.Guard` for the safety metric, or None.
        on_row: called after each question with its index and row (progress).
        should_stop: polled before each question; True ends the run early
            (``status == "stopped"``) with the rows so far.
        grader: ``grader(judge_settings, metrics, answer, question=,
            reference=, context=) -> {metric: Judgement}``; default the judge
            model (:func:`llmapp.evaluation.judge.judge_group`).

    Raises:
        ProviderError: the judge failed (a wrong key, a server down): a run
            with a broken judge would only fill the table with errors.
    """
    rows: list[Row] = []
    status = "complete"
    k = int(config.retrieval.get("k", 4))
    for index, q in enumerate(questions):
        if should_stop is not None and should_stop():
            status = "stopped"
            break
        row = _answer(q, kb, settings, config)
        if row.error is None:
            _grade(row, judge, config.metrics, grader)
            if guard is not None:
                row.flagged = not guard.check(row.answer, output=True).allowed \
                    if row.answer.strip() else False
        row.seconds = round(row.seconds, 2)
        rows.append(row)
        if on_row is not None:
            on_row(index, row)
    return EvalRun(config, rows, summarize(rows, config.metrics, k), status)


def _answer(q: AnswerQuestion, kb, settings: Settings, config: RunConfig) -> Row:
    from llmapp.chat import ChatStore
    from llmapp.rag.answer import ANSWER_PARAMS, RetrievalSettings, start_answer

    started = time.perf_counter()
    row = Row(q.question, q.reference, q.source)
    store = ChatStore()
    store.add_user(q.question)
    retrieval = RetrievalSettings(**config.retrieval)
    try:
        rag = start_answer(kb, config.collection, store, settings, ANSWER_PARAMS, retrieval)
        rag.stream.consume()
        message = rag.message()
    except LlmappError as exc:
        row.error = str(exc)
        row.seconds = time.perf_counter() - started
        return row
    row.answer = message.content
    row.sources = [{"source": h.source, "page": h.page, "index": h.index,
                    "score": round(h.score, 3), "text": h.context} for h in rag.hits]
    if q.source:
        ranks = [i for i, h in enumerate(rag.hits, start=1) if is_source(h.source, q.source)]
        row.rank = ranks[0] if ranks else None
    row.seconds = time.perf_counter() - started
    return row


def _grade(row: Row, judge_with: Settings, metrics: Sequence[str],
           grader: Callable[..., dict[str, Judgement]]) -> None:
    from llmapp.rag.answer import format_context
    from llmapp.rag.store import Hit

    started = time.perf_counter()
    hits = [Hit("", s["source"], s["page"], s["index"], s["score"], s["text"], s["text"])
            for s in row.sources]
    context = format_context(hits)
    grades = grader(judge_with, list(metrics), row.answer, question=row.question,
                    reference=row.reference, context=context)
    for metric in metrics:
        j = grades[metric]
        row.scores[metric], row.reasons[metric], row.raw[metric] = j.score, j.reason, j.raw
    row.seconds += time.perf_counter() - started


__all__ = ["SCALE", "AnswerQuestion", "EvalRun", "Row", "RunConfig", "judge_is_meaningless",
           "judge_settings", "load_answer_set", "parse_answer_set", "run_answers", "summarize"]
