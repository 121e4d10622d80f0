"""``llmapp serve`` under load against llama.cpp's own server, same model.

The baseline is llama.cpp's OpenAI-compatible server as llmapp starts it
(xllamacpp, the same KV cache and threads: the server inside
:class:`llmapp.providers.xllama.XllamaRuntime`), reached directly, as one
server with 2 slots: what a user would run with ``llama-server -np 2``, and
how llmapp ran it before it started a server per decoding core. Then the
same requests go through ``llmapp serve`` (FastAPI, the chat store, the token
budget, the safety filter on the reply; the response cache off, so that
every request reaches the model), whose runtime starts a second server when
requests overlap. One runs at a time, in the same run.

N streaming requests start at once, each a different prompt, greedy, with
``max_tokens`` each. Prints p50 and p95 TTFT (request to first content chunk),
total throughput (completion tokens of all requests / wall time), and the
ratios llmapp / baseline.

    python benchmarks/bench_api.py [--requests 20] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from results_file import save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import free_port, wait_for_http  # noqa: E402

TOPICS = ["bicycles", "tea", "rivers", "owls", "bridges", "violins", "glaciers", "bread",
          "comets", "lighthouses", "maps", "bees", "trains", "volcanoes", "kites", "coral",
          "clocks", "deserts", "paper", "whales", "salt", "windmills", "moss", "ink"]

BASELINE = """
import sys, threading
from llmapp.cpus import default_threads
from llmapp.providers.local import bundled_model_path
from llmapp.providers.xllama import XllamaRuntime
from llmapp import config
runtime = XllamaRuntime.load(bundled_model_path(), config.LOCAL_N_CTX, default_threads(0),
                             parallel=2, servers=1)
server = runtime._servers[0]
print(server.url, server.key, flush=True)
threading.Event().wait()
"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def one(client: openai.OpenAI, model: str, topic: str, max_tokens: int) -> dict:
    start = time.perf_counter()
    first = None
    tokens = 0
    for chunk in client.chat.completions.create(
            model=model, stream=True, max_tokens=max_tokens, temperature=0,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"Write two sentences about {topic}."}]):
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return {"ttft_s": (first or time.perf_counter()) - start, "tokens": tokens,
            "end": time.perf_counter()}


def load(base_url: str, key: str, model: str, requests: int, max_tokens: int) -> dict:
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=600)
    one(client, model, "warming up", 4)
    start = time.perf_counter()
    with ThreadPoolExecutor(requests) as pool:
        rows = list(pool.map(lambda t: one(client, model, t, max_tokens),
                             (TOPICS * 4)[:requests]))
    wall = max(r["end"] for r in rows) - start
    ttfts = [r["ttft_s"] for r in rows]
    tokens = sum(r["tokens"] for r in rows)
    return {"requests": requests, "ttft_p50_s": percentile(ttfts, 50),
            "ttft_p95_s": percentile(ttfts, 95), "tokens": tokens, "wall_s": wall,
            "tokens_per_s": tokens / wall}


def serve(args: list[str], env: dict[str, str], ready: str) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    if ready:
        wait_for_http(ready, 120, proc)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_api_"))
    env = {**os.environ, "LLMAPP_CHROMA_PATH": str(tmp / "chroma"), "LLMAPP_CACHE": "off",
           "LLMAPP_DATABASE_URL": f"sqlite:///{tmp}/llmapp.sqlite3",
           "LLMAPP_ENV_FILE": str(tmp / "absent.env")}

    proc = serve([sys.executable, "-c", BASELINE], env, "")
    try:
        url, key = proc.stdout.readline().split()
        base = load(f"{url}/v1", key, "smollm2", args.requests, args.max_tokens)
    finally:
        proc.terminate()
        proc.wait(20)

    port = free_port()
    proc = serve([sys.executable, "-m", "llmapp", "serve", "--port", str(port),
                  "--log-level", "warning"], env, f"http://127.0.0.1:{port}/health")
    try:
        ours = load(f"http://127.0.0.1:{port}/v1", "unused", "llmapp-chat", args.requests,
                    args.max_tokens)
    finally:
        proc.terminate()
        proc.wait(20)

    result = {"baseline": base, "llmapp": ours,
              "ttft_p50_ratio": ours["ttft_p50_s"] / base["ttft_p50_s"],
              "ttft_p95_ratio": ours["ttft_p95_s"] / base["ttft_p95_s"],
              "tokens_per_s_ratio": ours["tokens_per_s"] / base["tokens_per_s"]}
    for name, row in (("llama.cpp server", base), ("llmapp serve", ours)):
        print(f"{name:<17} {row['requests']} streams: TTFT p50 {row['ttft_p50_s']:.2f} s, "
              f"p95 {row['ttft_p95_s']:.2f} s; {row['tokens']} tokens in {row['wall_s']:.1f} s "
              f"= {row['tokens_per_s']:.1f} tokens/s")
    print(f"llmapp / llama.cpp: TTFT p50 {result['ttft_p50_ratio']:.2f}x, "
          f"p95 {result['ttft_p95_ratio']:.2f}x, tokens/s {result['tokens_per_s_ratio']:.2f}x")
    save("api.json", result)


if __name__ == "__main__":
    main()
