"""The response cache, measured: how precise semantic hits are, and how much
faster a hit is than the bundled model, side by side in one run.

1. **Precision and recall** of semantic hits on question pairs (paraphrases
   and hard negatives: the same words with another city, verb or number):
   ``tests/data/cache_pairs.jsonl`` (the rules were fitted on it) and
   ``cache_pairs_heldout.jsonl`` (written after them). For each pair the first
   question is cached and the second looked up, at several thresholds, with
   and without :func:`llmapp.cache.same_request`'s word check.
2. **Speed**: the same prompts answered by the bundled model, then from the
   cache (exact and semantic hits), in one warm process. Prints the ratio of
   the model's time to the hit's.

    python benchmarks/bench_cache.py [--prompts 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from results_file import save

from llmapp import config
from llmapp.cache import CacheUse, ResponseCache, same_request
from llmapp.chat import ChatStore, start_reply
from llmapp.providers import GenerationParams
from llmapp.rag.embeddings import LocalEmbeddings
from llmapp.settings import resolve
from llmapp.storage import Database

ROOT = Path(__file__).resolve().parents[1]
SETS = ("cache_pairs.jsonl", "cache_pairs_heldout.jsonl")
THRESHOLDS = (0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
PROMPTS = [
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("Explain what a vector database is.", "What is a vector database?"),
    ("How do I reverse a list in Python?", "How can I reverse a Python list?"),
    ("What is the speed of light?", "what is the speed of light"),
    ("Why is the sky blue?", "What makes the sky blue?"),
    ("Give me a recipe for pancakes.", "Can you give me a pancake recipe?"),
    ("What is photosynthesis?", "Can you explain photosynthesis?"),
    ("How many continents are there?", "How many continents does the Earth have?"),
]


def scores(rows: list[dict], sims: np.ndarray, threshold: float, check: bool) -> dict:
    hits = [bool(s >= threshold) and (not check or same_request(r["a"], r["b"]))
            for r, s in zip(rows, sims, strict=True)]
    true_hits = sum(h and r["same"] for h, r in zip(hits, rows, strict=True))
    return {"threshold": threshold, "word_check": check, "hits": sum(hits),
            "precision": round(true_hits / max(sum(hits), 1), 3),
            "recall": round(true_hits / sum(r["same"] for r in rows), 3)}


def quality() -> dict:
    embedder = LocalEmbeddings()
    out = {}
    for name in SETS:
        rows = [json.loads(line) for line in (ROOT / "tests" / "data" / name).read_text()
                .splitlines()]
        a = np.array(embedder.embed_documents([r["a"] for r in rows]))
        b = np.array(embedder.embed_documents([r["b"] for r in rows]))
        sims = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        out[name] = {"pairs": len(rows), "paraphrases": sum(r["same"] for r in rows),
                     "rows": [scores(rows, sims, t, check) for check in (False, True)
                              for t in THRESHOLDS]}
    return out


def speed(prompts: int, max_tokens: int) -> dict:
    settings = resolve(environ={}, env_file={})
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    folder = tempfile.mkdtemp()
    use = CacheUse(ResponseCache(Database(f"{folder}/cache.sqlite3")), "semantic", "bench")

    def ask(question: str):
        store = ChatStore()
        store.add_user(question)
        reply = start_reply(store, settings, params, config.DEFAULT_SYSTEM_PROMPT, cache=use)
        reply.stream.consume()
        return reply.stream.stats

    ask("Warm up the model.")
    use.cache.embedder.embed_query("Warm up the embedder.")
    runs = {"model": [], "exact": [], "semantic": []}
    for question, paraphrase in PROMPTS[:prompts]:
        first = ask(question)
        assert first.cache == "miss", first.cache
        runs["model"].append(first.total_s)
        exact = ask(question)
        assert exact.cache == "hit-exact", exact.cache
        runs["exact"].append(exact.total_s)
        close = ask(paraphrase)
        if close.cache == "hit-semantic":
            runs["semantic"].append(close.total_s)
    median = {k: statistics.median(v) if v else None for k, v in runs.items()}
    return {"prompts": prompts, "max_tokens": max_tokens, "median_s": median,
            "semantic_hits": len(runs["semantic"]),
            "ratio_exact": median["model"] / median["exact"],
            "ratio_semantic": (median["model"] / median["semantic"]
                               if median["semantic"] else None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    data = {"quality": quality(), "speed": speed(args.prompts, args.max_tokens),
            "default_threshold": config.CACHE_THRESHOLD}
    for name, result in data["quality"].items():
        print(f"{name}: {result['pairs']} pairs, {result['paraphrases']} paraphrases")
        print("  threshold  word check  hits  precision  recall")
        for r in result["rows"]:
            print(f"  {r['threshold']:9.2f}  {'yes' if r['word_check'] else 'no':>10}"
                  f"  {r['hits']:4d}  {r['precision']:9.3f}  {r['recall']:6.3f}")
    s = data["speed"]
    m = s["median_s"]
    print(f"median over {s['prompts']} prompts: model {m['model']:.3f} s, exact hit "
          f"{m['exact'] * 1000:.1f} ms, semantic hit "
          + (f"{m['semantic'] * 1000:.1f} ms" if m["semantic"] else "none")
          + f" ({s['semantic_hits']} hits)")
    print(f"speed-up of a hit over the model: exact {s['ratio_exact']:.0f}x"
          + (f", semantic {s['ratio_semantic']:.0f}x" if s["ratio_semantic"] else ""))
    print(f"wrote {save('cache.json', data)}")


if __name__ == "__main__":
    main()
