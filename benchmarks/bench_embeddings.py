"""The local embedder against sentence-transformers, the library it replaced:
cold load time (each in a fresh process, imports included) and chunks/s on
the same 300 chunks of ~1,000 characters, in one run.

sentence-transformers (and torch) come from the test extra; the app itself
runs without them.

    python benchmarks/bench_embeddings.py [--chunks 300]
"""

from __future__ import annotations

import argparse
import json
import random
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=300)
    parser.add_argument("--child", choices=["onnx", "sentence-transformers"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.chunks)))
        return
    rows = {}
    for kind in ("sentence-transformers", "onnx"):
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--chunks",
                              str(args.chunks)], capture_output=True, text=True, check=True)
        rows[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    for kind, r in rows.items():
        print(f"{kind:22} load {r['load_s']:5.2f} s (cold, imports included)   "
              f"{r['chunks_per_s']:5.1f} chunks/s")
    ratio = rows["onnx"]["chunks_per_s"] / rows["sentence-transformers"]["chunks_per_s"]
    print(f"chunks/s, ONNX / sentence-transformers: {ratio:.2f}")
    result = {"chunks": args.chunks, "rows": rows, "speed_ratio": ratio}
    save("embeddings.json", result)


if __name__ == "__main__":
    main()
