"""``llmapp ingest``, ``search``, ``ask``, ``collections`` and ``eval``: stage 3
and its evaluation."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from llmapp import config
from llmapp.chat import ChatStore
from llmapp.cli.common import (
    cli_guard,
    collection_arg,
    json_command,
    provider_args,
    reply_stats,
    retrieval_args,
    settings_from,
)
from llmapp.errors import ConfigError
from llmapp.providers import GenerationParams


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the CLI's subparsers."""
    from llmapp.rag.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
    from llmapp.rag.chunking import STRATEGIES as CHUNKINGS

    ingest = sub.add_parser("ingest", help="add files or folders to a collection")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    collection_arg(ingest)
    ingest.add_argument("--chunking", choices=CHUNKINGS, default=CHUNKINGS[0])
    ingest.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help="characters per chunk")
    ingest.add_argument("--chunk-overlap", type=int, default=DEFAULT_CHUNK_OVERLAP,
                        help="characters shared by neighbouring chunks")
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(func=cmd_ingest)

    from llmapp.evaluation.command import add_parser as add_eval

    add_eval(sub, collection_arg)
    sub.choices["eval"].set_defaults(func=cmd_eval)

    search = sub.add_parser("search", help="the chunks closest to a query")
    search.add_argument("query")
    collection_arg(search)
    search.add_argument("--k", type=int, default=4)
    search.add_argument("--mmr", action="store_true", help="max marginal relevance")
    retrieval_args(search)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    ask = sub.add_parser("ask", help="a cited answer from a collection")
    ask.add_argument("question")
    collection_arg(ask)
    provider_args(ask)
    ask.add_argument("--k", type=int, default=4)
    retrieval_args(ask)
    ask.add_argument("--max-tokens", type=int, default=config.DEFAULT_MAX_TOKENS)
    ask.add_argument("--answer", choices=config.RAG_ANSWER_MODES, default=None,
                     help="extractive: quote the closest sentences; generative: the model "
                          "writes the answer; auto (LLMAPP_RAG_ANSWER's default): extractive for "
                          "the bundled model")
    ask.add_argument("--json", action="store_true",
                     help='print one JSON object when done: {"answer", "sources": [{"n", '
                          '"source", "page", "score", "cited", ...}], "stats", "notices"}, '
                          'with "error": {"type", "message"} on failure')
    ask.set_defaults(func=cmd_ask)

    collections = sub.add_parser("collections", help="collections and their counts")
    collections.set_defaults(func=cmd_collections)


def cmd_ingest(args: argparse.Namespace) -> int:
    """``llmapp ingest``: load, chunk, embed and store files; one line each.
    Exit 1 if any file failed (the others are still ingested)."""
    from tqdm import tqdm

    from llmapp.rag.chunking import ChunkSettings
    from llmapp.rag.files import find_files, read_files
    from llmapp.rag.loaders import display_name
    from llmapp.rag.store import knowledge_base

    chunking = ChunkSettings(args.chunking, args.chunk_size, args.chunk_overlap)
    files = find_files(args.paths)
    if not files:
        raise ConfigError("No files to ingest (supported: .txt, .md, .pdf, .html).")
    kb = knowledge_base(settings_from(args))
    failed = 0
    with tqdm(total=len(files), unit="file", file=sys.stderr, disable=args.quiet) as bar:
        def report(source: str, outcome) -> None:
            nonlocal failed
            bar.update(1)
            if isinstance(outcome, Exception):
                failed += 1
                text = str(outcome)
                if not text.startswith(f"{source}:"):
                    text = f"{source}: {text}"
                bar.write(display_name(f"failed   {text}"), file=sys.stdout)  # one line
                return
            notice = f" ({outcome.notice})" if outcome.notice else ""
            bar.write(display_name(f"{outcome.status:<8} {source}: {outcome.chunks} "
                                   f"chunks{notice}"), file=sys.stdout)

        for source, outcome in kb.ingest_many(args.collection, read_files(files, report),
                                              chunking):
            report(source, outcome)
    print(f"{len(files) - failed} of {len(files)} files in collection {args.collection!r} "
          f"({chunking.describe()})")
    return 1 if failed else 0


