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
def test_memory_benchmark_runs_and_agrees_with_the_recount_loop():
    _, data = bench("bench_memory.py", "memory.json", "--turns", "100", "--measure", "1")
    assert set(data["ms_per_turn"]) == {"recount-all", "count-once", "llmapp"}


@pytest.mark.slow
def test_rag_benchmark_runs_and_reports_both_parts():
    _, data = bench("bench_rag.py", "rag.json", "--docs", "3", "--chunks", "300",
                    "--queries", "5")
    assert data["ingest"]["chunks"] > 0 and 0 < data["ingest"]["embedder_share"] <= 1
    assert data["query"]["p95_ms"] >= data["query"]["p50_ms"] > 0
    assert data["query"]["first_query_ms"] > 0


@pytest.mark.slow
def test_sot_benchmark_runs():
    _, data = bench("bench_sot.py", "sot.json", "--runs", "1", "--max-tokens", "8")
    assert data["points"] == 4 and data["parallel_s"] > 0 and data["sequential_s"] > 0


def test_agent_benchmark_runs():
    _, data = bench("bench_agent.py", "agent.json", "--steps", "3", "--runs", "1")
    assert data["steps"] == 3 and data["ms_per_step"] > 0


@pytest.mark.slow
def test_runtimes_benchmark_compares_the_three_variants():
    out, data = bench("bench_runtimes.py", "runtimes.json", "--max-tokens", "16",
                      "--json-prompts", "2")
    assert [r["variant"] for r in data["rows"]] == ["llama-cpp, lock", "llama-cpp", "xllamacpp"]
    assert all(r["tokens_per_s"] > 0 and r["rss_mb"] > 0 for r in data["rows"])
    assert "vs llama-cpp behind a lock" in out


@pytest.mark.slow
def test_embeddings_benchmark_times_both_embedders():
    _, data = bench("bench_embeddings.py", "embeddings.json", "--chunks", "16")
    assert set(data["rows"]) == {"onnx", "sentence-transformers"}
    assert all(r["dimension"] == 384 and r["chunks_per_s"] > 0 for r in data["rows"].values())
    top = data["ceiling"]
    assert 0 < top["mean_tokens"] <= 256 and top["matmul_gflops"] > 0
    assert data["ceiling_ratio"] > 0


def test_embedding_flops_count_matches_the_model_shapes(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_embeddings

    # one token: 6 layers x 2 x (4 x 384^2 + 2 x 384 x 1536 + 2 x 384)
    assert bench_embeddings.chunk_flops(1) == 6 * 2 * (4 * 384**2 + 2 * 384 * 1536 + 2 * 384)
    # attention grows with the square of the length, the rest linearly
    assert bench_embeddings.chunk_flops(256) > 256 * bench_embeddings.chunk_flops(1)


@pytest.mark.slow
def test_loops_benchmark_counts_looping_replies():
    _, data = bench("bench_loops.py", "loops.json", "--samples", "1", "--pages", "4 memory",
                    "--settings", "repeat 1.1")
    [row] = data["repeat 1.1"]["4 memory"]
    assert row["text"] and isinstance(row["loops"], bool)


@pytest.mark.slow
def test_tools_benchmark_runs_and_scores_each_kind_of_question():
    out, data = bench("bench_tools.py", "tools.json", "--limit", "1")
    assert "right tool (tool questions)" in out and "no tool for chit-chat" in out
    assert {o["tool"] for o in data["outcomes"]} == {"calculator", "word_count",
                                                     "current_datetime", "knowledge_base", None}
    assert data["scores"]["right_tool"][1] == 4 and data["scores"]["chit_chat_no_tool"][1] == 1


@pytest.mark.slow
def test_retrieval_benchmark_compares_the_plain_pipeline_with_llmapp(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "How do I limit the size of uploaded files?", '
                         '"source": "flask-fileuploads.html"}\n')
    out, data = bench("bench_retrieval.py", "retrieval.json", "--corpus",
                      str(ROOT / "tests" / "data" / "html"), "--questions", str(questions))
    assert "plain (get_text, 1000/150, dense)" in out and "default (markdown / hybrid)" in out
    pipelines = {(r["chunking"], r["retriever"]) for r in data["results"]}
    assert ("plain", "") in pipelines and ("markdown", "hybrid") in pipelines
    assert data["pages"] == 2 and data["questions"] == 1


@pytest.mark.slow
def test_cache_benchmark_measures_precision_and_speed():
    out, data = bench("bench_cache.py", "cache.json", "--prompts", "1", "--max-tokens", "16")
    assert "speed-up of a hit over the model" in out
    assert "wrong hits" in out and "paraphrases hit" in out
    for split in ("dev", "test"):
        rows = data["quality"][split]["rows"]
        assert {(r["threshold"], r["word_check"]) for r in rows} >= {(0.65, True), (0.8, False)}
        assert all(r["right_hits"] + r["wrong_hits"] == r["hits"] for r in rows)
    assert data["speed"]["ratio_exact"] > 1


@pytest.mark.slow
def test_safety_benchmark_reports_each_level():
    out, data = bench("bench_safety.py", "safety.json", "--repeats", "1", "--replies", "1")
    assert "unsafe blocked" in out and "offline check: p50" in out
    assert set(data["levels"]) == {"child", "teen", "adult", "off"}
    assert data["levels"]["off"]["plain_blocked"] == 0
    assert data["levels"]["off"]["replies_blocked"] == 0
    assert data["levels"]["child"]["inside_reply_blocked"] > 0.5
    assert data["levels"]["child"]["leetspeak_blocked"] > 0.5
    assert data["texts"] >= 800 and data["everyday_replies"] == 20
    for split in ("dev", "test", "test2", "older"):
        levels = data["splits"][split]["levels"]
        assert levels["off"]["unsafe_blocked"] == 0 and levels["off"]["benign_passed"] == 1
        assert levels["child"]["unsafe_blocked"] >= levels["adult"]["unsafe_blocked"]
    assert set(data["splits"]["test"]["categories"]["adult"]) == \
        {"sexual", "sexual/minors", "hate", "harassment", "violence", "violence/graphic",
         "self-harm", "illicit"}
    assert set(data["topic"]) == {"travel", "cooking", "helpdesk"}


@pytest.mark.slow
def test_api_benchmark_reports_ttft_percentiles_and_throughput_for_both_servers():
    out, data = bench("bench_api.py", "api.json", "--requests", "3", "--max-tokens", "8")
    for side in ("baseline", "llmapp"):
        row = data[side]
        assert row["requests"] == 3 and row["tokens"] > 0
        assert row["ttft_p95_s"] >= row["ttft_p50_s"] > 0 and row["tokens_per_s"] > 0
    assert data["tokens_per_s_ratio"] > 0 and "llmapp / llama.cpp" in out


@pytest.mark.slow
def test_tuning_benchmark_trains_and_compares():
    _, data = bench("bench_tuning.py", "tuning.json", "--epochs", "1", "--examples", "10",
                    "--held-out", "2")
    assert data["train"]["steps"] == 2 and data["held_out"] == 2  # 10 examples, batches of 8
    assert set(data["totals"]) == {"base", "tuned"} and data["speed_ratio"] > 0


@pytest.mark.slow
def test_demo_benchmark_checks_the_rag_examples():
    """Quoted answers are deterministic: the RAG page's examples are all right."""
    out, data = bench("bench_demo.py", "demo.json", "--samples", "1", "--split", "none",
                      "--page", "rag")
    assert data["summary"]["examples"]["rag"] == {"right": 3, "of": 3, "share": 1.0}
    assert "right answers on the bundled model" in out
