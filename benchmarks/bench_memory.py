"""Token-budget trimming cost per turn on a 1,000-turn history.

Three ways to pick the newest messages that fit ``window - max_tokens``, on the
same history and tiktoken counter (o200k_base), in one run:

* ``recount-all``: the loop of the OpenAI cookbook's ``num_tokens_from_messages``
  recipe ("How to count tokens with tiktoken"), as tutorials use it to trim
  history: count every message, drop the oldest, count them all again, until
  the rest fits (llmapp.memory.recount_all_trim);
* ``count-once``: count every message once per turn, then walk back;
* ``llmapp``: :class:`llmapp.memory.Memory` ("token_budget"), whose cache keeps
  each message's count, so a turn counts only its new messages.

Each turn appends a user and an assistant message. Target (issue #5): llmapp at
least 50x faster per turn than the recount-all loop.

    python benchmarks/bench_memory.py [--turns 1000] [--measure 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from llmapp.memory import Memory, recount_all_trim
from llmapp.tokens import TiktokenCounter

WORDS = ("model prompt token window budget memory turn message answer question context "
         "retrieval chunk embedding agent tool call stream latency cost").split()


def make_history(turns: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    history = []
    for i in range(turns):
        for role in ("user", "assistant"):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 60)))
            history.append({"role": role, "content": f"{i} {text}"})
    return history


def count_once_trim(history, counter, window, max_tokens):
    counts = [counter.count_message(m) for m in history]
    used, keep = 0, 0
    for c in reversed(counts):
        if used + c > window - max_tokens:
            break
        used += c
        keep += 1
    return history[len(history) - keep:]


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--measure", type=int, default=3, help="turns timed for each method")
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--max-tokens", type=int, default=2048)
    args = parser.parse_args()
    counter = TiktokenCounter("gpt-4.1-mini")
    history = make_history(args.turns)
    memory = Memory("token_budget")
    # warm llmapp's cache on the history so far, as a live conversation would have
    memory.select("", history + [{"role": "user", "content": "warm"}], counter,
                  args.window, args.max_tokens)
    new_turns = make_history(args.measure, seed=1)
    results = {"recount-all": [], "count-once": [], "llmapp": []}
    for i in range(args.measure):
        history += new_turns[2 * i: 2 * i + 2]
        asked = history + [{"role": "user", "content": f"question {i}"}]
        results["recount-all"].append(timed(lambda a=asked: recount_all_trim(
            a, counter, args.window, args.max_tokens), 1))
        results["count-once"].append(timed(lambda a=asked: count_once_trim(
            a, counter, args.window, args.max_tokens), 3))
        results["llmapp"].append(timed(lambda a=asked: memory.select(
            "", a, counter, args.window, args.max_tokens), 5))
        # Same answer both ways: the recount loop's budget for history is what is left
        # after the new question (and the reply priming) is counted.
        fixed = counter.count_messages([asked[-1]])
        ours = memory.select("", asked, counter, args.window, args.max_tokens).messages[:-1]
        theirs = recount_all_trim(asked[:-1], counter, args.window - fixed, args.max_tokens)
        if ours != theirs:
            raise SystemExit("llmapp and the recount-all loop kept different messages")
    med = {k: statistics.median(v) * 1000 for k, v in results.items()}
    print(f"history: {args.turns} turns ({len(history)} messages), window {args.window}, "
          f"max_tokens {args.max_tokens}")
    for name, ms in med.items():
        print(f"{name:11} {ms:10.2f} ms per turn")
    ratio = med["recount-all"] / med["llmapp"]
    print(f"recount-all / llmapp: {ratio:.0f}x (target >= 50x: "
          f"{'met' if ratio >= 50 else 'MISSED'})")
    print(f"count-once / llmapp: {med['count-once'] / med['llmapp']:.1f}x")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "memory.json").write_text(json.dumps({"ms_per_turn": med,
                                                 "recount_all_over_llmapp": ratio,
                                                 "turns": args.turns}, indent=2))


if __name__ == "__main__":
    main()
