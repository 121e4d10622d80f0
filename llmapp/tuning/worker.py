"""The training process: ``python -m llmapp.tuning.worker JOB_DIR``.

Reads ``JOB_DIR/request.json`` (written by :func:`llmapp.tuning.jobs.start`),
validates the dataset, splits off the held-out examples, tokenizes with the
served model, frees it, trains, and registers the adapter; progress goes to
``progress.jsonl`` and the outcome to ``status.json``. A ``cancel`` file (or
SIGTERM) stops it before the next step, and nothing is registered.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time
import traceback
from pathlib import Path

from llmapp.errors import LlmappError

END_OF_TURN = "<|im_end|>"
"""The end of an assistant turn in SmolLM2's chat template (ChatML)."""


def _write(folder: Path, line: dict) -> None:
    with (folder / "progress.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")


def _examples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def split(examples: list[dict], held_out: str | float, seed: int) -> tuple[list, list]:
    """``(train, held_out)``: a file's examples, or a share of ``examples``
    (at least one, shuffled by ``seed``) kept out of training."""
    if isinstance(held_out, str):
        return examples, _examples(Path(held_out))
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    keep = max(1, round(len(examples) * held_out)) if held_out > 0 else 0
    kept = set(order[:keep])
    return ([e for i, e in enumerate(examples) if i not in kept],
            [e for i, e in enumerate(examples) if i in kept])


CHECKED = 20
"""Held-out examples answered by base and tuned after a run (~2 s each here)."""
MOVED = 0.02
"""The least change in the share of answers in the trained form, or in mean
similarity to the reference, that counts as the run having taught anything."""


def held_out_check(settings, model, held_out: list[dict]) -> dict:
    """Base and tuned on up to :data:`CHECKED` held-out examples
    (:func:`llmapp.tuning.compare.compare_models`): ``examples``,
    ``base_form``/``tuned_form`` (shares in the reference's form),
    ``base_similarity``/``tuned_similarity`` (MiniLM cosine, mean), and a
    ``warning`` when neither moved by :data:`MOVED`; ``{"error": ...}`` when
    the check itself failed (the model stays registered)."""
    from llmapp.tuning.compare import compare_models

    if not held_out:
        return {"examples": 0, "warning": "No example was held out, so nothing shows whether "
                                          "the run taught the model anything."}
    try:
        totals = compare_models(settings, model, held_out[:CHECKED]).totals()
    except LlmappError as exc:
        return {"error": str(exc)}
    check = {"examples": min(len(held_out), CHECKED),
             "base_form": totals["base"]["form"], "tuned_form": totals["tuned"]["form"],
             "base_similarity": totals["base"]["similarity"],
             "tuned_similarity": totals["tuned"]["similarity"]}
    if (check["tuned_form"] - check["base_form"] < MOVED
            and check["tuned_similarity"] - check["base_similarity"] < MOVED):
        check["warning"] = ("Nothing moved on the held-out examples: the tuned model answers "
                            "as the base does. Train on more examples, or for more epochs.")
    return check


def run(folder: Path) -> dict:
    """Do the job in ``folder``; return its final status (also written)."""
    from llmapp.providers.local import bundled_model_path, get_runtime
    from llmapp.providers.runtime import close_runtime
    from llmapp.settings import resolve
    from llmapp.tuning import models
    from llmapp.tuning.train import Cancelled, TrainConfig, TuningError, encode, train
    from llmapp.tuning.validate import validate_file

    request = json.loads((folder / "request.json").read_text())
    config = TrainConfig(**request["config"])
    settings = resolve(sidebar={"LLMAPP_MODELS_PATH": request["models_path"]},
                       overrides_label="training job")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def should_stop() -> bool:
        return stop["now"] or (folder / "cancel").exists()

    partial = None
    started = time.time()
    try:
        _write(folder, {"phase": "checking the dataset"})
        report = validate_file(request["dataset"])
        if not report.ok:
            first = report.problems[0]
            where = f"line {first.line}" if first.line else "the file"
            raise TuningError(f"The dataset has {len(report.problems)} problem(s); {where}: "
                              f"{first.message} (llmapp tune validate lists them all).")
        train_set, held_out = split(_examples(Path(request["dataset"])), request["held_out"],
                                    config.seed)
        _write(folder, {"phase": "tokenizing", "train": len(train_set),
                        "held_out": len(held_out)})
        runtime = get_runtime()
        [end] = runtime.tokenize(END_OF_TURN)
        encoded = encode(train_set, runtime, end, config.max_tokens)
        close_runtime()  # the trainer needs the memory
        _write(folder, {"phase": "loading the base model"})
        partial = models.new_partial(settings, config.name)
        result = train(config, encoded, bundled_model_path(), partial / models.ADAPTER_FILE,
                       on_progress=lambda p: _write(folder, p.__dict__), should_stop=should_stop)
        (partial / models.HELDOUT_FILE).write_text(
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in held_out))
        model = models.register(settings, partial, config.name, {
            "base": "SmolLM2-135M-Instruct (Q4_1 GGUF)", "config": config.to_dict(),
            "result": result.to_dict(), "dataset": request["dataset"],
            "train_examples": len(train_set), "held_out": len(held_out),
            "created_at": time.time()}, replace=request.get("replace", False))
        _write(folder, {"phase": "answering the held-out examples, base and tuned"})
        status = {"status": "done", "model": model.name, "result": result.to_dict(),
                  "held_out_check": held_out_check(settings, model, held_out),
                  "seconds": time.time() - started}
    except Cancelled as exc:
        status = {"status": "cancelled", "error": str(exc)}
    except LlmappError as exc:
        status = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported, with the traceback in the log
        traceback.print_exc()
        status = {"status": "failed", "error": f"Training failed: {exc}"}
    if status["status"] != "done" and partial is not None:
        models.discard(partial)
    (folder / "status.json").write_text(json.dumps(status, indent=1))
    return status


def main() -> int:
    folder = Path(sys.argv[1])
    status = run(folder)
    return 0 if status["status"] == "done" else 1


if __name__ == "__main__":
    raise SystemExit(main())
