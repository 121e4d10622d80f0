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
