"""The Fine-tuning page's widgets: a dataset from one of its sources with a
preview and checks, a training run with live progress, loss and cancel,
the tuned models, a side-by-side chat, and before/after on held-out examples."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from llmapp.cpus import available_memory_mb
from llmapp.errors import LlmappError
from llmapp.settings import Settings
from llmapp.tuning import datasets, jobs
from llmapp.tuning.models import delete_model, list_models
from llmapp.tuning.train import INSTALL_HINT, TrainConfig, missing_packages

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "tuning" / "short_answer.jsonl"
DEMO_HELD_OUT = ROOT / "data" / "tuning" / "short_answer_heldout.jsonl"
SOURCES = ("Demo: short answers", "Feedback from the chat pages", "Stored conversations",
           "Upload a JSONL file")
_COMPARE = "_llmapp_tune_compare"
_ASKED = "_llmapp_tune_asked"
_CHECKED = "_llmapp_tune_checked"


def training_notice() -> bool:
    """Say what training needs, and whether this machine has it; True when
    it can train here."""
    missing = missing_packages()
    if missing:
        st.info(f"Training needs the **tune** extra ({', '.join(missing)} missing), which the "
                f"default install leaves out. Add it with\n\n`{INSTALL_HINT}`\n\nYou can "
                "still build and check a dataset, and use models trained elsewhere.", icon="🧰")
        return False
    free = available_memory_mb()
    if free < jobs.MIN_MEMORY_MB:
        st.warning(f"Training needs about {jobs.MIN_MEMORY_MB:,} MB of memory and this machine "
                   f"has {free:,.0f} MB free (Community Cloud's boxes are too small). Train in a "
                   "codespace or on a laptop, then copy the model folder here.", icon="🧠")
        return False
    return True


def _datasets_dir(settings: Settings) -> Path:
    return Path(settings.models_path).parent / "datasets"


def dataset_panel(settings: Settings) -> tuple[Path | None, Path | float]:
    """Pick a source, preview its rows, check them. Returns the dataset file
    to train on (None when there is nothing usable) and what to hold out."""
    from llmapp.ui.memory import open_store

    source = st.radio("Source", SOURCES, horizontal=True, key="tune_source")
    held_out: Path | float = 0.1
    rows: list[datasets.Row] = []
    path: Path | None = None
    if source == SOURCES[0]:
        st.caption("95 questions answered in one style: **In short:** … then **Why:** …. "
                   "20 more, phrased differently, are kept out of training to check it.")
        path, held_out = DEMO, DEMO_HELD_OUT
        rows = datasets.from_file(DEMO)
    elif source in SOURCES[1:3]:
        store, error = open_store(settings)
        if store is None:
            st.error(f"The database cannot be opened: {error}")
            return None, held_out
        rows = datasets.from_feedback(store.database) if source == SOURCES[1] else \
            datasets.from_conversations(store)
        if rows:
            name = "feedback" if source == SOURCES[1] else "conversations"
            path = datasets.write_jsonl(rows, _datasets_dir(settings) / f"{name}.jsonl")
    else:
        upload = st.file_uploader("Chat JSONL (OpenAI's fine-tuning format)", type=["jsonl"],
                                  key="tune_upload")
        if upload is not None:
            path = _datasets_dir(settings) / Path(upload.name).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(upload.getvalue())
            rows = datasets.from_file(path)
    if path is None:
        st.info("Nothing to train on from this source yet: approve or correct replies with the "
                "👍 / ✏️ under them, or chat on the Memory page.", icon="🗳️")
        return None, held_out
    st.dataframe([{"source": r.source, "question": r.question, "answer": r.answer}
                  for r in rows], hide_index=True, width="stretch", height=220)
    try:
        report = _checked(settings, path)
    except (LlmappError, UnicodeDecodeError) as exc:
        st.error(f"The dataset cannot be checked: {exc}")
        return None, held_out
    for problem in report.problems[:20]:
        where = f"line {problem.line}" if problem.line else "file"
        st.error(f"{where}: {problem.kind}: {problem.message}", icon="🧾")
    if report.tokens:
        st.caption(f"{len(report.tokens)} usable examples; {sum(report.assistant_tokens):,} "
                   f"answer tokens to learn from; up to {max(report.tokens)} tokens each.")
    return (path if report.ok else None), held_out


def _checked(settings: Settings, path: Path):
    """:func:`~llmapp.tuning.validate.validate_file` with the active model's
    token counts, kept in the session per file content and model: counting
    every example's tokens again on each rerun (every click on the page)
    would repeat the same work."""
    import hashlib

    from llmapp.providers import active_provider
    from llmapp.tuning.validate import validate_file

    provider, _ = active_provider(settings)
    window = provider.context_window(settings)
    key = (hashlib.sha256(path.read_bytes()).hexdigest(), provider.model_name(settings), window)
    memo = st.session_state.setdefault(_CHECKED, {})
    if key not in memo:
        counter = provider.token_counter(settings)
        memo.clear()  # one dataset at a time
        memo[key] = validate_file(path, count_messages=counter.count_messages, window=window)
    return memo[key]


def train_panel(settings: Settings, dataset: Path | None, held_out: Path | float,
                can_train: bool) -> None:
    """The knobs, Train, and the run's live view."""
    current = jobs.latest_job(settings)
    if current is not None and current.running:
        _job_view(settings, current.id)
        return
    left, middle, right, far = st.columns([2, 1, 1, 1])
    name = left.text_input("Model name", "short-answer", key="tune_name",
                           help="Lowercase letters, digits, - and _.")
    epochs = middle.selectbox("Epochs", [0, 1, 2, 3, 4, 6, 8, 10, 12, 15, 20], key="tune_epochs",
                              format_func=lambda n: str(n) if n else "auto",
                              help="Passes over the examples. auto: enough for 36 optimizer "
                                   "steps (3 epochs for the demo's 95 examples, 6 for 50), "
                                   "which is when a style took in our runs. Facts take more, "
                                   "and still get confused: RAG is for facts.")
    rate = right.select_slider("Learning rate", [5e-5, 1e-4, 2e-4, 5e-4], 2e-4,
                               format_func=lambda v: f"{v:g}", key="tune_lr")
    rank = far.select_slider("LoRA rank", [4, 8, 16, 32], 16, key="tune_rank",
                             help="Size of the adapter's matrices; alpha is twice the rank.")
    replace = st.checkbox("Replace a model of the same name", key="tune_replace")
    if st.button("Train", type="primary", disabled=dataset is None or not can_train,
                 key="tune_start"):
        try:
            job = jobs.start(settings, TrainConfig(name.strip(), epochs=int(epochs),
                                                   learning_rate=rate, rank=rank,
                                                   alpha=2 * rank),
                             dataset, held_out, replace=replace)
        except LlmappError as exc:
            st.error(str(exc))
            return
        _job_view(settings, job.id)
    elif current is not None:
        _finished(current)


