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

Then stage 1's trimming, :func:`llmapp.tokens.fit_to_window`, as ``llmapp
serve`` runs it on a long history a client sends, with the bundled model's own
counter (its chat template and tokenizer, in the llama.cpp server): the
recounting loop it replaced (:func:`llmapp.tokens.recount_fit_to_window`,
quadratic) on ``--fit-baseline`` messages against the linear fit on the same
messages, and the linear fit on ``--fit-messages``; short turns ("Question
12: what is 12 plus one?"), window 2,048 (the bundled model's), max_tokens 512.
Targets (issue 28): the 10,001 messages fitted in under 1 s, and at least 10x
faster than the loop on the same messages (501 by default: the loop takes
11-17 s on them, 245 s on 2,001).

    python benchmarks/bench_memory.py [--turns 1000] [--measure 3]
                                      [--fit-messages 10001] [--fit-baseline 501]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from llmapp.memory import Memory, recount_all_trim
from llmapp.tokens import TiktokenCounter, fit_to_window, recount_fit_to_window

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


def fit_figures(messages: int, baseline: int) -> dict:
    """Seconds to fit histories of ``baseline`` and ``messages`` messages into
    the bundled model's window (max_tokens 512), both ways where affordable."""
    from llmapp import config
    from llmapp.providers import LocalProvider
    from llmapp.settings import resolve

    counter = LocalProvider().token_counter(resolve(environ={}, env_file={}))
    window, max_tokens = config.LOCAL_N_CTX, 512

    def asked(n: int) -> list[dict]:
        history = []
        for i in range(n // 2):
            history += [{"role": "user", "content": f"Question {i}: what is {i} plus one?"},
                        {"role": "assistant", "content": f"{i} plus one is {i + 1}."}]
        return history[: n - 1] + [{"role": "user", "content": "And what is 2 plus 2?"}]

    fit_to_window(asked(64), counter, window, max_tokens)  # warm the runtime
    small, large = asked(baseline), asked(messages)
    linear_small = timed(lambda: fit_to_window(small, counter, window, max_tokens), 3)
    recount_small = timed(lambda: recount_fit_to_window(small, counter, window, max_tokens), 1)
    if fit_to_window(small, counter, window, max_tokens) != recount_fit_to_window(
            small, counter, window, max_tokens):
        raise SystemExit("the linear fit and the recounting loop kept different messages")
    linear_large = timed(lambda: fit_to_window(large, counter, window, max_tokens), 3)
    kept = len(fit_to_window(large, counter, window, max_tokens).messages)
    return {"counter": counter.name, "window": window, "max_tokens": max_tokens,
            "baseline_messages": baseline, "messages": messages, "kept": kept,
            "recount_s": recount_small, "linear_s": linear_small,
            "recount_over_linear": recount_small / linear_small,
            "linear_large_s": linear_large}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--measure", type=int, default=3, help="turns timed for each method")
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--fit-messages", type=int, default=10001,
                        help="messages of the long history fitted to the window")
    parser.add_argument("--fit-baseline", type=int, default=501,
                        help="messages the recounting loop is timed on")
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
    fit = fit_figures(args.fit_messages, args.fit_baseline)
    print(f"fit_to_window, {fit['counter']}, window {fit['window']}, max_tokens "
          f"{fit['max_tokens']}:")
    print(f"  {fit['baseline_messages']:,} messages: recounting loop {fit['recount_s']:.2f} s, "
          f"linear {fit['linear_s'] * 1000:.0f} ms: {fit['recount_over_linear']:.0f}x (target "
          f">= 10x: {'met' if fit['recount_over_linear'] >= 10 else 'MISSED'})")
    print(f"  {fit['messages']:,} messages: linear {fit['linear_large_s'] * 1000:.0f} ms, "
          f"{fit['kept']} kept (target < 1 s: "
          f"{'met' if fit['linear_large_s'] < 1 else 'MISSED'})")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "memory.json").write_text(json.dumps({"ms_per_turn": med,
                                                 "recount_all_over_llmapp": ratio,
                                                 "turns": args.turns, "fit": fit}, indent=2))


if __name__ == "__main__":
    main()
