"""The ``llmapp`` command line: a thin layer over the same library the pages use.

    llmapp chat "PROMPT" [--provider ...] [--model ...] [--system ...] ...
    llmapp doctor
    llmapp ingest PATH... [--collection] [--chunking] [--chunk-size] [--chunk-overlap]
    llmapp search QUERY [--collection] [--k] [--mmr] [--json]
    llmapp ask QUESTION [--collection] [--k]
    llmapp collections
    llmapp tool NAME --arg key=value
    llmapp agent QUESTION [--tools ...] [--tool-choice auto|router|model] [--json]
    llmapp chain structured|sequential|density|thought|skeleton TEXT [--schema] [--rounds]
    llmapp eval retrieval QUESTIONS.jsonl [--collection] [--k 5] [--compare ...] [--json]

Errors end in one line on stderr and a non-zero exit: 1 when the model
failed, 2 for bad settings or arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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


def _files(paths: Sequence[str]) -> list[tuple[Path, str]]:
    """(file, source name) for each path; directories recurse, keeping files
    of supported types, named by their path below the directory's parent."""
    from llmapp.rag.loaders import SUPPORTED

    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in SUPPORTED:
                    out.append((file, file.relative_to(path.parent).as_posix()))
        else:
            out.append((path, path.name))
    return out


def cmd_ingest(args: argparse.Namespace) -> int:
    """``llmapp ingest``: load, chunk, embed and store files; one line each.
    Exit 1 if any file failed (the others are still ingested)."""
    from tqdm import tqdm

    from llmapp.rag import IngestError
    from llmapp.rag.chunking import ChunkSettings
    from llmapp.rag.store import knowledge_base

    chunking = ChunkSettings(args.chunking, args.chunk_size, args.chunk_overlap)
    files = _files(args.paths)
    if not files:
        raise ConfigError("No files to ingest (supported: .txt, .md, .pdf, .html).")
    kb = knowledge_base(_settings_from(args))
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
                bar.write(f"failed   {text}", file=sys.stdout)
                return
            notice = f" ({outcome.notice})" if outcome.notice else ""
            bar.write(f"{outcome.status:<8} {source}: {outcome.chunks} chunks{notice}",
                      file=sys.stdout)

        def readable():
            for path, source in files:
                try:
                    yield source, path.read_bytes()
                except OSError as exc:
                    report(source, IngestError(f"{source}: cannot be read "
                                               f"({exc.strerror or exc})."))

        for source, outcome in kb.ingest_many(args.collection, readable(), chunking):
            report(source, outcome)
    print(f"{len(files) - failed} of {len(files)} files in collection {args.collection!r} "
          f"({chunking.describe()})")
    return 1 if failed else 0


