"""Ingest isolation: what the parse worker costs, and what it bounds.

1. Cost: the same files are loaded and chunked in this process
   (``parse_here``) and in the worker (``ParseWorker.parse``: JSON and bytes
   through a pipe), in one run: the 60 synthetic documents of
   ``bench_rag.py`` and the sample handbook. Prints the time of each, their
   ratio (worker / in-process), and the worker's start-up time.
2. Benefit: PDFs whose one content stream inflates to 16 MB of text
   operators (under every per-stream limit of pypdf) or 70 MB: CPU seconds in
   this process (the 16 MB one only with ``--unbounded``: it took 158 s of
   CPU here), against the worker, which stops at its budget.

    python benchmarks/bench_ingest.py [--docs 60] [--unbounded]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from bench_rag import documents
from results_file import save

from llmapp.rag import IngestError
from llmapp.rag.chunking import ChunkSettings
from llmapp.rag.isolation import ParseWorker, cpu_budget, parse_here

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def main() -> None:
    from test_rag_ingest import TEXT_OPS, inflating_pdf

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--unbounded", action="store_true",
                        help="also parse the 16 MB PDF in this process (minutes of CPU)")
    args = parser.parse_args()
    chunking = ChunkSettings()
    files = documents(args.docs) + [(p.name, p.read_bytes()) for p in
                                    sorted((ROOT / "data" / "handbook").iterdir())]
    for name, data in files[:3]:  # warm the imports of this process
        parse_here(data, name, chunking)
    worker = ParseWorker()
    started = time.perf_counter()
    worker.parse(b"warm up", "w.txt", chunking)
    startup = time.perf_counter() - started
    started = time.perf_counter()
    here = [parse_here(data, name, chunking) for name, data in files]
    here_s = time.perf_counter() - started
    started = time.perf_counter()
    there = [worker.parse(data, name, chunking) for name, data in files]
    worker_s = time.perf_counter() - started
    assert there == here
    result = {"files": len(files), "in_process_s": here_s, "worker_s": worker_s,
              "ratio": worker_s / here_s, "worker_startup_s": startup,
              "per_file_ms": 1000 * (worker_s - here_s) / len(files)}
    print(f"cost: {len(files)} files loaded and chunked in {here_s:.2f} s in process, "
          f"{worker_s:.2f} s in the worker (ratio {result['ratio']:.2f}, "
          f"{result['per_file_ms']:+.1f} ms per file); the worker starts in {startup:.2f} s")
    bombs = {}
    for label, inflated, unit in (("16 MB of text operators", 15_900_000, TEXT_OPS),
                                  ("70 MB of text operators", 70_000_000, TEXT_OPS)):
        data = inflating_pdf(inflated, unit)
        before, outcome = cpu(), "not run (--unbounded)"
        if args.unbounded or inflated > 16_000_000:
            try:
                parse_here(data, "bomb.pdf", chunking)
                outcome = "parsed"
            except IngestError as exc:
                outcome = str(exc)
        spent = cpu() - before
        started = time.perf_counter()
        try:
            worker.parse(data, "bomb.pdf", chunking)
            isolated = "parsed"
        except IngestError as exc:
            isolated = str(exc)
        bombs[label] = {"pdf_bytes": len(data), "in_process_cpu_s": spent,
                        "in_process": outcome, "worker_budget_cpu_s": cpu_budget(len(data)),
                        "worker_wall_s": time.perf_counter() - started, "worker": isolated}
        print(f"{label} ({len(data) // 1000} KB): in process {spent:.1f} s of CPU ({outcome[:60]}"
              f"); worker: {isolated[:70]} after {bombs[label]['worker_wall_s']:.1f} s")
    worker.close()
    save("ingest.json", {"cost": result, "bombs": bombs})


if __name__ == "__main__":
    main()
