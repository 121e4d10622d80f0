"""The ``llmapp`` command line: a thin layer over the same library the pages use.

    llmapp chat "PROMPT" [--provider ...] [--model ...] [--system ...] ...
    llmapp doctor

Errors end in one line on stderr and a non-zero exit: 1 when the model
failed, 2 for bad settings or arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from llmapp import config
from llmapp.chat import ChatStore, start_reply
from llmapp.errors import ConfigError, LlmappError
from llmapp.providers import PROVIDERS, GenerationParams, active_provider
from llmapp.settings import Settings, resolve


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, str] = {}
    provider = getattr(args, "provider", None)
    base_url = getattr(args, "base_url", None)
    if base_url:
        overrides["OPENAI_COMPATIBLE_BASE_URL"] = base_url
        provider = provider or "openai-compatible"
    if provider:
        overrides["LLMAPP_PROVIDER"] = provider
    settings = resolve(sidebar=overrides, overrides_label="command line")
    model = getattr(args, "model", None)
    if model:
        name = settings.provider_choice()[0]
        setting = {"openai": "OPENAI_MODEL", "openai-compatible": "OPENAI_COMPATIBLE_MODEL",
                   "local": "LLMAPP_LOCAL_MODEL_PATH"}[name]
        settings = resolve(sidebar={**overrides, setting: model}, overrides_label="command line")
    return settings


def cmd_chat(args: argparse.Namespace) -> int:
    """``llmapp chat``: stream one answer to stdout, the stats line to stderr."""
    settings = _settings_from(args)
    params = GenerationParams(temperature=args.temperature, top_p=args.top_p,
                              max_tokens=args.max_tokens, stop=tuple(args.stop or ()))
    store = ChatStore()
    store.add_user(args.prompt)
    reply = start_reply(store, settings, params, args.system)
    for notice in reply.notices:
        print(f"note: {notice}", file=sys.stderr)
    for text in reply.stream:
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if not args.quiet:
        print(reply.stream.stats.summary(), file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """``llmapp doctor``: each provider, whether it can run and why. Exit 1
    when the active provider cannot run."""
    settings = _settings_from(args)
    provider, reason = active_provider(settings)
    print(f"active provider: {provider.name} ({provider.model_name(settings)})")
    print(f"  because {reason}")
    ok_active = True
    for p in PROVIDERS.values():
        status = p.status(settings)
        mark = "ok " if status.ok else "no "
        print(f"[{mark}] {p.name:<18} {p.model_name(settings)}: {status.reason}")
        if p is provider:
            ok_active = status.ok
    shown = {name: src for name, src in settings.sources.items()}
    if shown:
        print("settings from: " + ", ".join(f"{k} ({v})" for k, v in sorted(shown.items())))
    return 0 if ok_active else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="llmapp", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def provider_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--provider", choices=config.PROVIDERS,
                       help="default: openai if OPENAI_API_KEY is set, openai-compatible if "
                            "OPENAI_COMPATIBLE_BASE_URL is, else local")
        p.add_argument("--model", help="model name (for local: a GGUF file path)")
        p.add_argument("--base-url", help="OpenAI-compatible server, e.g. "
                                          "http://localhost:11434/v1 (implies that provider)")

    chat = sub.add_parser("chat", help="stream one answer to the terminal")
    chat.add_argument("prompt")
    provider_args(chat)
    chat.add_argument("--system", default=config.DEFAULT_SYSTEM_PROMPT, help="system prompt")
    chat.add_argument("--temperature", type=float, default=config.DEFAULT_TEMPERATURE)
    chat.add_argument("--top-p", type=float, default=config.DEFAULT_TOP_P)
    chat.add_argument("--max-tokens", type=int, default=config.DEFAULT_MAX_TOKENS)
    chat.add_argument("--stop", action="append", metavar="SEQ",
                      help="stop sequence (repeat for several)")
    chat.add_argument("-q", "--quiet", action="store_true", help="no stats line on stderr")
    chat.set_defaults(func=cmd_chat)

    doctor = sub.add_parser("doctor", help="which providers can run, and why")
    provider_args(doctor)
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmapp`` console script and ``python -m llmapp``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"llmapp: {exc}", file=sys.stderr)
        return 2
    except LlmappError as exc:
        print(f"llmapp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("llmapp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
