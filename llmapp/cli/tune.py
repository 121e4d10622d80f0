"""``llmapp tune``: stage 7, fine-tuning datasets."""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from llmapp.cli.common import provider_args, settings_from
from llmapp.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``tune`` and its subcommands to the CLI's subparsers."""
    tune = sub.add_parser("tune", help="fine-tuning: datasets, training, tuned models (stage 7)")
    verbs = tune.add_subparsers(dest="verb", required=True)
    check = verbs.add_parser("validate", help="check a chat JSONL dataset before training")
    check.add_argument("file")
    check.add_argument("--json", action="store_true",
                       help='print {"ok", "examples", "counts", "problems", "tokens", ...}')
    provider_args(check)
    check.set_defaults(func=cmd_validate)

    train = verbs.add_parser(
        "train", help="LoRA-tune the bundled model on a chat JSONL dataset, on the CPU",
        description="Needs the tune extra (torch, transformers, peft, gguf) and ~3.5 GB of "
                    "memory. The run goes in a subprocess; Ctrl-C cancels it and registers "
                    "nothing.")
    train.add_argument("file")
    train.add_argument("--name", required=True, help="the tuned model's name")
    train.add_argument("--epochs", type=int, default=0,
                       help="passes over the examples; 0 (the default) chooses them from the "
                            "dataset's size: at least 36 optimizer steps, 3 to 15 epochs")
    train.add_argument("--learning-rate", type=float, default=2e-4)
    train.add_argument("--rank", type=int, default=16, help="LoRA rank (alpha is twice it)")
    train.add_argument("--held-out", default="0.1", metavar="FILE|SHARE",
                       help="a JSONL file of examples kept for before/after, or the share of "
                            "FILE kept out of training (default 0.1)")
    train.add_argument("--replace", action="store_true", help="replace a model of that name")
    train.add_argument("--json", action="store_true", help="the final status as JSON")
    train.set_defaults(func=cmd_train)

    distill = verbs.add_parser(
        "distill", help="a teacher answers a question list; the judge keeps the good answers",
        description="QUESTIONS is a text file (one question per line) or JSON Lines with a "
                    '"question" per line. Writes chat JSONL to --out.')
    distill.add_argument("questions", metavar="QUESTIONS")
    distill.add_argument("--teacher", required=True, metavar="PROVIDER[:MODEL]",
                         help="local, openai[:model] or openai-compatible[:model]")
    distill.add_argument("--judge", default="local", metavar="PROVIDER[:MODEL]")
    distill.add_argument("--collection", help="answer from this collection's chunks")
    distill.add_argument("--min-score", type=int, default=2, help="keep answers scored >= this")
    distill.add_argument("--out", required=True, help="the JSONL file to write")
    distill.set_defaults(func=cmd_distill)

    listing = verbs.add_parser("models", help="list the tuned models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_models)


def cmd_validate(args: argparse.Namespace) -> int:
    """``llmapp tune validate FILE``: every problem with its line number, then
    token counts; exit 0 when the file is fit to train on, 1 when not."""
    from llmapp.providers import active_provider
    from llmapp.tuning.validate import validate_file

    settings = settings_from(args)
    provider, _ = active_provider(settings)
    counter = provider.token_counter(settings)
    try:
        report = validate_file(args.file, count_messages=counter.count_messages,
                               window=provider.context_window(settings))
    except UnicodeDecodeError:
        raise ConfigError(f"{args.file} is not UTF-8 text.") from None
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0 if report.ok else 1
    for p in report.problems:
        where = f"line {p.line}" if p.line else "file"
        print(f"{where}: {p.kind}: {p.message}")
    if report.tokens:
        print(f"{len(report.tokens)} usable examples; tokens per example (with the "
              f"{provider.model_name(settings)} chat template): min {min(report.tokens)}, "
              f"median {statistics.median(report.tokens):.0f}, max {max(report.tokens)}; "
              f"{sum(report.assistant_tokens)} assistant tokens to learn from",
              file=sys.stderr)
    print("ok: fit to train on" if report.ok else
          f"{len(report.problems)} problem(s): " +
          ", ".join(f"{k} {n}" for k, n in report.counts().items()))
    return 0 if report.ok else 1


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be above 0, got {value}.")


def cmd_train(args: argparse.Namespace) -> int:
    """``llmapp tune train FILE --name NAME``: run a training job, show its
    progress on stderr; exit 0 when the model is registered, 1 when the run
    failed or was cancelled.

    Raises:
        ConfigError: a bad number, held-out value or name, a name taken, the
            extra or the memory missing, or a run going on.
    """
    from pathlib import Path

    from llmapp.settings import resolve
    from llmapp.tuning import jobs
    from llmapp.tuning.train import TrainConfig

    for name, value in (("--learning-rate", args.learning_rate), ("--rank", args.rank)):
        _positive(name, value)
    if args.epochs < 0:
        raise ConfigError(f"--epochs must be 0 (chosen from the dataset's size) or more, got "
                          f"{args.epochs}.")
    if not Path(args.file).is_file():
        raise ConfigError(f"There is no file {args.file}.")
    held_out: Path | float
    if Path(args.held_out).is_file():
        held_out = Path(args.held_out)
    else:
        try:
            held_out = float(args.held_out)
        except ValueError:
            raise ConfigError(f"--held-out is a JSONL file or a share from 0 to 0.5, not "
                              f"{args.held_out!r}.") from None
        if not 0 <= held_out <= 0.5:
            raise ConfigError(f"--held-out as a share goes from 0 to 0.5, not {held_out}.")
    settings = resolve()
    config = TrainConfig(args.name, epochs=args.epochs, learning_rate=args.learning_rate,
                         rank=args.rank, alpha=2 * args.rank)
    from llmapp.tuning.models import ModelError
    from llmapp.tuning.train import TuningError

    try:  # every refusal before the run is about the request or the machine: exit 2
        job = jobs.start(settings, config, Path(args.file), held_out, replace=args.replace)
    except (TuningError, ModelError) as exc:
        raise ConfigError(str(exc)) from None
    print(f"training {args.name} (job {job.id}); Ctrl-C cancels", file=sys.stderr)
    shown = 0
    try:
        while job.running:
            shown = _show(job.progress(), shown)
            job.wait(timeout_s=1.0)
    except KeyboardInterrupt:
        job.cancel()
        print("cancelling…", file=sys.stderr)
        job.wait()
    _show(job.progress(), shown)
    status = job.status()
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    elif status["status"] == "done":
        r = status["result"]
        print(f"registered {status['model']}: {_epochs(r)}, {r['steps']} steps "
              f"in {r['train_s']:.0f} s ({r['s_per_step']:.1f} s/step), loss "
              f"{r['first_loss']:.2f} -> {r['last_loss']:.2f}, peak RSS "
              f"{r['peak_rss_mb']:,.0f} MB. Use it with LLMAPP_LOCAL_ADAPTER={status['model']}.")
        print(held_out_line(status.get("held_out_check") or {}))
    else:
        print(f"{status['status']}: {status.get('error', '')}", file=sys.stderr)
    return 0 if status["status"] == "done" else 1


def held_out_line(check: dict) -> str:
    """One line on the held-out examples before and after training (see
    :func:`llmapp.tuning.worker.held_out_check`); its warning follows."""
    if "error" in check:
        return f"held-out check failed: {check['error']}"
    line = ""
    if check.get("examples"):
        line = (f"held-out ({check['examples']}): in the trained form {check['base_form']:.0%} "
                f"-> {check['tuned_form']:.0%}, similarity to the reference "
                f"{check['base_similarity']:.2f} -> {check['tuned_similarity']:.2f}")
    if check.get("warning"):
        line = f"{line}\nwarning: {check['warning']}".strip()
    return line


def _show(lines: list[dict], shown: int) -> int:
    for line in lines[shown:]:
        if "phase" in line:
            print(line["phase"] + "…", file=sys.stderr)
        else:
            print(f"step {line['step']}/{line['steps']} epoch {line['epoch']} "
                  f"loss {line['loss']:.3f} ({line['elapsed_s']:.0f} s)", file=sys.stderr)
    return len(lines)


def cmd_models(args: argparse.Namespace) -> int:
    """``llmapp tune models``: the registered tuned models."""
    from llmapp.settings import resolve
    from llmapp.tuning.models import list_models

    found = list_models(resolve())
    if args.json:
        print(json.dumps([{"name": m.name, "adapter": str(m.adapter), "base": m.base,
                           "created_at": m.created_at, **m.info} for m in found],
                         ensure_ascii=False))
        return 0
    if not found:
        print("No tuned models yet: llmapp tune train FILE --name NAME")
    for m in found:
        r = m.info.get("result", {})
        print(f"{m.name:20} {m.info.get('train_examples', '?')} examples, "
              f"{m.info.get('config', {}).get('epochs', '?')} epochs, "
              f"loss {r.get('last_loss', float('nan')):.2f}  {m.adapter}")
    return 0


def _questions(path: str) -> list[str]:
    from pathlib import Path

    questions = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                line = str(json.loads(line).get("question", "")).strip()
            except ValueError:
                raise ConfigError(f"{path}: a line starts with {{ but is not JSON.") from None
        if line:
            questions.append(line)
    if not questions:
        raise ConfigError(f"{path} holds no questions.")
    return questions


def cmd_distill(args: argparse.Namespace) -> int:
    """``llmapp tune distill QUESTIONS --teacher P[:M] --out FILE``: the kept
    answers as chat JSONL; a line per question on stderr.

    Raises:
        ConfigError: a bad teacher, judge, score or question file.
        ProviderError: the teacher or judge failed.
    """
    from llmapp.evaluation.answers import judge_settings
    from llmapp.settings import resolve
    from llmapp.tuning.datasets import distill, write_jsonl

    if not 0 <= args.min_score <= 3:
        raise ConfigError(f"--min-score goes from 0 to 3, not {args.min_score}.")
    questions = _questions(args.questions)
    settings = resolve()
    teacher = judge_settings(settings, args.teacher)
    judge = judge_settings(settings, args.judge)
    kb = None
    if args.collection:
        from llmapp.rag.store import knowledge_base

        kb = knowledge_base(settings)

    def progress(index, row, reason):
        print(f"[{index + 1}/{len(questions)}] {'kept' if row else 'dropped'}: "
              f"{questions[index][:60]} ({reason})", file=sys.stderr)

    rows = distill(questions, teacher, judge, kb=kb, collection=args.collection,
                   min_score=args.min_score, on_row=progress)
    write_jsonl(rows, args.out)
    print(f"{len(rows)} of {len(questions)} answers kept in {args.out}")
    return 0


def _epochs(result: dict) -> str:
    n = result.get("epochs")
    return "? epochs" if n is None else f"{n} epoch{'' if n == 1 else 's'}"