@st.fragment(run_every=1.0)
def _job_view(settings: Settings, job_id: str) -> None:
    """Progress, loss and Cancel, redrawn every second until the run ends."""
    job = jobs.Job(jobs.jobs_dir(settings) / job_id)
    lines = job.progress()
    steps = [line for line in lines if "step" in line]
    phases = [line["phase"] for line in lines if "phase" in line]
    if job.running:
        if steps:
            last = steps[-1]
            left = (last["steps"] - last["step"]) * last["elapsed_s"] / last["step"]
            st.progress(last["step"] / last["steps"],
                        text=f"step {last['step']} of {last['steps']} · epoch {last['epoch']} · "
                             f"loss {last['loss']:.3f} · about {left:.0f} s left")
        else:
            st.progress(0.0, text=(phases[-1] if phases else "starting") + "…")
        if steps:
            st.line_chart({"loss": [s["loss"] for s in steps]}, x_label="step",
                          y_label="loss (nats per answer token)", height=220)
        st.button("Cancel the run", on_click=job.cancel, key=f"tune_cancel_{job_id}",
                  help="Stops before the next step; nothing is registered.")
        return
    st.rerun(scope="app")  # the models list and the knobs come back


def _finished(job: jobs.Job) -> None:
    status = job.status()
    if status["status"] == "done":
        r = status["result"]
        st.success(f"**{status['model']}** registered: {_epochs(r)}, "
                   f"{r['steps']} steps in {r['train_s']:.0f} s ({r['s_per_step']:.1f} s/step), "
                   f"loss {r['first_loss']:.2f} → {r['last_loss']:.2f}, peak memory "
                   f"{r['peak_rss_mb']:,.0f} MB.", icon="✅")
        check = status.get("held_out_check") or {}
        if check.get("examples"):
            st.markdown(f"On **{check['examples']} held-out examples**, base → tuned: in the "
                        f"trained form {check['base_form']:.0%} → **{check['tuned_form']:.0%}**, "
                        f"similarity to the reference {check['base_similarity']:.2f} → "
                        f"**{check['tuned_similarity']:.2f}**.")
        if check.get("warning") or check.get("error"):
            st.warning(check.get("warning") or f"The held-out check failed: {check['error']}")
        steps = [line for line in job.progress() if "step" in line]
        if steps:
            st.line_chart({"loss": [s["loss"] for s in steps]}, x_label="step",
                          y_label="loss (nats per answer token)", height=200)
    elif status["status"] == "cancelled":
        st.info("The last run was cancelled; nothing was registered.", icon="⏹️")
    else:
        st.error(f"The last run failed: {status.get('error', 'unknown error')}")


