"""What the command groups share: settings from the command line, and the
options several commands take."""

from __future__ import annotations

import argparse

from llmapp import config
from llmapp.settings import Settings, resolve_choices


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings, with ``--provider``, ``--base-url``, ``--model`` and
    ``--tool-choice`` as the first layer (``"command line"``)."""
    return resolve_choices(provider=getattr(args, "provider", None),
                           model=getattr(args, "model", None),
                           base_url=getattr(args, "base_url", None),
                           tool_choice=getattr(args, "tool_choice", None))


def cli_guard(settings: Settings):
    """The safety filter for a command (``LLMAPP_SAFETY_LEVEL``), with the
    protected phrases of the database when it opens; None at level off."""
    import sys

    from llmapp.safety import load_guard

    guard, note = load_guard(settings)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return guard


def reply_stats(message) -> str:
    """A stored reply's stats line, or ""."""
    return message.stats.summary() if message.stats else ""


def provider_args(p: argparse.ArgumentParser) -> None:
    """``--provider``, ``--model`` and ``--base-url``."""
    p.add_argument("--provider", choices=config.PROVIDERS,
                   help="default: openai if OPENAI_API_KEY is set, openai-compatible if "
                        "OPENAI_COMPATIBLE_BASE_URL is, else local")
    p.add_argument("--model", help="model name (for local: a GGUF file path)")
    p.add_argument("--base-url", help="OpenAI-compatible server, e.g. "
                                      "http://localhost:11434/v1 (implies that provider)")


def collection_arg(p: argparse.ArgumentParser) -> None:
    """``--collection``."""
    from llmapp.rag.store import DEFAULT_COLLECTION

    p.add_argument("--collection", default=DEFAULT_COLLECTION,
                   help=f"Chroma collection (default {DEFAULT_COLLECTION})")


def retrieval_args(p: argparse.ArgumentParser) -> None:
    """``--retriever`` and ``--max-per-source``."""
    from llmapp.rag.store import RETRIEVERS

    p.add_argument("--retriever", choices=RETRIEVERS, default="hybrid",
                   help="hybrid (embeddings and BM25, fused; default), dense or lexical")
    p.add_argument("--max-per-source", type=int, metavar="N",
                   help="at most N chunks of one document")


def error_info(exc: BaseException) -> dict:
    """``{"type", "message"}`` of a failure, for ``--json`` output. ``type``
    is ``blocked`` (the safety filter blocked the question; ``verdict`` is
    added), ``safety`` (a text it cannot check), ``provider`` (the model
    failed; ``kind`` and ``retryable`` are added, see
    :class:`~llmapp.errors.ProviderError`), ``config``, ``rag``, ``store``,
    ``tool``, ``file``, ``interrupted`` or ``internal`` (a bug: the
    traceback goes to the log, never to stdout)."""
    import logging

    from llmapp.errors import ConfigError, LlmappError, ProviderError
    from llmapp.safety import SafetyError

    if isinstance(exc, SafetyError):
        out = {"type": "blocked" if exc.verdict is not None else "safety",
               "message": str(exc)}
        if exc.verdict is not None:
            out["verdict"] = exc.verdict.to_dict()
        return out
    if isinstance(exc, ProviderError):
        return {"type": "provider", "message": str(exc), "kind": exc.kind,
                "retryable": exc.retryable}
    if isinstance(exc, ConfigError):
        return {"type": "config", "message": str(exc)}
    if isinstance(exc, LlmappError):
        name = type(exc).__name__.removesuffix("Error").lower() or "llmapp"
        return {"type": name, "message": str(exc)}
    if isinstance(exc, OSError):
        return {"type": "file", "message": f"cannot read {exc.filename or 'a file'}: "
                                           f"{exc.strerror or exc}"}
    if isinstance(exc, KeyboardInterrupt):
        return {"type": "interrupted", "message": "interrupted"}
    logging.getLogger("llmapp.cli").exception("unexpected error")
    return {"type": "internal", "message": f"unexpected {type(exc).__name__}: see the log "
                                           "(llmapp -v)"}


def exit_code(exc: BaseException) -> int:
    """The exit status of a failure, as ``llmapp``'s main gives it: 2 for bad
    settings, arguments or files, 130 when interrupted, else 1."""
    from llmapp.errors import ConfigError

    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 2 if isinstance(exc, ConfigError | OSError) else 1


def print_json(data: dict) -> None:
    """One JSON object on one line of stdout."""
    import json

    print(json.dumps(data, ensure_ascii=False))


def json_command(run, empty: dict) -> int:
    """Run a ``--json`` command so that stdout always gets exactly one JSON
    object, also when it fails.

    Args:
        run: ``run(partial) -> (data, exit_code)``; it may fill ``partial``
            (a copy of ``empty``) as it goes, e.g. with stats.
        empty: the object's keys with empty values, printed with ``"error"``
            added when ``run`` raises.

    Returns:
        the exit code: ``run``'s, or :func:`exit_code` of the failure, whose
        one-line message also goes to stderr for people.
    """
    import sys

    partial = dict(empty)
    try:
        data, code = run(partial)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure is reported
        error = error_info(exc)
        print(f"llmapp: {error['message']}", file=sys.stderr)
        print_json({**partial, "error": error})
        return exit_code(exc)
    print_json(data)
    return code