def cmd_search(args: argparse.Namespace) -> int:
    """``llmapp search``: the nearest chunks, as text or ``--json``
    (a list of ``{id, source, page, score, text}``)."""
    from llmapp.rag.store import knowledge_base

    hits = knowledge_base(settings_from(args)).search(
        args.collection, args.query, args.k, mmr=args.mmr, retriever=args.retriever,
        max_per_source=args.max_per_source)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    for n, hit in enumerate(hits, start=1):
        section = f"  ({hit.section})" if hit.section else ""
        print(f"[{n}] {hit.score:.3f} {hit.found_by:<7} {hit.cite()}{section}\n"
              f"    {' '.join(hit.text.split())[:300]}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """``llmapp ask``: a cited answer, streamed, then its numbered sources;
    with ``--json``, exactly one JSON object::

        {"answer": str,
         "sources": [{"n", "source", "page", "section", "index", "score",
                      "found_by", "cited", "text", "injection"}, ...],
         "stats": {...} | null, "notices": [str, ...]}

    with ``"error": {"type", "message", ...}`` added and a non-zero exit when
    the guard blocked the question, nothing was retrieved, the model failed
    or the answer was withdrawn."""
    if args.json:
        return json_command(lambda partial: _ask_json(args, partial),
                            {"answer": "", "sources": [], "stats": None, "notices": []})
    from llmapp.rag.answer import source_line

    rag = _start_ask(args)
    for text in rag.reply.stream:
        sys.stdout.write(text)
        sys.stdout.flush()
    message = rag.message()
    for notice in message.notices:
        print(f"note: {notice}", file=sys.stderr)
    print("\n\nSources:")
    for s in message.sources:
        print(f"  {source_line(s)}")
    print(reply_stats(message), file=sys.stderr)
    return 0


def _start_ask(args: argparse.Namespace):
    from llmapp.rag.answer import RetrievalSettings, start_answer
    from llmapp.rag.store import knowledge_base

    settings = settings_from(args)
    store = ChatStore()
    store.add_user(args.question)
    params = GenerationParams(temperature=0.2, max_tokens=args.max_tokens)
    if args.answer:
        settings = dataclasses.replace(settings, rag_answer=args.answer)
    return start_answer(knowledge_base(settings), args.collection, store, settings, params,
                        RetrievalSettings(k=args.k, retriever=args.retriever,
                                          max_per_source=args.max_per_source),
                        guard=cli_guard(settings))


def _ask_json(args: argparse.Namespace, partial: dict) -> tuple[dict, int]:
    rag = _start_ask(args)
    partial["sources"] = rag.sources("")
    try:
        rag.stream.consume()
    finally:
        partial.update(answer=rag.stream.text, stats=rag.stream.stats.to_dict())
    message = rag.message()
    data = {"answer": message.content, "sources": message.sources,
            "stats": rag.stream.stats.to_dict(), "notices": message.notices}
    if message.withheld:
        data["error"] = {"type": "withdrawn", "message": message.notices[-1]}
        print(f"llmapp: {message.notices[-1]}", file=sys.stderr)
        return data, 1
    return data, 0


def cmd_collections(args: argparse.Namespace) -> int:
    """``llmapp collections``: each collection with its counts and embedder."""
    from llmapp.rag.store import knowledge_base

    infos = knowledge_base(settings_from(args)).collections()
    if not infos:
        print("no collections yet: llmapp ingest data/handbook")
    for c in infos:
        print(f"{c.name}: {c.documents} documents, {c.chunks} chunks, {c.embedder} "
              f"({c.dimension} dims), {c.chunking}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``llmapp eval retrieval|answers|runs|judge``: see :mod:`llmapp.evaluation.command`."""
    from llmapp.evaluation import command

    run = {"retrieval": command.cmd_eval_retrieval, "answers": command.cmd_eval_answers,
           "runs": command.cmd_eval_runs, "judge": command.cmd_eval_judge}[args.kind]
    return run(args, settings_from(args))
