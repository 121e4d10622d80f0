"""The safety filter, measured on ``tests/data/safety_texts.jsonl`` (88
unsafe texts in 8 categories, 65 benign ones that look risky: "how do I kill
a zombie process", "how do I shoot a free throw").

Per level: the share of unsafe texts blocked, and of benign texts blocked
(false positives); per category: how many of its texts the child level
blocks. Then the offline checker's time per check (p50, p95) beside the
bundled model's time for one short reply, in the same run.

    python benchmarks/bench_safety.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from results_file import save

from llmapp import config
from llmapp.chat import ChatStore, start_reply
from llmapp.providers import GenerationParams
from llmapp.safety import LEVELS, local_checker
from llmapp.settings import resolve

ROOT = Path(__file__).resolve().parents[1]


def blocked(level: str, scores: dict[str, float]) -> bool:
    return any(scores[c] >= limit for c, limit in LEVELS[level].items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the set")
    args = parser.parse_args()
    rows = [json.loads(line) for line in
            (ROOT / "tests" / "data" / "safety_texts.jsonl").read_text().splitlines()]
    checker = local_checker()
    checker.scores("warm up")
    times, scored = [], []
    for _ in range(args.repeats):
        scored = []
        for row in rows:
            start = time.perf_counter()
            scored.append((row, checker.scores(row["text"])))
            times.append(time.perf_counter() - start)
    unsafe = [(r, s) for r, s in scored if r["label"] != "benign"]
    benign = [(r, s) for r, s in scored if r["label"] == "benign"]
    levels = {level: {"unsafe_blocked": sum(blocked(level, s) for _, s in unsafe) / len(unsafe),
                      "benign_blocked": sum(blocked(level, s) for _, s in benign) / len(benign),
                      "benign_blocked_texts": [r["text"] for r, s in benign
                                               if blocked(level, s)]}
              for level in LEVELS}
    categories = {}
    for label in sorted({r["label"] for r, _ in unsafe}):
        mine = [s for r, s in unsafe if r["label"] == label]
        categories[label] = [sum(blocked("child", s) for s in mine), len(mine)]
    settings = resolve(environ={}, env_file={})
    store = ChatStore()
    store.add_user("How do I kill a Python process that hangs?")
    reply = start_reply(store, settings, GenerationParams(temperature=0.0, max_tokens=64),
                        config.DEFAULT_SYSTEM_PROMPT)
    reply.stream.consume()
    p50 = statistics.median(times)
    data = {"texts": len(rows), "unsafe": len(unsafe), "benign": len(benign), "levels": levels,
            "child_by_category": categories,
            "check_ms": {"p50": p50 * 1000,
                         "p95": sorted(times)[int(len(times) * 0.95)] * 1000},
            "reply_s": reply.stream.stats.total_s,
            "check_share_of_reply": p50 / reply.stream.stats.total_s}
    print(f"{len(rows)} texts: {len(unsafe)} unsafe, {len(benign)} benign")
    print("  level   unsafe blocked   benign blocked")
    for level, r in levels.items():
        print(f"  {level:6s}  {r['unsafe_blocked']:14.1%}   {r['benign_blocked']:14.1%}")
    print("child level, blocked per category: "
          + ", ".join(f"{c} {n}/{t}" for c, (n, t) in categories.items()))
    print(f"offline check: p50 {data['check_ms']['p50']:.1f} ms, p95 "
          f"{data['check_ms']['p95']:.1f} ms; one short reply of the bundled model "
          f"{data['reply_s']:.2f} s (a check is {data['check_share_of_reply']:.1%} of it)")
    print(f"wrote {save('safety.json', data)}")


if __name__ == "__main__":
    main()
