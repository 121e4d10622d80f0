"""Training runs as jobs: a subprocess per run, its progress in files.

Training takes gigabytes and minutes, so it never runs inside a Streamlit
script run or the CLI's own process: :func:`start` launches ``python -m
llmapp.tuning.worker JOB_DIR`` and returns at once. The job folder
(``<LLMAPP_MODELS_PATH>/.jobs/<id>/``) is the whole interface, so a page
that reloads, or another session, finds the run again:

* ``request.json``: what to train (written by :func:`start`);
* ``progress.jsonl``: one line per step, ``{"step", "steps", "epoch",
  "loss", "elapsed_s"}``, and phases as ``{"phase": ...}``;
* ``status.json``: ``{"status": "done" | "failed" | "cancelled", ...}`` at
  the end;
* ``cancel``: present when someone asked to stop; the worker checks it
  before every step, removes what it wrote, and registers nothing.

One run at a time per models folder: a second :func:`start` is refused while
one is running (two would need twice the memory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from llmapp.cpus import available_memory_mb
from llmapp.settings import Settings
from llmapp.tuning.models import check_name, list_models, models_dir
from llmapp.tuning.train import INSTALL_HINT, TrainConfig, TuningError, missing_packages

MIN_MEMORY_MB = 3500
"""Memory a run needs: measured peak 3,437 MB RSS on the demo dataset (95
examples, batch 8, rank 16; the base dequantized to fp32 and llama.cpp's
tokenizer loaded beside it). Community Cloud's boxes (690 MB to 2.7 GB) are
too small."""


@dataclass
class Job:
    """A training run's folder, and what its files say."""

    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    def request(self) -> dict:
        return json.loads((self.folder / "request.json").read_text())

    def progress(self) -> list[dict]:
        """Every progress line so far (steps and phases), in order."""
        path = self.folder / "progress.jsonl"
        if not path.is_file():
            return []
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:  # a line being written
                break
        return lines

    def status(self) -> dict:
        """``{"status": "running"}`` until the worker ends, then its final
        status; ``failed`` when the worker died without saying so."""
        path = self.folder / "status.json"
        if path.is_file():
            return json.loads(path.read_text())
        pid = self.request().get("pid")
        if pid and not _alive(pid):
            return {"status": "failed", "error": "The training process ended without a word; "
                                                 "its log is in " + str(self.folder / "log.txt")}
        return {"status": "running"}

    @property
    def running(self) -> bool:
        return self.status()["status"] == "running"

    def cancel(self) -> None:
        """Ask the run to stop (at its next step)."""
        (self.folder / "cancel").touch()

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.5) -> dict:
        """Block until the run ends (or ``timeout_s``); its status."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(poll_s)
        return self.status()


def jobs_dir(settings: Settings) -> Path:
    return models_dir(settings) / ".jobs"


def latest_job(settings: Settings) -> Job | None:
    """The most recent run, finished or not."""
    root = jobs_dir(settings)
    folders = sorted((f for f in root.iterdir() if (f / "request.json").is_file()),
                     key=lambda f: f.stat().st_mtime) if root.is_dir() else []
    return Job(folders[-1]) if folders else None


def start(settings: Settings, config: TrainConfig, dataset: Path,
          held_out: Path | float = 0.1, replace: bool = False,
          min_memory_mb: float = MIN_MEMORY_MB) -> Job:
    """Launch a training run in a subprocess; return its job at once.

    Args:
        dataset: chat JSONL (OpenAI's format), checked by
            :func:`llmapp.tuning.validate.validate_file` in the worker.
        held_out: a JSONL file kept for before/after checks, or the share
            of ``dataset`` to keep out of training (at least one example).
        replace: allow replacing a registered model of the same name.

    Raises:
        TuningError: the ``tune`` extra is missing, too little memory, a run
            is going on, or a model of that name exists.
    """
    missing = missing_packages()
    if missing:
        raise TuningError(f"Training needs {', '.join(missing)} (the tune extra, not in the "
                          f"default install): {INSTALL_HINT}")
    free = available_memory_mb()
    if free < min_memory_mb:
        raise TuningError(f"Training needs about {min_memory_mb:,.0f} MB of memory and this "
                          f"machine has {free:,.0f} MB free. Train on a laptop or a codespace "
                          "(8 GB), then copy the model folder here.")
    check_name(config.name)
    if not replace and any(m.name == config.name for m in list_models(settings)):
        raise TuningError(f"A tuned model named {config.name!r} exists; pick another name.")
    current = latest_job(settings)
    if current is not None and current.running:
        raise TuningError("A training run is going on; wait for it or cancel it first.")
    folder = jobs_dir(settings) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    request = {"config": config.to_dict(), "dataset": str(Path(dataset).resolve()),
               "held_out": str(Path(held_out).resolve()) if isinstance(held_out, Path)
               else float(held_out), "replace": replace,
               "models_path": str(models_dir(settings).resolve())}
    (folder / "request.json").write_text(json.dumps(request, indent=1))
    log = (folder / "log.txt").open("w")
    process = subprocess.Popen([sys.executable, "-m", "llmapp.tuning.worker", str(folder)],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ})
    log.close()
    (folder / "request.json").write_text(json.dumps({**request, "pid": process.pid}, indent=1))
    return Job(folder)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child if it ended
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
