"""The local embedder against sentence-transformers, the library it replaced:
cold load time (each in a fresh process, imports included) and chunks/s on
the same 300 chunks of ~1,000 characters, in one run.

It also measures the ceiling: the floating-point work of one chunk through
all-MiniLM-L6-v2 (from the model's shapes: 6 layers, width 384, feed-forward
1,536; a multiply-add counts as 2 operations) against the rate at which this
CPU multiplies fp32 matrices of the model's own shapes (numpy, same thread
count). No fp32 runtime can embed faster than that ceiling.

sentence-transformers (and torch) come from the test extra; the app itself
runs without them.

Each embedder runs ``--rounds`` times, alternating, each time in a fresh
process; the medians are compared (one run of each moved the ratio by +-0.06
here).

    python benchmarks/bench_embeddings.py [--chunks 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_file import save

ROOT = Path(__file__).resolve().parents[1]


def corpus(n: int) -> list[str]:
    """``n`` chunks of ~1,000 characters cut from this repository's README."""
    words = (ROOT / "README.md").read_text().split()
    rng = random.Random(0)
    out = []
    for _ in range(n):
        start = rng.randrange(len(words) - 300)
        out.append(" ".join(words[start:start + 250])[:1000])
    return out


def child(kind: str, n: int) -> dict:
    started = time.perf_counter()
    if kind == "onnx":
        from llmapp.rag.embeddings import LocalEmbeddings

        embedder = LocalEmbeddings()
        embedder.embed_query("warm up")  # loads the model
        encode = embedder.embed_documents
    else:
        import os

        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        from llmapp.rag.embeddings import local_model_dir

        model = SentenceTransformer(str(local_model_dir()), device="cpu")
        model.encode(["warm up"])

        def encode(texts):
            return model.encode(texts, batch_size=32, normalize_embeddings=True).tolist()
    load_s = time.perf_counter() - started
    texts = corpus(n)
    started = time.perf_counter()
    vectors = encode(texts)
    return {"load_s": load_s, "chunks_per_s": n / (time.perf_counter() - started),
            "dimension": len(vectors[0])}


LAYERS, WIDTH, FEED_FORWARD = 6, 384, 1536
"""all-MiniLM-L6-v2's shapes, from its ``config.json``."""


def chunk_flops(tokens: int) -> float:
    """Floating-point operations of one text of ``tokens`` tokens through the
    encoder: per layer, the Q/K/V/output projections (4 x width^2 per token),
    the feed-forward pair (2 x width x feed_forward per token) and attention's
    two tokens x tokens x width products; x2 for multiply-add."""
    per_layer = tokens * (4 * WIDTH**2 + 2 * WIDTH * FEED_FORWARD) + 2 * tokens**2 * WIDTH
    return 2.0 * LAYERS * per_layer


def ceiling(n: int) -> dict:
    """Tokens per chunk and this CPU's fp32 matrix-multiply rate (GFLOP/s) at
    the feed-forward's shape, a batch of 8 chunks: (8 x tokens, 384) @ (384, 1536)."""
    import numpy as np

    from llmapp.rag.embeddings import local_model_dir
    from llmapp.rag.onnx_minilm import MAX_SEQ_LENGTH
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(local_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_SEQ_LENGTH)
    tokens = [len(e.ids) for e in tokenizer.encode_batch(corpus(n))]
    a = np.random.default_rng(0).standard_normal((8 * MAX_SEQ_LENGTH, WIDTH), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((WIDTH, FEED_FORWARD), dtype=np.float32)
    for _ in range(5):
        a @ b
    rounds = 100
    started = time.perf_counter()
    for _ in range(rounds):
        a @ b
    seconds = time.perf_counter() - started
    return {"mean_tokens": sum(tokens) / len(tokens),
            "flops_per_chunk": sum(chunk_flops(t) for t in tokens) / len(tokens),
            "matmul_gflops": 2.0 * a.shape[0] * WIDTH * FEED_FORWARD * rounds / seconds / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["onnx", "sentence-transformers", "ceiling"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ceiling":
        print(json.dumps(ceiling(args.chunks)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.chunks)))
        return
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for kind in ("sentence-transformers", "onnx", "ceiling"):
            out = subprocess.run([sys.executable, __file__, "--child", kind, "--chunks",
                                  str(args.chunks)], capture_output=True, text=True, check=True)
            runs.setdefault(kind, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = {kind: {key: statistics.median(r[key] for r in results) for key in results[0]}
            for kind, results in runs.items()}
    top = rows.pop("ceiling")
    top["chunks_per_s"] = top["matmul_gflops"] * 1e9 / top["flops_per_chunk"]
    for kind, r in rows.items():
        r["gflops"] = r["chunks_per_s"] * top["flops_per_chunk"] / 1e9
        print(f"{kind:22} load {r['load_s']:5.2f} s (cold, imports included)   "
              f"{r['chunks_per_s']:5.1f} chunks/s  {r['gflops']:6.1f} GFLOP/s "
              f"({r['chunks_per_s'] / top['chunks_per_s']:.0%} of the ceiling)")
    print(f"{'ceiling':22} {top['mean_tokens']:.0f} tokens and {top['flops_per_chunk'] / 1e9:.2f} "
          f"GFLOP per chunk; fp32 matmul {top['matmul_gflops']:.1f} GFLOP/s here: "
          f"{top['chunks_per_s']:.1f} chunks/s at most")
    ratio = rows["onnx"]["chunks_per_s"] / rows["sentence-transformers"]["chunks_per_s"]
    best = top["chunks_per_s"] / rows["sentence-transformers"]["chunks_per_s"]
    print(f"chunks/s, ONNX / sentence-transformers, medians of {args.rounds}: {ratio:.2f} "
          f"(an fp32 runtime at the ceiling would be {best:.2f}); each round: " + ", ".join(
              f"{o['chunks_per_s'] / t['chunks_per_s']:.2f}"
              for o, t in zip(runs["onnx"], runs["sentence-transformers"], strict=True)))
    result = {"chunks": args.chunks, "rounds": args.rounds, "rows": rows, "ceiling": top,
              "speed_ratio": ratio, "ceiling_ratio": best}
    save("embeddings.json", result)


if __name__ == "__main__":
    main()
