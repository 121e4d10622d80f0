"""``llmapp chat``, ``llmapp doctor`` and ``llmapp chain``: stages 1 and 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llmapp import config
from llmapp.chat import ChatStore, start_reply
from llmapp.cli.common import cli_guard, json_command, provider_args, settings_from
from llmapp.errors import ConfigError
from llmapp.providers import PROVIDERS, GenerationParams, active_provider


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the CLI's subparsers."""
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
    chat.add_argument("--cache", choices=config.CACHE_MODES,
                      help="response cache (default LLMAPP_CACHE, semantic): the command "
                           "line's own entries, in the LLMAPP_DATABASE_URL database")
    chat.add_argument("--json", action="store_true",
                      help='print one JSON object when done: {"text", "stats": {..., "cache"}, '
                           '"notices"}, with "error": {"type", "message"} on failure')
    chat.set_defaults(func=cmd_chat)

    doctor = sub.add_parser("doctor", help="which providers can run, and why")
    provider_args(doctor)
    doctor.set_defaults(func=cmd_doctor)

    chain = sub.add_parser("chain", help="run a prompt-chain technique")
    chain.add_argument("technique", choices=("structured", "sequential", "density", "thought",
                                             "skeleton"))
    chain.add_argument("text", nargs="?", help="the input text or question")
    chain.add_argument("--file", help="read the input text from a file")
    chain.add_argument("--schema", default="food",
                       help="structured: a built-in (food, contact, summary) or a JSON Schema file")
    chain.add_argument("--rounds", type=int, default=5, help="density: rounds (1 to 10)")
    chain.add_argument("--no-cot", action="store_true", help="thought: without step by step")
    chain.add_argument("--temperature", type=float, default=0.3)
    chain.add_argument("--max-tokens", type=int, default=256)
    provider_args(chain)
    chain.set_defaults(func=cmd_chain)


def cmd_chat(args: argparse.Namespace) -> int:
    """``llmapp chat``: stream one answer to stdout, the stats line to stderr;
    with ``--json``, print exactly one JSON object instead::

        {"text": str, "stats": {..., "cache"} | null, "notices": [str, ...]}

    with ``"error": {"type", "message", ...}`` added (see
    :func:`~llmapp.cli.common.error_info`) and a non-zero exit when the guard
    blocked the question, the model failed, the reply was withdrawn, or a
    setting is bad."""
    if args.json:
        return json_command(lambda partial: _chat_json(args, partial),
                            {"text": "", "stats": None, "notices": []})
    reply = _start_chat(args)
    for text in reply.stream:
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    for notice in reply.message().notices[len(reply.notices):]:
        print(f"note: {notice}", file=sys.stderr)
    if not args.quiet:
        print(reply.stream.stats.summary(), file=sys.stderr)
    return 0


def _start_chat(args: argparse.Namespace):
    settings = settings_from(args)
    params = GenerationParams(temperature=args.temperature, top_p=args.top_p,
                              max_tokens=args.max_tokens, stop=tuple(args.stop or ()))
    store = ChatStore()
    store.add_user(args.prompt)
    reply = start_reply(store, settings, params, args.system,
                        cache=_cache_use(settings, args.cache or settings.cache_mode),
                        guard=cli_guard(settings))
    for notice in reply.notices:
        print(f"note: {notice}", file=sys.stderr)
    return reply


def _chat_json(args: argparse.Namespace, partial: dict) -> tuple[dict, int]:
    reply = _start_chat(args)
    partial.update(stats=reply.stream.stats.to_dict(), notices=list(reply.notices))
    try:
        reply.stream.consume()
    finally:
        partial.update(text=reply.stream.text, stats=reply.stream.stats.to_dict())
    message = reply.message()
    data = {"text": message.content, "stats": reply.stream.stats.to_dict(),
            "notices": message.notices}
    if reply.stream.withdrawn:
        data["error"] = {"type": "withdrawn", "message": message.notices[-1]}
        print(f"llmapp: {message.notices[-1]}", file=sys.stderr)
        return data, 1
    return data, 0


def _cache_use(settings, mode: str):
    """The command line's cache: scope ``cli``, or ``shared`` when
    ``LLMAPP_CACHE_SCOPE`` says so; None when off. A database that cannot be
    opened turns it off, with a note."""
    from llmapp.cache import open_cache

    cache, note = open_cache(settings, "cli", mode)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return cache


def cmd_doctor(args: argparse.Namespace) -> int:
    """``llmapp doctor``: each provider, whether it can run and why. Exit 1
    when the active provider cannot run."""
    settings = settings_from(args)
    provider, reason = active_provider(settings)
    print(f"active provider: {provider.name} ({provider.model_name(settings)})")
    print(f"  because {reason}")
    notice = provider.shutdown_notice(settings)
    if notice:
        print(f"  warning: {notice}")
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


def cmd_chain(args: argparse.Namespace) -> int:
    """``llmapp chain TECHNIQUE``: each step to stderr (name, time, output),
    the final output to stdout; ``structured`` prints validated JSON."""
    from llmapp.prompting import chains
    from llmapp.prompting.structured import StructuredOutputError, schema_of, structured_output
    from llmapp.providers import chat_model_for

    settings = settings_from(args)
    text = Path(args.file).read_text(encoding="utf-8") if args.file else args.text
    if not text:
        raise ConfigError("Give the text (or question) as an argument, or --file.")
    if args.technique == "structured":
        spec = args.schema
        if spec not in ("food", "contact", "summary"):
            spec = Path(spec).read_text(encoding="utf-8")
        try:
            result = structured_output(settings, [{"role": "user", "content": text}],
                                       schema_of(spec))
        except StructuredOutputError as exc:
            print(f"llmapp: {exc}\nraw output: {exc.raw}", file=sys.stderr)
            return 1
        print(f"valid after {result.attempts} attempt(s)", file=sys.stderr)
        print(json.dumps(result.data, ensure_ascii=False, indent=2))
        return 0
    params = GenerationParams(temperature=args.temperature, max_tokens=args.max_tokens)
    provider, _ = active_provider(settings)
    model = chat_model_for(settings, provider.name, params)
    events = {
        "sequential": lambda: chains.sequential(text, lambda role: model),
        "density": lambda: chains.density(text, lambda role: model, args.rounds),
        "thought": lambda: chains.thought(text, lambda role: model, not args.no_cot),
        "skeleton": lambda: chains.skeleton(text, lambda role: model),
    }[args.technique]()
    for step in events:
        if step.stream is not None:
            print(f"== {step.name}", file=sys.stderr)
            for chunk in step.stream:
                sys.stdout.write(chunk)
                sys.stdout.flush()
            sys.stdout.write("\n")
            for note in step.notes:
                print(f"note: {note}", file=sys.stderr)
        else:
            print(f"== {step.name} ({step.seconds:.2f} s)\n{step.output}\n", file=sys.stderr)
    return 0
