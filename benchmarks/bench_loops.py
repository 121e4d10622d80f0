"""How often the bundled model loops on the pages' own example prompts, under
several anti-repetition settings, side by side.

Each page example is built by the same library code the page uses (system
prompt, RAG context from the sample handbook, memory turns), then sampled
``--samples`` times per setting with different seeds, at the page's own
temperature and max tokens. A reply loops when a 4-word phrase occurs 3 times
or more (:func:`llmapp.repetition.loops`). Prints loops per setting and page,
and how many of the replies the pages' loop guard
(:class:`llmapp.repetition.LoopGuard`, 8 words back a third time) would have
stopped early.

    python benchmarks/bench_loops.py [--samples 6] [--default-only]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

from results_file import save

from llmapp import config
from llmapp.prompting.chains import EXPAND, THINK
from llmapp.providers.local import get_runtime
from llmapp.providers.runtime import Sampling
from llmapp.rag.answer import ANSWER_PARAMS
from llmapp.repetition import LoopGuard, loops, most_repeated

ROOT = Path(__file__).resolve().parents[1]
LLAMA_DRY = {"dry_penalty_last_n": 64, "dry_sequence_breakers": ("\n", ":", "\"", "*")}
"""llama.cpp's server's DRY defaults: over the last 64 tokens, matching stops
at every newline, colon, quote and ``*``."""
DEFAULT = "llmapp's: repeat 1.1 + DRY 0.8 over the window, breaks at blank lines"
SETTINGS = {
    "repeat 1.0": {"repeat_penalty": 1.0, "dry_multiplier": 0.0},
    "repeat 1.1": {"repeat_penalty": 1.1, "dry_multiplier": 0.0},
    "repeat 1.2": {"repeat_penalty": 1.2, "dry_multiplier": 0.0},
    "repeat 1.1 + DRY 0.8, llama.cpp's": {"repeat_penalty": 1.1, "dry_multiplier": 0.8,
                                          **LLAMA_DRY},
    "repeat 1.1 + DRY 1.5, llama.cpp's": {"repeat_penalty": 1.1, "dry_multiplier": 1.5,
                                          **LLAMA_DRY},
    "repeat 1.1 + DRY 0.8 over 256 tokens": {**LLAMA_DRY, "repeat_penalty": 1.1,
                                             "dry_multiplier": 0.8, "dry_penalty_last_n": 256},
    "repeat 1.1 + DRY 0.8 over the window": {**LLAMA_DRY, "repeat_penalty": 1.1,
                                             "dry_multiplier": 0.8,
                                             "dry_penalty_last_n": config.LOCAL_N_CTX},
    DEFAULT: {"repeat_penalty": config.LOCAL_REPEAT_PENALTY,
              "dry_multiplier": config.LOCAL_DRY_MULTIPLIER,
              "dry_penalty_last_n": config.LOCAL_DRY_PENALTY_LAST_N,
              "dry_sequence_breakers": config.LOCAL_DRY_SEQUENCE_BREAKERS},
    "SmolLM2's card (T 0.2, top-p 0.9), llmapp's penalties": {"temperature": 0.2, "top_p": 0.9},
}
"""Each setting overrides the page's sampling (llmapp's defaults otherwise)."""


SKELETON_SAMPLE = ("1. Get the right shoes\n2. Start with short runs\n3. Build up slowly\n"
                   "4. Rest between runs")
"""A skeleton of the kind the bundled model writes for the Chains page's
question, so that one expansion is measured with a fixed prompt."""


def rag_messages(question: str) -> list[dict]:
    from llmapp.rag.answer import grounded_messages
    from llmapp.rag.chunking import ChunkSettings
    from llmapp.rag.store import knowledge_base
    from llmapp.settings import resolve

    tmp = tempfile.mkdtemp()
    kb = knowledge_base(resolve(environ={"LLMAPP_CHROMA_PATH": tmp}, env_file={}))
    for path in sorted((ROOT / "data" / "handbook").glob("*.*")):
        if path.suffix in (".md", ".txt", ".pdf"):
            kb.ingest("handbook", path.read_bytes(), path.name, ChunkSettings())
    return grounded_messages(question, kb.search("handbook", question, 4))


def examples() -> dict[str, tuple[list[dict], float, int]]:
    """Page -> (messages, temperature, max tokens), as the page sends them."""
    system = {"role": "system", "content": config.DEFAULT_SYSTEM_PROMPT}
    return {
        "1 simple": ([system, {"role": "user", "content": config.SIMPLE_EXAMPLE}],
                     config.DEFAULT_TEMPERATURE, config.DEFAULT_MAX_TOKENS),
        "2 chain of thought": ([{"role": "user", "content": "How do I start running?" + THINK}],
                               config.DEFAULT_TEMPERATURE, config.DEFAULT_MAX_TOKENS),
        "2 skeleton, expand": ([{"role": "user", "content": EXPAND.format(
            question="How do I start running?", skeleton=SKELETON_SAMPLE, n=2,
            point="Start with short runs")}], config.DEFAULT_TEMPERATURE,
            config.DEFAULT_MAX_TOKENS),
        "3 RAG": (rag_messages("What is chunk overlap?"), ANSWER_PARAMS.temperature,
                  ANSWER_PARAMS.max_tokens),
        "4 memory, turn 1": ([system, {"role": "user", "content": "My name is Ada."}],
                             config.DEFAULT_TEMPERATURE, config.DEFAULT_MAX_TOKENS),
        "4 memory": ([system, {"role": "user", "content": "My name is Ada."},
                      {"role": "assistant", "content": "Nice to meet you, Ada!"},
                      {"role": "user", "content": "What is my name?"}],
                     config.DEFAULT_TEMPERATURE, config.DEFAULT_MAX_TOKENS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--pages", nargs="+", help="only these pages, e.g. '3 RAG'")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), help="only these")
    parser.add_argument("--default-only", action="store_true", help="only llmapp's defaults")
    args = parser.parse_args()
    if args.default_only:
        args.settings = [DEFAULT]
    runtime = get_runtime()
    pages = {k: v for k, v in examples().items() if not args.pages or k in args.pages}
    for name in set(SETTINGS) - set(args.settings or SETTINGS):
        del SETTINGS[name]
    table: dict[str, dict[str, list]] = {s: {p: [] for p in pages} for s in SETTINGS}
    jobs = [(s, p, seed) for s in SETTINGS for p in pages for seed in range(args.samples)]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not jobs:
                    return
                setting, page, seed = jobs.pop()
            messages, temperature, max_tokens = pages[page]
            try:
                sampling = {"temperature": temperature, "max_tokens": max_tokens,
                            **SETTINGS[setting]}
                out = runtime.complete(messages, Sampling(seed=seed, **sampling))
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                print(f"{setting} / {page} / seed {seed}: {exc!r}")
                continue
            guard = LoopGuard()
            words = out.text.split(" ")
            stopped_at = next((i for i, w in enumerate(words) if guard.feed(w + " ")), None)
            with lock:
                table[setting][page].append({"loops": loops(out.text),
                                             "guard_stops_at_word": stopped_at,
                                             "repeated": most_repeated(out.text),
                                             "tokens": out.completion_tokens,
                                             "finish": out.finish_reason, "text": out.text})

    threads = [threading.Thread(target=work) for _ in range(runtime.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"replies that loop, of {args.samples} per page ({', '.join(pages)}):")
    for setting, rows in table.items():
        counts = [sum(r["loops"] for r in rows[p]) for p in pages]
        tokens = [sum(r["tokens"] for r in rows[p]) / len(rows[p]) for p in pages]
        guarded = [sum(r["guard_stops_at_word"] is not None for r in rows[p]) for p in pages]
        print(f"{setting:22} loops {counts} total {sum(counts):2}   stopped on the page by "
              f"the loop guard {guarded}   mean tokens {[round(t) for t in tokens]}")
    save("loops.json", table, indent=1)


if __name__ == "__main__":
    main()
