"""``llmapp agent`` and ``llmapp tool``: stages 5 and 6."""

from __future__ import annotations

import argparse
import json
import sys

from llmapp import config
from llmapp.cli.common import cli_guard, collection_arg, provider_args, settings_from
from llmapp.errors import ConfigError
from llmapp.providers import GenerationParams


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the CLI's subparsers."""
    agent = sub.add_parser("agent", help="an agent that calls tools until it can answer")
    agent.add_argument("question")
    agent.add_argument("--tools", nargs="+", default=list(config.OFFLINE_TOOLS),
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
    tool_.add_argument("name", help="calculator, word_count, convert_units, current_datetime, fetch_url, "
                                    "web_search or knowledge_base")
    tool_.add_argument("--arg", action="append", metavar="KEY=VALUE",
                       help="an argument (repeat for several)")
    collection_arg(tool_)
    tool_.set_defaults(func=cmd_tool)


def _agent_events(args: argparse.Namespace):
    from llmapp.routed import run_with_tools
    from llmapp.tools import available_tools

    settings = settings_from(args)
    kb = None
    if "knowledge_base" in args.tools:
        from llmapp.rag.store import knowledge_base

        kb = knowledge_base(settings)
    tools = available_tools(kb, args.collection)
    unknown = [t for t in args.tools if t not in tools]
    if unknown:
        raise ConfigError(f"Unknown tool(s) {', '.join(unknown)}: use {', '.join(tools)}, "
                          "knowledge_base.")
    return run_with_tools(settings, {t: tools[t] for t in args.tools}, args.question,
                          params=GenerationParams(temperature=0.2, max_tokens=args.max_tokens),
                          max_model_calls=args.max_model_calls,
                          max_tool_calls=args.max_tool_calls, guard=cli_guard(settings))


def _agent_json(args: argparse.Namespace) -> tuple[dict, int]:
    from llmapp.routed import run_summary

    data = run_summary(_agent_events(args))
    if not data["answer"] and data["stopped"]:
        data["error"] = {"type": "stopped", "message": data["stopped"]}
        print(f"llmapp: stopped: {data['stopped']}", file=sys.stderr)
        return data, 1
    return data, 0


def cmd_agent(args: argparse.Namespace) -> int:
    """``llmapp agent``: each step on stderr as it happens, the answer on
    stdout; with ``--json``, exactly one JSON object on stdout (see
    :func:`llmapp.routed.run_summary`), with ``"error": {"type", "message"}``
    added and a non-zero exit when the guard blocked the question, the model
    failed or a limit stopped the run before an answer."""
    if args.json:
        from llmapp.cli.common import json_command

        return json_command(lambda partial: _agent_json(args),
                            {"answer": "", "steps": [], "results": [], "stopped": None})
    events = _agent_events(args)
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
        elif event.kind == "withdrawn":
            print(f"\nwithdrawn: {event.text}", file=sys.stderr)
    sys.stdout.write("\n" + "".join(f"= {r}\n" for r in results))
    return 0 if answered else 1


def cmd_tool(args: argparse.Namespace) -> int:
    """``llmapp tool NAME --arg k=v``: call one tool directly and print its result."""
    from llmapp.tools import available_tools, run_tool

    kb = None
    if args.name == "knowledge_base":
        from llmapp.rag.store import knowledge_base

        kb = knowledge_base(settings_from(args))
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
