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
    tune = sub.add_parser("tune", help="fine-tuning datasets (stage 7)")
    verbs = tune.add_subparsers(dest="verb", required=True)
    check = verbs.add_parser("validate", help="check a chat JSONL dataset before training")
    check.add_argument("file")
    check.add_argument("--json", action="store_true",
                       help='print {"ok", "examples", "counts", "problems", "tokens", ...}')
    provider_args(check)
    check.set_defaults(func=cmd_validate)


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
