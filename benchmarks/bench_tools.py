"""Tools and the agent on the bundled model: does the right tool run, with
the right arguments, and does the answer carry the right result?

Runs every question of ``tests/data/tool_questions.json`` through
:func:`llmapp.routed.run_routed_agent` (semantic router, constrained
arguments, the model's answer) on the bundled model, with the calculator,
word count, letter count and unit conversion (no question asks for them: they draw
misroutes), the clock and the knowledge base over the sample handbook (an
on-disk Chroma in a temporary folder). Targets (issue 14):

* the right tool for >= 90% of the tool questions;
* the right result in the final answer for >= 80% of calculator and
  word-count questions;
* "no tool" for >= 90% of the chit-chat questions.

"In the model's words" means the expected number appears in the model's
sentence; "shown" means the tool's result, which the pages print plainly
under that sentence, is right.

    python benchmarks/bench_tools.py [--limit N] [--threshold 0.40]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_file import save  # noqa: E402

from llmapp import config  # noqa: E402
from llmapp.providers import GenerationParams  # noqa: E402
from llmapp.routed import run_routed_agent  # noqa: E402
from llmapp.routing import SemanticRouter  # noqa: E402
from llmapp.settings import resolve  # noqa: E402
from llmapp.tools import (calculator, convert_units, current_datetime, letter_count,  # noqa: E402,E501
                          make_knowledge_base_tool, word_count)

QUESTIONS = ROOT / "tests" / "data" / "tool_questions.json"
ANSWER_PARAMS = GenerationParams(temperature=0.2, top_p=0.95, max_tokens=96)
"""The Agent page's defaults but shorter: one sentence is asked for."""


def expected_number(row: dict) -> str:
    """The number a calculator or word-count answer must state: "437", or
    the 6 of "6 words"."""
    return row["expect"].split()[0]


def states(text: str, number: str) -> bool:
    """Whether ``text`` states ``number`` (as a whole number, "1,000" too)."""
    plain = text.replace(",", "")
    return re.search(rf"(?<![\d.]){re.escape(number)}(?:\.0+)?(?![\d])", plain) is not None


def result_right(row: dict, result: str) -> bool:
    """Whether a tool's result text is the expected one."""
    if row["tool"] == "calculator":
        return result.strip() == row["expect"]
    if row["tool"] == "word_count":
        count, unit = row["expect"].split()
        return re.search(rf"\b{count} {unit}", result) is not None
    if row["tool"] == "current_datetime":
        return f"({row['expect']}," in result
    return bool(result) and not result.startswith("Error")


def knowledge_tool(folder: Path):
    """The knowledge-base tool over the sample handbook, ingested into ``folder``."""
    from llmapp.rag.store import knowledge_base

    kb = knowledge_base(resolve(environ={"LLMAPP_CHROMA_PATH": str(folder)}, env_file={}))
    for path in sorted((ROOT / "data" / "handbook").iterdir()):
        kb.ingest("handbook", path.read_bytes(), path.name)
    return make_knowledge_base_tool(kb, "handbook")


def run(rows: list[dict], tools: dict, threshold: float) -> list[dict]:
    """Each question's outcome: the tools run, their results, the answer."""
    settings = resolve(environ={}, env_file={})
    router = SemanticRouter(tools.values(), threshold=threshold)
    outcomes = []
    for row in rows:
        started = time.perf_counter()
        events = [e for e in run_routed_agent(settings, tools, row["question"],
                                              params=ANSWER_PARAMS, router=router)
                  if e.kind != "token"]
        calls = [e for e in events if e.kind == "tool_call"]
        results = [e for e in events if e.kind == "tool_result"]
        answer = next((e.text for e in events if e.kind == "answer"), "")
        first = calls[0].name if calls else (results[0].name if results else None)
        outcome = {**row, "chosen": first, "tools": [e.name for e in calls],
                   "args": calls[0].args if calls else {},
                   "result": results[0].text if results else "", "answer": answer,
                   "decided_by": calls[0].decided_by if calls else
                   next((e.text for e in events if e.kind == "no_tool"), ""),
                   "seconds": round(time.perf_counter() - started, 2)}
        outcome["right_tool"] = first == row["tool"]
        if row["tool"] in ("calculator", "word_count"):
            outcome["shown"] = outcome["right_tool"] and result_right(row, outcome["result"])
            outcome["in_answer"] = outcome["right_tool"] and states(answer, expected_number(row))
        elif row["tool"]:
            outcome["shown"] = outcome["right_tool"] and result_right(row, outcome["result"])
        outcomes.append(outcome)
        mark = "ok" if outcome["right_tool"] else "XX"
        print(f"{mark} {str(first):17} {json.dumps(outcome['args'])[:40]:40} "
              f"| {answer[:60]!r} | {row['question'][:50]}", flush=True)
    return outcomes


