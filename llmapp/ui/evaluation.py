"""The Evaluation page's widgets: the question set, the judge, a run with a
progress bar (stopped by the Stop button, its rows so far kept), the rows of
a run, and runs compared in charts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import streamlit as st

from llmapp import config
from llmapp.errors import LlmappError
from llmapp.evaluation.answers import (
    AnswerQuestion,
    EvalRun,
    RunConfig,
    judge_is_meaningless,
    judge_settings,
    load_answer_set,
    parse_answer_set,
    run_answers,
    summarize,
)
from llmapp.evaluation.judge import METRICS, SCALE
from llmapp.evaluation.runs import comparison, list_runs, load_run, rows_csv, save_run
from llmapp.providers import active_provider
from llmapp.rag.answer import GROUNDED_TEMPLATE
from llmapp.settings import Settings
from llmapp.ui.memory import open_store

SAMPLE_SET = Path(__file__).resolve().parents[2] / "data" / "eval" / "handbook.jsonl"
_PARTIAL = "_llmapp_eval_partial"
_LAST = "_llmapp_eval_last"


def question_set(kb) -> tuple[list[AnswerQuestion] | None, str | None]:
    """``(questions, collection)``: the sample set over the sample handbook
    (ingested first if missing), or an uploaded set over a chosen
    collection. ``questions`` is None (with the reason shown) when an
    upload is missing or unusable."""
    from llmapp.ui.rag import sample_collection

    choice = st.radio("Question set", ["Sample: the handbook (8 questions)", "Upload JSONL"],
                      horizontal=True, key="eval_set")
    if choice.startswith("Sample"):
        return load_answer_set(SAMPLE_SET), sample_collection(kb)
    names = [c.name for c in kb.collections()]
    collection = st.selectbox("Collection to answer from", names, key="eval_collection") \
        if names else None
    if collection is None:
        st.warning("No collection yet: add documents on the RAG page first.")
    upload = st.file_uploader("JSON Lines: one {\"question\", \"reference\", \"source\"?} per "
                              "line", type=["jsonl", "json"], key="eval_upload")
    if upload is None:
        st.caption("Upload a set to run it.")
        return None, collection
    try:
        text = upload.getvalue().decode("utf-8", errors="replace")
        return parse_answer_set(text, upload.name), collection
    except LlmappError as exc:
        st.error(str(exc))
        return None, collection


def judge_picker(settings: Settings) -> Settings:
    """The judge, chosen apart from the model under test; says plainly when
    its grades mean nothing."""
    left, right = st.columns([1, 2])
    provider = left.selectbox("Judge", config.PROVIDERS, key="eval_judge",
                              help="Any configured provider, apart from the model under test.")
    model = right.text_input("Judge model (optional)", key="eval_judge_model",
                             placeholder="default of that provider")
    judge = judge_settings(settings, f"{provider}:{model.strip()}" if model.strip()
                           else provider)
    if judge_is_meaningless(judge):
        st.warning("The judge is the bundled 135M model: **its scores are noise**. The run still "
                   "goes end to end, to show the pipeline; for grades that mean something, "
                   "judge with OpenAI or a larger model on an OpenAI-compatible server.",
                   icon="⚖️")
    return judge


def _names(settings: Settings, judge: Settings) -> tuple[str, str]:
    provider, _ = active_provider(settings)
    jp, _ = active_provider(judge)
    return (f"{provider.name}:{provider.model_name(settings)}",
            f"{jp.name}:{jp.model_name(judge)}")


def _save_partial(database) -> bool:
    """A run stopped by the Stop button: save what it had, and say so.
    Returns whether a run had been stopped."""
    partial = st.session_state.pop(_PARTIAL, None)
    if not partial:
        return False
    if not partial["rows"]:
        st.info("The run was stopped before its first question was answered: nothing was "
                "saved.", icon="⏹️")
        return True
    run_config: RunConfig = partial["config"]
    run = EvalRun(run_config, partial["rows"],
                  summarize(partial["rows"], run_config.metrics, run_config.retrieval["k"]),
                  "stopped")
    save_run(database, run)
    st.session_state[_LAST] = st.session_state["eval_run"] = run.id
    st.info(f"The last run was stopped after {len(run.rows)} questions; those rows were "
            "kept.", icon="⏹️")
    return True


def run_panel(settings: Settings, kb, collection: str,
              questions: list[AnswerQuestion] | None, judge: Settings) -> None:
    """The run button, progress and result. A click on "Stop the run" (or on
    Streamlit's own Stop) interrupts the script; the rows answered so far,
    kept in the session as they come, are saved as a stopped run on the next
    rerun."""
    store, error = open_store(settings)
    if store is None:
        st.error(f"Runs are saved in the database, which cannot be opened: {error}")
        return
    stopped = _save_partial(store.database)
    left, middle, right = st.columns(3)
    k = left.slider("Chunks per answer (k)", 1, 10, 4, key="eval_k")
    count = len(questions or [])
    limit = middle.number_input("Questions to run", 1, max(count, 1), max(count, 1),
                                key="eval_limit", disabled=not count,
                                help="Run only the first N questions of the set (1 to all of them): a quick "
                                     "check before a full run.")
    name = right.text_input("Run name", key="eval_name", placeholder="model judged by judge")
    questions = (questions or [])[:int(limit)]
    left, right = st.columns(2)
    start = left.button("Run the evaluation", type="primary",
                        disabled=not questions or not collection, width="stretch")
    if right.button("Stop the run", width="stretch",
                    help="Ends the run after the current question; the rows so far are "
                         "kept.") and not stopped:
        st.info("No run is going: there is nothing to stop.", icon="⏹️")
    if not start or not questions or not collection:
        return
    model, judge_name = _names(settings, judge)
    run_config = RunConfig(name.strip() or f"{model} judged by {judge_name}", model, judge_name,
                           collection, {"k": k}, GROUNDED_TEMPLATE,
                           safety_level=settings.safety_level)
    from llmapp.ui.safety import page_guard

    bar = st.progress(0.0, text=f"0 of {len(questions)} questions")
    st.session_state[_PARTIAL] = {"config": run_config, "rows": []}
    started = time.perf_counter()

    def progress(index: int, row) -> None:
        st.session_state[_PARTIAL]["rows"].append(row)
        bar.progress((index + 1) / len(questions),
                     text=f"{index + 1} of {len(questions)} questions "
                          f"({time.perf_counter() - started:.0f} s)")

    try:
        run = run_answers(questions, kb, settings, judge, run_config,
                          guard=page_guard(settings), on_row=progress)
    except LlmappError as exc:
        st.session_state.pop(_PARTIAL, None)
        st.error(str(exc))
        return
    st.session_state.pop(_PARTIAL, None)
    save_run(store.database, run)
    st.session_state[_LAST] = st.session_state["eval_run"] = run.id
    st.success(f"Run {run.id} saved: {len(run.rows)} questions in "
               f"{time.perf_counter() - started:.0f} s.", icon="✅")


def _score_cell(row, metric: str) -> str:
    score = row.scores.get(metric)
    return "unscored" if metric in row.scores and score is None else (
        "" if score is None else str(score))


def run_rows(settings: Settings) -> None:
    """One saved run: its totals and per-question rows, exported as CSV or
    JSON."""
    store, _ = open_store(settings)
    if store is None:
        return
    runs = list_runs(store.database)
    if not runs:
        st.caption("No runs yet.")
        return
    ids = [r.id for r in runs]
    last = st.session_state.get(_LAST)
    labels = {r.id: f"#{r.id} {r.name} ({r.status}, "
                    f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(r.created_at))})"
              for r in runs}
    if st.session_state.get("eval_run") not in ids:
        st.session_state["eval_run"] = last if last in ids else ids[0]
    chosen = st.selectbox("Run", ids, format_func=labels.get, key="eval_run")
    run = load_run(store.database, chosen)
    metrics = list(run.config.metrics)
    cols = st.columns(len(metrics) + 2)
    for col, metric in zip(cols, metrics, strict=False):
        value = run.totals.get(metric)
        col.metric(metric, "—" if value is None else f"{value:.2f} / {SCALE[1]}",
                   help=f"{run.totals.get(metric + '_unscored', 0)} unscored")
    k = run.config.retrieval.get("k", 4)
    hit = run.totals.get(f"hit@{k}")
    cols[-2].metric(f"hit@{k}", "—" if hit is None else f"{hit:.0%}")
    flagged = run.totals.get("flagged")
    cols[-1].metric("flagged (safety)", "—" if flagged is None else f"{flagged:.0%}")
    table = [{"question": r.question, "answer": r.error and f"⚠️ {r.error}" or r.answer,
              **{m: _score_cell(r, m) for m in metrics},
              "rank": r.rank, "flagged": r.flagged, "seconds": r.seconds} for r in run.rows]
    st.dataframe(table, hide_index=True, width="stretch")
    for i, r in enumerate(run.rows, start=1):
        with st.expander(f"{i}. {r.question}"):
            st.markdown(f"**Reference:** {r.reference}")
            st.markdown(f"**Answer:** {r.answer or r.error or '—'}")
            for m in metrics:
                st.markdown(f"- **{m}** {_score_cell(r, m) or '—'}: {r.reasons.get(m, '')}")
                if r.scores.get(m) is None and r.raw.get(m):
                    st.code(r.raw[m], language=None)
            for s in r.sources:
                st.caption(f"{s['source']}, chunk {s['index']} ({s['score']:.2f})")
    left, right = st.columns(2)
    left.download_button("CSV", rows_csv(run), f"eval-run-{run.id}.csv", "text/csv",
                         width="stretch")
    right.download_button("JSON", json.dumps(run.to_dict(), ensure_ascii=False, indent=1),
                          f"eval-run-{run.id}.json", "application/json", width="stretch")


def compare_runs(settings: Settings) -> None:
    """Two or more runs side by side: a table, mean score per metric, and
    each metric's score distribution."""
    import altair as alt

    store, _ = open_store(settings)
    if store is None:
        return
    runs = list_runs(store.database)
    if len(runs) < 2:
        st.caption("Run at least two evaluations to compare them.")
        return
    labels = {r.id: f"#{r.id} {r.name}" for r in runs}
    chosen = st.multiselect("Runs to compare", [r.id for r in runs],
                            default=[r.id for r in runs[:2]], format_func=labels.get,
                            key="eval_compare")
    if len(chosen) < 2:
        st.caption("Pick two or more runs.")
        return
    full = [load_run(store.database, i) for i in chosen]
    metrics = list(METRICS)
    st.dataframe(comparison(full, metrics), hide_index=True, width="stretch")
    means = [{"run": labels[r.id], "metric": m, "mean score": r.totals.get(m)}
             for r in full for m in metrics if r.totals.get(m) is not None]
    st.altair_chart(alt.Chart(alt.Data(values=means)).mark_bar().encode(
        x=alt.X("metric:N", title=None, axis=alt.Axis(labelAngle=0)), xOffset="run:N",
        y=alt.Y("mean score:Q", scale=alt.Scale(domain=list(SCALE))),
        color=alt.Color("run:N", legend=alt.Legend(orient="bottom", columns=1)),
        tooltip=["run:N", "metric:N", "mean score:Q"]), width="stretch")
    counts = [{"run": labels[r.id], "metric": m, "score": str(score),
               "questions": sum(row.scores.get(m) == score for row in r.rows)}
              for r in full for m in metrics for score in range(SCALE[0], SCALE[1] + 1)]
    st.caption("How the scores are spread, per metric")
    st.altair_chart(alt.Chart(alt.Data(values=counts)).mark_bar().encode(
        x=alt.X("score:O"), xOffset="run:N", y=alt.Y("questions:Q"),
        color=alt.Color("run:N", legend=None), column=alt.Column("metric:N", title=None),
        tooltip=["run:N", "metric:N", "score:O", "questions:Q"]).properties(width=120))


_AGREEMENT = "_llmapp_eval_agreement"


def judge_vs_people(settings: Settings, judge: Settings) -> None:
    """The judge checked against the thumbs and corrections people gave on
    the chat pages: agreement, Cohen's kappa, position-swap consistency, and
    every item with the judge's reason."""
    from llmapp.evaluation.agreement import PASS_SCORE, check_judge
    from llmapp.feedback import list_feedback

    st.caption(f"The judge grades each reply people rated (helpful at {PASS_SCORE} or more of "
               f"{SCALE[1]}) and compares each corrected reply with its correction twice, in "
               "both orders: a judge worth trusting agrees with people beyond chance "
               "(Cohen's kappa above 0) and gives the same verdict whichever answer comes "
               "first.")
    store, error = open_store(settings)
    if store is None:
        st.error(f"Feedback is kept in the database, which cannot be opened: {error}")
        return
    feedback = list_feedback(store.database)
    if not feedback:
        st.info("No feedback yet: rate replies with 👍 or 👎 under them on the chat pages, "
                "and write a better answer where one was wrong.", icon="🗳️")
        return
    rated = sum(f.rating is not None for f in feedback)
    corrected = sum(bool(f.correction) for f in feedback)
    left, right = st.columns([1, 2])
    count = int(left.number_input("Most recent items", 1, len(feedback), min(len(feedback), 50),
                                  key="eval_agreement_limit"))
    right.caption(f"{len(feedback)} replies have feedback: {rated} rated, {corrected} "
                  "corrected.")
    if st.button("Check the judge", type="primary", key="eval_agreement_run"):
        items = feedback[-count:]
        bar = st.progress(0.0, text=f"0 of {len(items)}")
        try:
            st.session_state[_AGREEMENT] = check_judge(
                items, judge, on_item=lambda i, _: bar.progress(
                    (i + 1) / len(items), text=f"{i + 1} of {len(items)}"))
        except LlmappError as exc:
            st.error(str(exc))
            return
    report = st.session_state.get(_AGREEMENT)
    if report is None:
        return
    a, b, c = st.columns(3)
    a.metric("Agreement with thumbs", "–" if report.agreement is None else
             f"{report.agreement:.0%}", help=f"{report.scored} of {report.rated} rated replies "
             "graded")
    b.metric("Cohen's kappa", "–" if report.kappa is None else f"{report.kappa:.2f}",
             help="1: full agreement; 0: what chance gives; below 0: worse than chance. "
                  "Undefined when everyone and the judge gave one verdict only.")
    c.metric("Same verdict both ways", "–" if report.consistency is None else
             f"{report.consistency:.0%}", help=f"{report.pairs} corrected replies compared; "
             f"of the consistent verdicts, {report.prefers_correction} prefer the correction")
    st.dataframe([{"question": i.question, "thumb": i.thumb or "", "judge": i.score,
                   "judge's verdict": i.verdict or "", "reason": i.reason,
                   "correction second / first": " / ".join(v or "unscored" for v in i.swap)}
                  for i in report.items], hide_index=True, width="stretch")
