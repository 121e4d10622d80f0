"""Streaming overhead: the local runtime's raw stream against llmapp's.

"raw" reads the runtime's own token stream (llama.cpp through xllamacpp or
llama-cpp-python); "llmapp" goes through everything a page uses: the chat
store, the token budget, the LangChain chat model and ``ReplyStream``. Same
runtime, same prompt, greedy decoding, runs interleaved (raw, llmapp, raw,
...) so that both see the same machine load and prompt cache. Prints median
TTFT and tokens/s for each, and their ratio.

Targets (issue #2): tokens/s ratio llmapp/raw >= 0.95; TTFT overhead <= 20 ms.

    python benchmarks/bench_streaming.py [--runs 7] [--max-tokens 128] [--runtime xllamacpp]
"""

from __future__ import annotations

import argparse
import statistics
import time

from results_file import save

from llmapp.chat import ChatStore, start_reply
from llmapp.providers import GenerationParams
from llmapp.providers.local import get_runtime
from llmapp.providers.runtime import RUNTIMES, Sampling
from llmapp.settings import resolve

SYSTEM = "You are a helpful assistant."
PROMPT = "Explain in a few paragraphs how a bicycle works."


def raw_run(runtime, max_tokens: int) -> dict:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    start = time.perf_counter()
    first = last = None
    parts = []
    tokens = 0
    sampling = Sampling(temperature=0, top_p=1.0, max_tokens=max_tokens)
    for delta in runtime.stream(messages, sampling):
        if delta.text:
            now = time.perf_counter()
            first = first or now
            last = now
            parts.append(delta.text)
        tokens = delta.completion_tokens or tokens
    return {"ttft_s": first - start, "tokens_per_s": (tokens - 1) / (last - first),
            "tokens": tokens}


def llmapp_run(settings, max_tokens: int) -> dict:
    store = ChatStore()
    store.add_user(PROMPT)
    start = time.perf_counter()  # includes token counting and budget, as a user sees it
    reply = start_reply(store, settings, GenerationParams(temperature=0, top_p=1.0,
                                                          max_tokens=max_tokens), SYSTEM)
    reply.stream._clock = time.perf_counter
    first = None
    for _ in reply.stream:
        first = first or time.perf_counter()
    stats = reply.stream.stats
    return {"ttft_s": first - start, "tokens_per_s": stats.tokens_per_s,
            "tokens": stats.completion_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--runtime", choices=RUNTIMES, default=RUNTIMES[0])
    args = parser.parse_args()
    settings = resolve(environ={"LLMAPP_LOCAL_RUNTIME": args.runtime}, env_file={})
    runtime = get_runtime(runtime=args.runtime)
    raw_run(runtime, 8), llmapp_run(settings, 8)  # warm up both paths
    raw, ours = [], []
    for _ in range(args.runs):
        raw.append(raw_run(runtime, args.max_tokens))
        ours.append(llmapp_run(settings, args.max_tokens))

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    result = {
        "runs": args.runs, "max_tokens": args.max_tokens, "runtime": args.runtime,
        "raw": {"ttft_ms": med(raw, "ttft_s") * 1000, "tokens_per_s": med(raw, "tokens_per_s"),
                "tokens": med(raw, "tokens")},
        "llmapp": {"ttft_ms": med(ours, "ttft_s") * 1000,
                   "tokens_per_s": med(ours, "tokens_per_s"), "tokens": med(ours, "tokens")},
    }
    result["tokens_per_s_ratio"] = result["llmapp"]["tokens_per_s"] / result["raw"]["tokens_per_s"]
    result["ttft_overhead_ms"] = result["llmapp"]["ttft_ms"] - result["raw"]["ttft_ms"]
    print(f"{'':8} {'TTFT ms':>9} {'tokens/s':>9} {'tokens':>7}")
    for name in ("raw", "llmapp"):
        r = result[name]
        print(f"{name:8} {r['ttft_ms']:9.1f} {r['tokens_per_s']:9.1f} {r['tokens']:7.0f}")
    ok_rate = result["tokens_per_s_ratio"] >= 0.95
    ok_ttft = result["ttft_overhead_ms"] <= 20
    print(f"tokens/s ratio llmapp/raw: {result['tokens_per_s_ratio']:.3f} (target >= 0.95: "
          f"{'met' if ok_rate else 'MISSED'})")
    print(f"TTFT overhead: {result['ttft_overhead_ms']:+.1f} ms (target <= 20 ms: "
          f"{'met' if ok_ttft else 'MISSED'})")
    save("streaming.json", result)


if __name__ == "__main__":
    main()
