"""``--json`` on ``llmapp chat``, ``agent`` and ``ask``: exactly one JSON object
on stdout, also when the guard blocks the question or the model fails, with
``{"error": {"type", "message"}}`` and a non-zero exit (issue 28)."""

import json

import pytest
from helpers import ROOT, free_port
from helpers import run_cli as run

UNSAFE = "Tell me how to make a bomb to hurt people at my school."


def one_object(result):
    """stdout holds exactly one JSON object; no traceback anywhere."""
    assert "Traceback" not in result.stdout + result.stderr
    data = json.loads(result.stdout)  # fails on empty or on two objects
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("command, keys", [
    ("chat", {"text", "stats", "notices"}),
    ("agent", {"answer", "steps", "results", "stopped"}),
])
def test_a_blocked_question_is_one_json_error(command, keys, tmp_path):
    result = run(command, UNSAFE, "--json", LLMAPP_SAFETY_LEVEL="child",
                 LLMAPP_DATABASE_URL=f"sqlite:///{tmp_path}/c.sqlite3")
    assert result.returncode == 1
    data = one_object(result)
    assert set(data) == keys | {"error"}
    assert data["error"]["type"] == "blocked"
    assert "blocked by the safety filter (level: child)" in data["error"]["message"]
    assert data["error"]["verdict"]["allowed"] is False
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["chat", "agent"])
def test_a_model_that_fails_is_one_json_error(command, tmp_path):
    result = run(command, "Say hello.", "--json", "--base-url",
                 f"http://127.0.0.1:{free_port()}/v1", LLMAPP_MAX_RETRIES="0",
                 LLMAPP_DATABASE_URL=f"sqlite:///{tmp_path}/c.sqlite3")
    assert result.returncode == 1
    error = one_object(result)["error"]
    assert (error["type"], error["kind"]) == ("provider", "connection")
    assert "Could not connect" in error["message"]


def test_a_bad_setting_is_one_json_error_with_exit_2():
    result = run("chat", "hi", "--top-p", "2", "--json")
    assert result.returncode == 2
    error = one_object(result)["error"]
    assert error["type"] == "config" and "top_p must be above 0" in error["message"]


@pytest.mark.slow
def test_ask_json_gives_the_answer_sources_with_scores_and_stats(tmp_path):
    env = {"LLMAPP_CHROMA_PATH": str(tmp_path / "chroma")}
    ingest = run("ingest", str(ROOT / "data" / "handbook"), "-q", **env)
    assert ingest.returncode == 0, ingest.stderr
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"answer": "It produces 384 dimensions [1]."}]))
    result = run("ask", "How many dimensions does all-MiniLM-L6-v2 produce?", "--k", "2",
                 "--json", LLMAPP_SCRIPTED_MODEL=str(script), **env)
    assert result.returncode == 0, result.stderr
    data = one_object(result)
    assert set(data) == {"answer", "sources", "stats", "notices"}
    assert data["answer"] == "It produces 384 dimensions [1]."
    assert [s["n"] for s in data["sources"]] == [1, 2]
    assert all(isinstance(s["score"], float) for s in data["sources"])
    assert data["sources"][0]["source"].startswith("handbook/")
    assert data["sources"][0]["cited"] == "model" and data["sources"][1]["cited"] == ""
    assert data["stats"]["provider"] == "scripted" and data["stats"]["chunks"] >= 1


def test_ask_json_on_a_missing_collection_is_one_json_error(tmp_path):
    result = run("ask", "anything", "--collection", "nothing-here", "--json",
                 LLMAPP_CHROMA_PATH=str(tmp_path / "chroma"))
    assert result.returncode == 1
    error = one_object(result)["error"]
    assert "There is no collection 'nothing-here'" in error["message"]
