"""Agent framework overhead per step, model and tool time excluded.

A scripted tool-calling model (no inference) drives ``--steps`` tool calls
then answers, through ``llmapp.agent`` (create_agent + middleware + our event
stream). The model's and the tool's own time are measured inside them and
subtracted from the wall time; the rest, divided by the steps, is what the
framework costs per step. Target (issue #6): at most 10 ms.

    python benchmarks/bench_agent.py [--steps 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from llmapp.agent import build_agent, run_agent

SPENT = {"model": 0.0, "tool": 0.0}


@tool
def echo(text: str) -> str:
    """Return the text."""
    started = time.perf_counter()
    out = text
    SPENT["tool"] += time.perf_counter() - started
    return out


class Scripted(BaseChatModel):
    steps: int
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "bench-scripted"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        started = time.perf_counter()
        self.calls += 1
        if self.calls <= self.steps:
            message = AIMessage("", tool_calls=[{"name": "echo", "args": {"text": "x"},
                                                 "id": f"c{self.calls}", "type": "tool_call"}])
        else:
            message = AIMessage("done")
        SPENT["model"] += time.perf_counter() - started
        return ChatResult(generations=[ChatGeneration(message=message)])


def one_run(steps: int) -> float:
    SPENT.update(model=0.0, tool=0.0)
    agent = build_agent(Scripted(steps=steps), [echo], max_model_calls=steps + 2,
                        max_tool_calls=steps + 2)
    started = time.perf_counter()
    events = list(run_agent(agent, "go"))
    wall = time.perf_counter() - started
    assert sum(e.kind == "tool_result" for e in events) == steps
    return (wall - SPENT["model"] - SPENT["tool"]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    one_run(2)  # warm up imports and graph compilation paths
    per_step = statistics.median(one_run(args.steps) for _ in range(args.runs)) * 1000
    print(f"{args.steps} steps per run, median of {args.runs} runs: {per_step:.2f} ms framework "
          f"overhead per step (target <= 10 ms: {'met' if per_step <= 10 else 'MISSED'})")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "agent.json").write_text(json.dumps({"ms_per_step": per_step,
                                                "steps": args.steps}, indent=2))


if __name__ == "__main__":
    main()
