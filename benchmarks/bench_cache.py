"""The response cache, measured: how precise semantic hits are, and how much
faster a hit is than the bundled model, side by side in one run.

1. **Right and wrong hits** on labelled question pairs: paraphrases that
   must hit, and hard negatives that must miss (other numbers, ordinals,
   names, negation, units, opposite meaning, the same words in another
   order). ``tests/data/cache_pairs_dev.jsonl`` is the dev split (the
   threshold and the agreement check were chosen on it);
   ``cache_pairs_test.jsonl`` is held out (written before the check, never
   tuned on). Each pair is run as the cache is used: the first question is
   stored with :meth:`~llmapp.cache.ResponseCache.put` in a fresh SQLite
   store, the second looked up with ``lookup(..., "semantic")``; at several
   thresholds, with and without :func:`llmapp.cache.disagreement`.
   Targets: no wrong hit, at least 80% of paraphrases hit.
2. **Speed**: the same prompts answered by the bundled model, then from the
   cache (exact and semantic hits), in one warm process. Prints the ratio of
   the model's time to the hit's.

    python benchmarks/bench_cache.py [--prompts 5] [--max-tokens 128] [--no-speed]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from results_file import save

from llmapp import config
from llmapp.cache import CacheRequest, CacheUse, ResponseCache
from llmapp.chat import ChatStore, start_reply
from llmapp.providers import GenerationParams
from llmapp.rag.embeddings import LocalEmbeddings
from llmapp.settings import resolve
from llmapp.storage import Database

ROOT = Path(__file__).resolve().parents[1]
SETS = {"dev": "cache_pairs_dev.jsonl", "test": "cache_pairs_test.jsonl",
        "test2": "cache_pairs_test2.jsonl"}
THRESHOLDS = (0.50, 0.60, 0.65, 0.70, 0.80, 0.90)
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


def _request(question: str, n: int) -> CacheRequest:
    return CacheRequest(question, [{"role": "system", "content": "Be brief."}], "local:m",
                        {"temperature": 0.0}, f"pair:{n}")


def run_pairs(rows: list[dict], threshold: float, check: bool, embedder) -> dict:
    """Each pair through the cache's API, each in a fresh SQLite store:
    ``put`` the first question, ``lookup`` the second. Returns the counts,
    and the wrong hits and missed paraphrases by text."""
    hits = []
    with tempfile.TemporaryDirectory() as folder:
        for n, row in enumerate(rows):
            cache = ResponseCache(Database(f"{folder}/{n}.sqlite3"), threshold=threshold,
                                  embedder=embedder, agreement=check)
            cache.put(_request(row["a"], n), "the first question's answer")
            hits.append(cache.lookup(_request(row["b"], n), "semantic") is not None)
            cache.database.close()
    paraphrases = sum(r["same"] for r in rows)
    right = sum(h and r["same"] for h, r in zip(hits, rows, strict=True))
    wrong = [f"{r['kind']}: {r['a']} / {r['b']}" for h, r in zip(hits, rows, strict=True)
             if h and not r["same"]]
    missed = [f"{r['a']} / {r['b']}" for h, r in zip(hits, rows, strict=True)
              if r["same"] and not h]
    return {"threshold": threshold, "word_check": check, "hits": sum(hits),
            "right_hits": right, "wrong_hits": len(wrong),
            "paraphrase_hit_rate": round(right / paraphrases, 3),
            "precision": round(right / max(sum(hits), 1), 3),
            "wrong": wrong, "missed": missed}


class _Memo:
    """The bundled embedder, each text embedded once across thresholds."""

    def __init__(self) -> None:
        self.inner, self.memo = LocalEmbeddings(), {}

    def embed_query(self, text: str):
        if text not in self.memo:
            self.memo[text] = self.inner.embed_query(text)
        return self.memo[text]


def quality(thresholds=THRESHOLDS) -> dict:
    embedder = _Memo()
    out = {}
    for split, name in SETS.items():
        rows = [json.loads(line) for line in (ROOT / "tests" / "data" / name).read_text()
                .splitlines()]
        out[split] = {"file": name, "pairs": len(rows),
                      "paraphrases": sum(r["same"] for r in rows),
                      "hard_negatives": sum(not r["same"] for r in rows),
                      "kinds": dict(Counter(r["kind"] for r in rows if not r["same"])),
                      "rows": [run_pairs(rows, t, check, embedder) for check in (False, True)
                               for t in (thresholds if check else (0.80, 0.65))]}
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
    parser.add_argument("--no-speed", action="store_true", help="the pairs only")
    args = parser.parse_args()
    data = {"quality": quality(),
            "speed": None if args.no_speed else speed(args.prompts, args.max_tokens),
            "default_threshold": config.CACHE_THRESHOLD}
    for split, result in data["quality"].items():
        print(f"{split} ({result['file']}): {result['paraphrases']} paraphrases, "
              f"{result['hard_negatives']} hard negatives {result['kinds']}")
        print("  threshold  check  paraphrases hit  wrong hits  precision")
        for r in result["rows"]:
            mark = "  <- default" if r["word_check"] and r["threshold"] == \
                config.CACHE_THRESHOLD else ""
            print(f"  {r['threshold']:9.2f}  {'yes' if r['word_check'] else 'no':>5}"
                  f"  {r['right_hits']:3d} ({r['paraphrase_hit_rate']:6.1%})"
                  f"  {r['wrong_hits']:10d}  {r['precision']:9.3f}{mark}")
        default = next(r for r in result["rows"] if r["word_check"]
                       and r["threshold"] == config.CACHE_THRESHOLD)
        for line in default["wrong"]:
            print(f"    wrong hit  {line}")
    s = data["speed"]
    if s is None:
        print(f"wrote {save('cache.json', data)}")
        return
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
