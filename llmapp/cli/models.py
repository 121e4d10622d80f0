"""``llmapp models``: the model manager (a catalog of bigger local models,
downloaded only when asked)."""

from __future__ import annotations

import argparse
import sys

from llmapp.cli.common import json_command, print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``models`` and its verbs to the CLI's subparsers."""
    models = sub.add_parser(
        "models", help="the model manager: bigger local models, downloaded when you ask",
        description="Without a verb: the catalog, the models on disk and an Ollama server on "
                    "localhost. Run a downloaded model with LLMAPP_LOCAL_MODEL_PATH=<its path>.")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_list)
    verbs = models.add_subparsers(dest="verb")
    get = verbs.add_parser("download", help="download a catalog model (checks disk and memory "
                                            "first; HF_ENDPOINT picks the hub)")
    get.add_argument("key", help="a catalog key, e.g. qwen2.5-0.5b")
    get.add_argument("--json", action="store_true")
    get.set_defaults(func=cmd_download)
    drop = verbs.add_parser("remove", help="delete a downloaded catalog model")
    drop.add_argument("key")
    drop.set_defaults(func=cmd_remove)


def cmd_list(args: argparse.Namespace) -> int:
    """``llmapp models``: the catalog (with what each needs), what is on disk,
    and Ollama's models."""
    from llmapp.providers.catalog import (
        CATALOG,
        downloaded,
        local_models,
        memory_limit_mb,
        ollama_models,
    )
    from llmapp.settings import resolve

    settings = resolve()
    limit = memory_limit_mb()
    if args.json:
        print_json({
            "catalog": [{"key": e.key, "label": e.label, "repo_id": e.repo_id,
                         "filename": e.filename, "licence": e.licence, "size_mb": e.size_mb,
                         "memory_mb": e.memory_mb, "tokens_per_s_estimate": e.tokens_per_s,
                         "downloaded": str(p) if (p := downloaded(settings, e)) else None}
                        for e in CATALOG],
            "local": [{"path": str(m.path), "label": m.label, "size_mb": m.size_mb}
                      for m in local_models(settings)],
            "ollama": ollama_models(),
            "memory_limit_mb": limit[0] if limit else None})
        return 0
    print("Catalog (sizes approximate; tokens/s estimated for 2 cores from the bundled "
          "model's measured speed):")
    for e in CATALOG:
        fits = "" if limit is None or limit[0] >= e.memory_mb else "  (too big for this box)"
        here = "  [downloaded]" if downloaded(settings, e) else ""
        print(f"  {e.key:14} {e.label:34} {e.size_mb:5,} MB file, ~{e.memory_mb:,} MB memory, "
              f"~{e.tokens_per_s:.0f} tokens/s, {e.licence}{here}{fits}")
    if limit:
        print(f"This box allows {limit[0]:,} MB ({limit[1]}).")
    found = local_models(settings)
    print("On disk:" if found else "On disk: none yet (llmapp models download KEY)")
    for m in found:
        print(f"  {m.label:34} {m.size_mb:5,} MB  {m.path}")
    ollama = ollama_models()
    if ollama:
        print("Ollama on localhost (use with LLMAPP_PROVIDER=openai-compatible, "
              "OPENAI_COMPATIBLE_BASE_URL=http://localhost:11434/v1):")
        for name in ollama:
            print(f"  {name}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """``llmapp models download KEY``: with a progress line on stderr."""
    from llmapp.providers.catalog import download
    from llmapp.settings import resolve

    def progress(done: int, total: int | None) -> None:
        if total:
            print(f"\r{done / 1e6:8.1f} of {total / 1e6:.1f} MB ({done / total:4.0%})",
                  end="", file=sys.stderr, flush=True)

    def run(partial: dict) -> tuple[dict, int]:
        path = download(resolve(), args.key, progress=progress)
        print(file=sys.stderr)
        return {**partial, "path": str(path)}, 0

    if args.json:
        return json_command(run, {"key": args.key, "path": None})
    data, code = run({})
    print(f"Downloaded to {data['path']}\nRun it: LLMAPP_LOCAL_MODEL_PATH={data['path']} "
          "(or pick it in the sidebar's Model provider panel).")
    return code


def cmd_remove(args: argparse.Namespace) -> int:
    """``llmapp models remove KEY``."""
    from llmapp.providers.catalog import remove
    from llmapp.settings import resolve

    print("Removed." if remove(resolve(), args.key) else f"{args.key} was not downloaded.")
    return 0
