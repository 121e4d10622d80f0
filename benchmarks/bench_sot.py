"""Skeleton-of-thought: parallel point expansion (``batch``) against one by one.

One run on the bundled local model: a skeleton, then its points expanded with
``chain.batch`` (parallel) and with a loop (sequential), interleaved over
``--runs``. Prints the median wall times and their ratio.

The default local runtime decodes one request per core at once (xllamacpp
starts a server per decoding core on demand), so on 2 cores the ratio falls
towards 1/2; llama-cpp-python runs one request at a time, and its ratio stays
near 1. On a server with room for every point (vLLM, OpenAI), the parallel
expansion costs about as long as the longest point, and the ratio falls
towards 1 / number of points.

    python benchmarks/bench_sot.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from langchain_core.output_parsers import StrOutputParser

from llmapp.chat import to_langchain
from llmapp.prompting.chains import EXPAND
from llmapp.providers.local import ChatLocalLlama

QUESTION = "How do I start running?"
SKELETON = "1. Get good shoes\n2. Start with short runs\n3. Add rest days\n4. Track progress"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    chain = ChatLocalLlama(temperature=0, max_tokens=args.max_tokens) | StrOutputParser()
    points = [line.split(". ", 1)[1] for line in SKELETON.splitlines()]
    prompts = [to_langchain([{"role": "user", "content": EXPAND.format(
        question=QUESTION, skeleton=SKELETON, n=i, point=p)}]) for i, p in enumerate(points, 1)]
    chain.invoke(prompts[0])  # load the model
    parallel, sequential = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        chain.batch(prompts, config={"max_concurrency": len(prompts)})
        parallel.append(time.perf_counter() - start)
        start = time.perf_counter()
        for p in prompts:
            chain.invoke(p)
        sequential.append(time.perf_counter() - start)
    p, s = statistics.median(parallel), statistics.median(sequential)
    print(f"{len(points)} points, {args.max_tokens} max tokens each, local model")
    print(f"parallel (batch): {p:.2f} s   sequential: {s:.2f} s   ratio {p / s:.2f}")
    print("The local model decodes one point per core at once (about 1/2 on 2 cores); a "
          f"server with room for every point would approach 1/{len(points)} = "
          f"{1 / len(points):.2f}.")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "sot.json").write_text(json.dumps({"parallel_s": p, "sequential_s": s,
                                              "ratio": p / s, "points": len(points)}, indent=2))


if __name__ == "__main__":
    main()