def cmd_search(args: argparse.Namespace) -> int:
    """``llmapp search``: the nearest chunks, as text or ``--json``
    (a list of ``{id, source, page, score, text}``)."""
    from llmapp.rag.store import knowledge_base

    hits = knowledge_base(_settings_from(args)).search(
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
    """``llmapp ask``: a cited answer, streamed, then its numbered sources."""
    from llmapp.rag.answer import RetrievalSettings, start_answer
    from llmapp.rag.store import knowledge_base

    settings = _settings_from(args)
    store = ChatStore()
    store.add_user(args.question)
    params = GenerationParams(temperature=0.2, max_tokens=args.max_tokens)
    rag = start_answer(knowledge_base(settings), args.collection, store, settings, params,
                       RetrievalSettings(k=args.k, retriever=args.retriever,
                                         max_per_source=args.max_per_source))
    for text in rag.reply.stream:
        sys.stdout.write(text)
        sys.stdout.flush()
    message = rag.message()
    print("\n\nSources:")
    for s in message.sources:
        mark = {"model": "cited", "matched": "matched by llmapp", "": "not used"}[s["cited"]]
        page = f", page {s['page']}" if s["page"] else ""
        print(f"  [{s['n']}] {s['source']}{page}, chunk {s['index']} ({mark})")
    print(reply_stats(message), file=sys.stderr)
    return 0


def cmd_chain(args: argparse.Namespace) -> int:
    """``llmapp chain TECHNIQUE``: each step to stderr (name, time, output),
    the final output to stdout; ``structured`` prints validated JSON."""
    from llmapp.prompting import chains
    from llmapp.prompting.structured import StructuredOutputError, schema_of, structured_output
    from llmapp.providers import chat_model_for

    settings = _settings_from(args)
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


def cmd_agent(args: argparse.Namespace) -> int:
    """``llmapp agent``: each step on stderr as it happens, the answer on
    stdout; with ``--json``, one JSON object on stdout (see
    :func:`llmapp.routed.run_summary`)."""
    from llmapp.routed import run_summary, run_with_tools
    from llmapp.tools import available_tools

    settings = _settings_from(args)
    if args.tool_choice:
        settings = dataclasses.replace(settings, tool_choice=args.tool_choice)
    kb = None
    if "knowledge_base" in args.tools:
        from llmapp.rag.store import knowledge_base

        kb = knowledge_base(settings)
    tools = available_tools(kb, args.collection)
    unknown = [t for t in args.tools if t not in tools]
    if unknown:
        raise ConfigError(f"Unknown tool(s) {', '.join(unknown)}: use {', '.join(tools)}, "
                          "knowledge_base.")
    events = run_with_tools(settings, {t: tools[t] for t in args.tools}, args.question,
                            params=GenerationParams(temperature=0.2, max_tokens=args.max_tokens),
                            max_model_calls=args.max_model_calls,
                            max_tool_calls=args.max_tool_calls)
    if args.json:
        print(json.dumps(run_summary(events), ensure_ascii=False, indent=1))
        return 0
    streamed, answered, results = False, False, []
    for event in events:
        if event.kind == "tool_call":
            print(f"-> {event.name} {json.dumps(event.args, ensure_ascii=False)} "
                  f"({event.decided_by})", file=sys.stderr)
        elif event.kind == "no_tool":
            print(f"-- {event.text}", file=sys.stderr)
        elif event.kind == "tool_result":
            mark = "<-" if event.ok else "<! "
            print(f"{mark} {event.name} ({event.seconds * 1000:.0f} ms): "
                  f"{' '.join(event.text.split())[:300]}", file=sys.stderr)
            if event.plain:
                results.append(f"{event.name}: {event.text}")
        elif event.kind == "token":
            streamed = True
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif event.kind == "answer":
            answered = True
            if not streamed:
                sys.stdout.write(event.text)
        elif event.kind == "limit":
            print(f"stopped: {event.text}", file=sys.stderr)
    sys.stdout.write("\n" + "".join(f"= {r}\n" for r in results))
    return 0 if answered else 1


def cmd_eval(args: argparse.Namespace) -> int:
    """``llmapp eval retrieval``: see :mod:`llmapp.evaluation.command`."""
    from llmapp.evaluation.command import cmd_eval_retrieval

    return cmd_eval_retrieval(args, _settings_from(args))


def cmd_tool(args: argparse.Namespace) -> int:
    """``llmapp tool NAME --arg k=v``: call one tool directly and print its result."""
    from llmapp.tools import available_tools, run_tool

    kb = None
    if args.name == "knowledge_base":
        from llmapp.rag.store import knowledge_base

        kb = knowledge_base(_settings_from(args))
    tools = available_tools(kb, args.collection)
    if args.name not in tools:
        raise ConfigError(f"Unknown tool {args.name!r}: use one of {', '.join(tools)}, "
                          "knowledge_base.")
    arguments = {}
    for pair in args.arg or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--arg takes key=value, got {pair!r}.")
        arguments[key.strip()] = value
    result, seconds = run_tool(tools[args.name], arguments)
    print(result)
    print(f"{args.name} took {seconds * 1000:.0f} ms", file=sys.stderr)
    return 0


def reply_stats(message) -> str:
    return message.stats.summary() if message.stats else ""


def cmd_collections(args: argparse.Namespace) -> int:
    """``llmapp collections``: each collection with its counts and embedder."""
    from llmapp.rag.store import knowledge_base

    infos = knowledge_base(_settings_from(args)).collections()
    if not infos:
        print("no collections yet: llmapp ingest data/handbook")
    for c in infos:
        print(f"{c.name}: {c.documents} documents, {c.chunks} chunks, {c.embedder} "
              f"({c.dimension} dims), {c.chunking}")
    return 0


class IntermixedParser(argparse.ArgumentParser):
    """A parser that takes options before, between or after its positional
    arguments (``llmapp chain density --rounds 2 "text"``), by
    :meth:`argparse.ArgumentParser.parse_known_intermixed_args`; a parser with
    subcommands parses as usual (argparse cannot intermix those), and hands
    the rest to its subcommand's parser, which intermixes."""

    _parsing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._parsing or any(a.nargs == argparse.PARSER for a in self._actions):
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = IntermixedParser(prog="llmapp",
                              description=__doc__.split("\n\n")[0].replace("``", ""))
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

    from llmapp.rag.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
    from llmapp.rag.chunking import STRATEGIES as CHUNKINGS
    from llmapp.rag.store import DEFAULT_COLLECTION, RETRIEVERS

    def retrieval_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--retriever", choices=RETRIEVERS, default="hybrid",
                       help="hybrid (embeddings and BM25, fused; default), dense or lexical")
        p.add_argument("--max-per-source", type=int, metavar="N",
                       help="at most N chunks of one document")

    def collection_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--collection", default=DEFAULT_COLLECTION,
                       help=f"Chroma collection (default {DEFAULT_COLLECTION})")

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

    add_eval(sub, collection_arg).set_defaults(func=cmd_eval)

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
    ask.set_defaults(func=cmd_ask)

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

    agent = sub.add_parser("agent", help="an agent that calls tools until it can answer")
    agent.add_argument("question")
    agent.add_argument("--tools", nargs="+", default=["calculator", "word_count",
                                                      "current_datetime"],
                       metavar="TOOL", help="tools it may call")
    agent.add_argument("--max-model-calls", type=int, default=6)
    agent.add_argument("--max-tool-calls", type=int, default=8)
    agent.add_argument("--max-tokens", type=int, default=256)
    agent.add_argument("--tool-choice", choices=config.TOOL_CHOICES,
                       help="who picks tools (default LLMAPP_TOOL_CHOICE, auto: the semantic "
                            "router for the bundled model, the model otherwise)")
    agent.add_argument("--json", action="store_true",
                       help='print {"answer", "steps": [{"tool", "args", "result"}...]} as JSON')
    collection_arg(agent)
    provider_args(agent)
    agent.set_defaults(func=cmd_agent)

    tool_ = sub.add_parser("tool", help="call a tool directly")
    tool_.add_argument("name", help="calculator, word_count, current_datetime, fetch_url, "
                                    "web_search or knowledge_base")
    tool_.add_argument("--arg", action="append", metavar="KEY=VALUE",
                       help="an argument (repeat for several)")
    collection_arg(tool_)
    tool_.set_defaults(func=cmd_tool)

    collections = sub.add_parser("collections", help="collections and their counts")
    collections.set_defaults(func=cmd_collections)
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
    except OSError as exc:  # a file named on the command line
        print(f"llmapp: cannot read {exc.filename or 'a file'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llmapp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