def models_panel(settings: Settings) -> None:
    """The tuned models: a table, delete, a side-by-side chat and before/after."""
    found = list_models(settings)
    if not found:
        st.caption("No tuned model yet.")
        return
    st.dataframe([{"model": m.label, "examples": m.info.get("train_examples"),
                   "epochs": m.info.get("config", {}).get("epochs"),
                   "final loss": round(m.info.get("result", {}).get("last_loss", 0), 3),
                   "trained in s": round(m.info.get("result", {}).get("train_s", 0)),
                   "adapter": str(m.adapter)} for m in found], hide_index=True, width="stretch")
    st.caption("Every page can use one: pick it under **Model provider → Tuned model** in the "
               "sidebar, or set `LLMAPP_LOCAL_ADAPTER`.")
    names = [m.name for m in found]
    chosen = st.selectbox("Model", names, key="tune_model")
    model = next(m for m in found if m.name == chosen)
    side_by_side(settings, model)
    before_after(settings, model)
    if st.button(f"Delete {chosen}", key="tune_delete"):
        delete_model(settings, chosen)
        st.rerun()


def side_by_side(settings: Settings, model) -> None:
    """One prompt to the base and the tuned model, answers side by side
    (kept until the next question, so other buttons do not erase them)."""
    from llmapp.providers import GenerationParams
    from llmapp.tuning.compare import base_and_tuned

    prompt = st.text_input("Ask both", "What is the capital of Canada?", key="tune_ask")
    kept = st.session_state.get(_ASKED)
    asked = st.button("Ask the base and the tuned model", key="tune_ask_go")
    labels = ("Base", model.label)
    if not asked or not prompt.strip():
        if kept and kept[0] == (prompt, model.name):
            for column, label, text in zip(st.columns(2), labels, kept[1], strict=True):
                column.markdown(f"**{label}**")
                column.markdown(text)
        return
    replies = []
    try:
        chats = base_and_tuned(settings, model, GenerationParams(temperature=0.0, top_p=1.0,
                                                                 max_tokens=160))
    except LlmappError as exc:
        st.error(str(exc))
        return
    for column, label, chat in zip(st.columns(2), labels, chats, strict=True):
        with column:
            st.markdown(f"**{label}**")
            try:
                replies.append(st.write_stream(chunk.text for chunk in chat.stream(
                    [("user", prompt)])))
            except LlmappError as exc:
                st.error(str(exc))
                replies.append("")
    st.session_state[_ASKED] = ((prompt, model.name), replies)


def before_after(settings: Settings, model) -> None:
    """The base and the tuned model on the model's held-out examples, with
    a chart and every reply."""
    import json

    from llmapp.tuning.compare import compare_models

    held_out = model.folder / "heldout.jsonl"
    examples = [json.loads(line) for line in held_out.read_text().splitlines() if line.strip()] \
        if held_out.is_file() else []
    st.markdown("**Before and after**: the held-out examples, kept out of training.")
    if not examples:
        st.caption("This model has no held-out examples.")
        return
    if st.button(f"Compare on {len(examples)} held-out examples",
                 key=f"tune_compare_{model.name}"):
        bar = st.progress(0.0)
        started = time.perf_counter()
        try:
            st.session_state[_COMPARE] = compare_models(
                settings, model, examples, on_row=lambda i, _: bar.progress(
                    (i + 1) / len(examples), text=f"{i + 1} of {len(examples)} "
                                                  f"({time.perf_counter() - started:.0f} s)"))
        except LlmappError as exc:
            st.error(str(exc))
            return
    report = st.session_state.get(_COMPARE)
    if report is None or report.model != model.name:
        return
    totals = report.totals()
    a, b, c = st.columns(3)
    a.metric("In the reference's form", f"{totals['tuned']['form']:.0%}",
             f"{(totals['tuned']['form'] - totals['base']['form']) * 100:+.0f} points vs base")
    b.metric("Similarity to the reference", f"{totals['tuned']['similarity']:.2f}",
             f"{totals['tuned']['similarity'] - totals['base']['similarity']:+.2f} vs base")
    c.metric("Tokens/s", f"{totals['tuned']['tokens_per_s']:.0f}",
             f"{totals['tuned']['tokens_per_s'] - totals['base']['tokens_per_s']:+.0f} vs base",
             help="Applying an adapter costs some speed; the same runtime serves both.")
    st.bar_chart({"check": ["form", "similarity"],
                  "base": [totals["base"]["form"], totals["base"]["similarity"]],
                  model.label: [totals["tuned"]["form"], totals["tuned"]["similarity"]]},
                 x="check", y=["base", model.label], x_label="", stack=False, height=240)
    st.dataframe([{"question": r.question, "reference": r.reference, "base": r.base.reply,
                   "tuned": r.tuned.reply} for r in report.rows], hide_index=True,
                 width="stretch")


def base_vs_tuned(settings: Settings) -> None:
    """The Evaluation page's view of before and after: pick a tuned model,
    compare it with the base on its held-out examples."""
    found = list_models(settings)
    if not found:
        st.caption("No tuned model yet: train one on the Fine-tuning page.")
        return
    chosen = st.selectbox("Tuned model", [m.name for m in found], key="eval_tuned_model")
    before_after(settings, next(m for m in found if m.name == chosen))


def _epochs(result: dict) -> str:
    n = result.get("epochs")
    return "? epochs" if n is None else f"{n} epoch{'' if n == 1 else 's'}"