def share(outcomes: list[dict], key: str) -> tuple[int, int]:
    return sum(bool(o.get(key)) for o in outcomes), len(outcomes)


def summary(outcomes: list[dict]) -> dict:
    """The scores the issue targets, as ``[right, out of]`` pairs."""
    tool_rows = [o for o in outcomes if o["tool"]]
    counted = [o for o in outcomes if o["tool"] in ("calculator", "word_count")]
    by_tool = {}
    for name in ("calculator", "word_count", "current_datetime", "knowledge_base"):
        rows = [o for o in outcomes if o["tool"] == name]
        if rows:
            by_tool[name] = {"right_tool": share(rows, "right_tool"),
                             "right_result_shown": share(rows, "shown")}
            if name in ("calculator", "word_count"):
                by_tool[name]["right_result_in_answer"] = share(rows, "in_answer")
    chat = [o for o in outcomes if o["tool"] is None]
    return {"right_tool": share(tool_rows, "right_tool"),
            "calc_and_count_result_shown": share(counted, "shown"),
            "calc_and_count_result_in_answer": share(counted, "in_answer"),
            "chit_chat_no_tool": share(chat, "right_tool"),
            "extra_tool_calls": sum(len(o["tools"]) > 1 for o in outcomes),
            "by_tool": by_tool,
            "median_seconds": statistics.median(o["seconds"] for o in outcomes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=0,
                        help="the first N questions of each tool and of chit-chat (0: all)")
    parser.add_argument("--threshold", type=float, default=config.ROUTER_THRESHOLD)
    args = parser.parse_args()
    rows = json.loads(QUESTIONS.read_text())["questions"]
    if args.limit:
        seen: dict = {}
        rows = [r for r in rows if seen.setdefault(r["tool"], []).append(r) or
                len(seen[r["tool"]]) <= args.limit]
    with tempfile.TemporaryDirectory() as folder:
        tools = {t.name: t for t in (calculator, word_count, letter_count, convert_units,
                                     current_datetime,
                                     knowledge_tool(Path(folder)))}
        outcomes = run(rows, tools, args.threshold)
    scores = summary(outcomes)
    print()

    def pct(pair):
        return f"{pair[0]}/{pair[1]} ({100 * pair[0] / max(pair[1], 1):.0f}%)"

    print(f"right tool (tool questions)            {pct(scores['right_tool'])}   target >= 90%")
    print(f"right result, calculator + word count  in the model's words "
          f"{pct(scores['calc_and_count_result_in_answer'])}, shown plainly "
          f"{pct(scores['calc_and_count_result_shown'])}   target >= 80%")
    print(f"no tool for chit-chat                  {pct(scores['chit_chat_no_tool'])}   "
          "target >= 90%")
    for name, s in scores["by_tool"].items():
        print(f"  {name:17} " + ", ".join(f"{k.replace('_', ' ')} {pct(v)}" for k, v in s.items()))
    print(f"questions with more than one tool call: {scores['extra_tool_calls']}; median "
          f"{scores['median_seconds']:.1f} s per question")
    save("tools.json", {"threshold": args.threshold, "scores": scores, "outcomes": outcomes})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
