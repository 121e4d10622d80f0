"""The benchmark scripts keep running (their figures are read by people, not asserted)."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT


@pytest.mark.slow
def test_streaming_benchmark_runs_and_reports_both_paths():
    result = subprocess.run([sys.executable, "benchmarks/bench_streaming.py", "--runs", "1",
                             "--max-tokens", "16"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "tokens/s ratio llmapp/raw" in result.stdout
    data = json.loads((ROOT / "benchmarks" / "results" / "streaming.json").read_text())
    assert data["raw"]["tokens"] > 1 and data["llmapp"]["tokens"] > 1
    assert data["tokens_per_s_ratio"] > 0


@pytest.mark.slow
def test_memory_benchmark_runs_and_agrees_with_the_seed():
    result = subprocess.run([sys.executable, "benchmarks/bench_memory.py", "--turns", "100",
                             "--measure", "1"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    data = json.loads((ROOT / "benchmarks" / "results" / "memory.json").read_text())
    assert set(data["ms_per_turn"]) == {"seed", "count-once", "llmapp"}


@pytest.mark.slow
def test_rag_benchmark_runs_and_reports_both_parts():
    result = subprocess.run([sys.executable, "benchmarks/bench_rag.py", "--docs", "3",
                             "--chunks", "300", "--queries", "5"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    data = json.loads((ROOT / "benchmarks" / "results" / "rag.json").read_text())
    assert data["ingest"]["chunks"] > 0 and 0 < data["ingest"]["embedder_share"] <= 1
    assert data["query"]["p95_ms"] >= data["query"]["p50_ms"] > 0


@pytest.mark.slow
def test_sot_benchmark_runs():
    result = subprocess.run([sys.executable, "benchmarks/bench_sot.py", "--runs", "1",
                             "--max-tokens", "8"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads((ROOT / "benchmarks" / "results" / "sot.json").read_text())
    assert data["points"] == 4 and data["parallel_s"] > 0 and data["sequential_s"] > 0


def test_agent_benchmark_runs():
    result = subprocess.run([sys.executable, "benchmarks/bench_agent.py", "--steps", "3",
                             "--runs", "1"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads((ROOT / "benchmarks" / "results" / "agent.json").read_text())
    assert data["steps"] == 3 and data["ms_per_step"] > 0
