"""``llmapp guard``: check a text with the safety filter."""

from __future__ import annotations

import argparse
import json
import sys

from llmapp import config
from llmapp.cli.common import settings_from


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the CLI's subparsers."""
    guard = sub.add_parser("guard", help="check a text with the safety filter")
    guard.add_argument("text", help="the text ('-' reads standard input)")
    guard.add_argument("--level", choices=config.SAFETY_LEVELS,
                       help="default LLMAPP_SAFETY_LEVEL (adult)")
    guard.add_argument("--output", action="store_true",
                       help="check as a model's reply: protected phrases too")
    guard.add_argument("--json", action="store_true",
                       help='print {"allowed", "level", "categories", "flags", "blocked"}')
    guard.set_defaults(func=cmd_guard)


def cmd_guard(args: argparse.Namespace) -> int:
    """``llmapp guard``: exit 0 when allowed, 3 when blocked (1 and 2 are
    errors, as for every command)."""
    from llmapp.safety import SafetyError, guard_for
    from llmapp.safety.phrases import load_phrases
    from llmapp.storage import Database, StoreError

    settings = settings_from(args)
    text = sys.stdin.read() if args.text == "-" else args.text
    phrases = []
    if args.output:
        try:
            phrases = load_phrases(Database(settings.database_url.get_secret_value()))
        except StoreError as exc:
            print(f"note: protected phrases unavailable: {exc}", file=sys.stderr)
    try:
        verdict = guard_for(settings, phrases, level=args.level).check(text, output=args.output)
    except SafetyError as exc:  # empty, or too long to check
        print(f"llmapp: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        print(verdict.reason("The text"))
        for name, score in sorted(verdict.categories.items(), key=lambda kv: -kv[1]):
            print(f"  {name:17s} {score:.2f}")
        for flag in verdict.flags:
            print(f"  flag: {flag}")
    return 0 if verdict.allowed else 3
