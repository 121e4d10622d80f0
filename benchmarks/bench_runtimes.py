"""The local runtimes side by side: load, RSS, TTFT, tokens/s, valid JSON, and
4 concurrent sessions.

Variants, each in its own process (so RSS is its own), one after the other:

* ``llama-cpp, lock``: the baseline, llmapp before: one ``llama_cpp.Llama``
  behind a lock, each session generating from its own thread (as Streamlit
  sessions and reruns do);
* ``llama-cpp``: llmapp's llama-cpp-python runtime, all generation on one
  long-lived worker thread;
* ``xllamacpp``: llmapp's default runtime, llama.cpp's server in-process,
  parallel slots.

Same model (the bundled SmolLM2), greedy decoding. The baseline runs with
its own default threads then (every core, ``os.cpu_count()``), llmapp's
runtimes with llmapp's default now (one thread less than the cores, and
xllamacpp with a server per decoding core), unless ``--threads`` sets one
count for all. Prints a table and the ratio of 4-session aggregate tokens/s
to the baseline's.

    python benchmarks/bench_runtimes.py [--max-tokens 256] [--json-prompts 20]
        [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from results_file import save

VARIANTS = ("llama-cpp, lock", "llama-cpp", "xllamacpp")
PROMPT = "Write a long essay about the sea."
SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 40}, "email": {"type": "string", "maxLength": 60},
    "company": {"type": "string", "maxLength": 40}}, "required": ["name", "email", "company"]}
PEOPLE = ["Jane Doe", "Bob Stone", "Ana Lima", "Li Wei", "Omar Haddad", "Eva Novak", "Tom Berg",
          "Sara Cole", "Ivan Petrov", "Mia Rossi"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Baseline:
    """llmapp before: a ``Llama`` behind a lock, called from the caller's thread."""

    def __init__(self, path: Path, threads: int) -> None:
        from llama_cpp import Llama

        self.llama = Llama(model_path=str(path), n_ctx=4096, n_threads=threads,
                           n_threads_batch=threads, verbose=False)
        self.lock = threading.Lock()

    def stream(self, messages, max_tokens, schema=None):
        args = {"response_format": {"type": "json_object", "schema": schema}} if schema else {}
        with self.lock:
            for event in self.llama.create_chat_completion(
                    messages=messages, stream=True, temperature=0, max_tokens=max_tokens,
                    repeat_penalty=1.1, **args):
                text = event["choices"][0].get("delta", {}).get("content")
                if text:
                    yield text


class Llmapp:
    """One of llmapp's runtimes, through its interface."""

    def __init__(self, name: str, threads: int) -> None:
        from llmapp.providers.local import get_runtime

        self.runtime = get_runtime(runtime=name, n_threads=threads)

    def stream(self, messages, max_tokens, schema=None):
        from llmapp.providers.runtime import Sampling

        for delta in self.runtime.stream(messages, Sampling(temperature=0, top_p=1.0,
                                                            max_tokens=max_tokens), schema):
            if delta.text:
                yield delta.text


def timed(engine, messages, max_tokens, start=None, schema=None) -> dict:
    start = start or time.perf_counter()
    first = last = None
    parts = []
    for text in engine.stream(messages, max_tokens, schema):
        now = time.perf_counter()
        first = first or now
        last = now
        parts.append(text)
    return {"ttft_s": first - start, "end": last, "start": start, "text": "".join(parts),
            "pieces": len(parts)}


def child(variant: str, max_tokens: int, json_prompts: int, threads: int) -> dict:
    from llmapp.providers.local import bundled_model_path

    started = time.perf_counter()
    engine = Baseline(bundled_model_path(), threads) if variant == "llama-cpp, lock" \
        else Llmapp(variant, threads)
    load_s = time.perf_counter() - started
    messages = [{"role": "user", "content": PROMPT}]
    timed(engine, messages, 8)  # warm up
    single = [timed(engine, messages, max_tokens) for _ in range(3)]
    tokens = single[0]["pieces"]
    decode = statistics.median((r["pieces"] - 1) / (r["end"] - r["start"] - r["ttft_s"])
                               for r in single)
    valid = 0
    for i in range(json_prompts):
        person = PEOPLE[i % len(PEOPLE)]
        ask = [{"role": "user", "content": f"Contact: {person}, {person.split()[0].lower()}"
                                           f"@example.com, works at Acme {i}. Give the JSON."}]
        try:
            data = json.loads(timed(engine, ask, 160, schema=SCHEMA)["text"])
            valid += isinstance(data, dict) and set(SCHEMA["required"]) <= set(data)
        except json.JSONDecodeError:
            pass
    results: list[dict] = []
    barrier = threading.Barrier(4)

    def session() -> None:  # a new thread per session, as Streamlit reruns are
        barrier.wait()
        results.append(timed(engine, messages, max_tokens))

    workers = [threading.Thread(target=session) for _ in range(4)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = max(r["end"] for r in results) - t0
    return {"variant": variant, "load_s": load_s, "rss_mb": rss_mb(),
            "ttft_s": statistics.median(r["ttft_s"] for r in single), "tokens": tokens,
            "tokens_per_s": decode, "json_valid": valid, "json_prompts": json_prompts,
            "concurrent_tokens_per_s": sum(r["pieces"] for r in results) / wall,
            "concurrent_first_token_s": sorted(round(r["ttft_s"], 2) for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--json-prompts", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0,
                        help="one thread count for every variant; 0: each its own default")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.max_tokens, args.json_prompts, args.threads)))
        return
    from llmapp.cpus import available_cpus, default_threads

    rows = []
    for variant in args.variants:
        threads = args.threads or (available_cpus().cores if variant == "llama-cpp, lock"
                                   else default_threads(0).cores)
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--max-tokens",
                              str(args.max_tokens), "--json-prompts", str(args.json_prompts),
                              "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "threads": threads})
    print(f"{args.max_tokens} tokens per reply, greedy")
    print(f"{'runtime':16} {'threads':>7} {'load s':>6} {'RSS MB':>6} {'TTFT s':>6} {'tok/s':>6} "
          f"{'JSON ok':>8} {'4 at once tok/s':>15}  first token of each (s)")
    for r in rows:
        print(f"{r['variant']:16} {r['threads']:7} {r['load_s']:6.2f} {r['rss_mb']:6.0f} "
              f"{r['ttft_s']:6.2f} {r['tokens_per_s']:6.1f} {r['json_valid']:>4}/"
              f"{r['json_prompts']:<3} {r['concurrent_tokens_per_s']:15.1f}  "
              f"{r['concurrent_first_token_s']}")
    by = {r["variant"]: r for r in rows}
    result = {"threads": args.threads or "defaults", "max_tokens": args.max_tokens,
              "rows": rows}
    if "llama-cpp, lock" in by:
        base = by["llama-cpp, lock"]["concurrent_tokens_per_s"]
        result["concurrent_ratio"] = {name: r["concurrent_tokens_per_s"] / base
                                      for name, r in by.items()}
        for name, ratio in result["concurrent_ratio"].items():
            print(f"4 sessions, aggregate tokens/s vs llama-cpp behind a lock: {name}: "
                  f"{ratio:.2f}x")
    save("runtimes.json", result)


if __name__ == "__main__":
    main()
