"""The benchmark scripts keep running (their figures are read by people, not asserted)."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT


def bench(script: str, result_name: str, *args: str):
    """Run ``benchmarks/<script>`` with ``args``; return its stdout and the
    JSON it wrote to ``benchmarks/results/<result_name>``."""
    result = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout, json.loads((ROOT / "benchmarks" / "results" / result_name).read_text())


@pytest.mark.slow
def test_streaming_benchmark_runs_and_reports_both_paths():
    out, data = bench("bench_streaming.py", "streaming.json", "--runs", "1", "--max-tokens", "16")
    assert "tokens/s ratio llmapp/raw" in out
    assert data["raw"]["tokens"] > 1 and data["llmapp"]["tokens"] > 1
    assert data["tokens_per_s_ratio"] > 0


@pytest.mark.slow
def test_memory_benchmark_runs_and_agrees_with_the_seed():
    _, data = bench("bench_memory.py", "memory.json", "--turns", "100", "--measure", "1")
    assert set(data["ms_per_turn"]) == {"seed", "count-once", "llmapp"}


@pytest.mark.slow
def test_rag_benchmark_runs_and_reports_both_parts():
    _, data = bench("bench_rag.py", "rag.json", "--docs", "3", "--chunks", "300",
                    "--queries", "5")
    assert data["ingest"]["chunks"] > 0 and 0 < data["ingest"]["embedder_share"] <= 1
    assert data["query"]["p95_ms"] >= data["query"]["p50_ms"] > 0


@pytest.mark.slow
def test_sot_benchmark_runs():
    _, data = bench("bench_sot.py", "sot.json", "--runs", "1", "--max-tokens", "8")
    assert data["points"] == 4 and data["parallel_s"] > 0 and data["sequential_s"] > 0


def test_agent_benchmark_runs():
    _, data = bench("bench_agent.py", "agent.json", "--steps", "3", "--runs", "1")
    assert data["steps"] == 3 and data["ms_per_step"] > 0
