import json

import pytest
from helpers import ROOT, free_port
from helpers import run_cli as run


@pytest.mark.slow
def test_chat_streams_an_answer_with_stats():
    result = run("chat", "Name a colour.", "--temperature", "0", "--max-tokens", "24",
                 "--system", "Answer in one word.")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "TTFT" in result.stderr and "(local)" in result.stderr


def test_doctor_lists_every_provider():
    result = run("doctor")
    assert result.returncode == 0
    assert "active provider: local" in result.stdout
    for name in ("local", "openai", "openai-compatible"):
        assert f"] {name}" in result.stdout


def test_doctor_fails_when_the_chosen_server_is_down():
    result = run("doctor", "--base-url", f"http://127.0.0.1:{free_port()}/v1")
    assert result.returncode == 1 and "unreachable" in result.stdout


@pytest.mark.parametrize("args,code,words", [
    (("chat", "hi", "--top-p", "2"), 2, "top_p must be above 0 and at most 1"),
    (("chat", "hi", "--base-url", "localhost:11434"), 2, "must start with http"),
    (("chat", "hi", "--provider", "openai"), 1, "No OpenAI API key"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(args, code, words):
    result = run(*args)
    assert result.returncode == code
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_unreachable_server_is_one_line():
    result = run("chat", "hi", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
                 LLMAPP_MAX_RETRIES="0")
    assert result.returncode == 1 and "Could not connect" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_rag_commands_ingest_search_ask_and_list(tmp_path):
    env = {"LLMAPP_CHROMA_PATH": str(tmp_path / "chroma")}
    bad = tmp_path / "docs" / "broken.pdf"
    bad.parent.mkdir()
    bad.write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "docs" / "notes.md").write_text("# Notes\n\nThe launch code is 4242.\n")
    (tmp_path / "docs" / "skip.png").write_bytes(b"\x89PNG")
    (tmp_path / "docs" / "menu.txt").write_bytes(
        ("Crème brûlée, café au lait et pâté: le menu coûte 12 €. " * 4).encode("cp1252"))
    result = run("ingest", str(ROOT / "data" / "handbook"), str(bad.parent), "-q", **env)
    assert result.returncode == 1  # one file failed; the others are in
    lines = result.stdout.splitlines()
    assert "added    handbook/01_roadmap.md: 7 chunks" in lines  # one per section
    assert any(line.startswith("failed   docs/broken.pdf: ") and "damaged" in line
               and line.count("broken.pdf") == 1 for line in lines)
    assert "added    docs/menu.txt: 1 chunks (not UTF-8: read as cp1252; check its accents " \
        "and symbols)" in lines
    assert "added    docs/notes.md: 1 chunks" in lines and "skip.png" not in result.stdout
    assert lines[-1].startswith("5 of 6 files in collection 'handbook'")
    again = run("ingest", str(ROOT / "data" / "handbook"), "-q", **env)
    assert again.returncode == 0 and again.stdout.count("unchanged") == 3

    found = run("search", "What is the launch code?", "--k", "2", "--json", **env)
    data = json.loads(found.stdout)
    assert [set(hit) for hit in data] == [{"id", "source", "page", "section", "score",
                                           "found_by", "text"}] * 2
    assert data[0]["source"] == "docs/notes.md" and "4242" in data[0]["text"]
    assert isinstance(data[0]["score"], float)

    listed = run("collections", **env)
    assert listed.stdout.startswith("handbook: 5 documents, 16 chunks, local:all-MiniLM-L6-v2")

    answer = run("ask", "How many dimensions does all-MiniLM-L6-v2 produce?", "--k", "2",
                 "--max-tokens", "40", **env)
    assert answer.returncode == 0, answer.stderr
    assert "Sources:\n  [1] handbook/03_rag_in_practice.pdf, page 2" in answer.stdout


def test_rag_commands_explain_a_missing_collection(tmp_path):
    result = run("search", "anything", "--collection", "nothing-here",
                 LLMAPP_CHROMA_PATH=str(tmp_path / "chroma"))
    assert result.returncode == 1
    assert "There is no collection 'nothing-here'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_chain_structured_prints_valid_json():
    result = run("chain", "structured", "Classify the food: salmon.", "--schema", "food")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"item", "category"}
    assert data["category"] in ("fruit", "vegetable", "fish", "dairy", "grain", "other")


@pytest.mark.slow
def test_chain_density_runs_its_rounds():
    result = run("chain", "density", "Acme launched Rocket in Oslo on 3 March 2026.",
                 "--rounds", "2", "--max-tokens", "40")
    assert result.returncode == 0, result.stderr
    assert "== round 1 (" in result.stderr and "== round 2" in result.stderr
    assert result.stdout.strip()


def test_chain_bad_schema_file_is_one_line(tmp_path):
    result = run("chain", "structured", "x", "--schema", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args,code,out,err", [
    (("calculator", "--arg", "expression=23*19"), 0, "437\n", "calculator took"),
    (("calculator", "--arg", "expression=__import__('os')"), 1, "", "not a function call"),
    (("word_count",), 1, "", "Bad arguments for word_count: text: Field required."),
    (("teleport",), 2, "", "Unknown tool 'teleport'"),
    (("calculator", "--arg", "expression"), 2, "", "--arg takes key=value"),
    (("fetch_url", "--arg", "url=file:///etc/passwd"), 1, "", "Only http and https"),
])
def test_tool_calls_one_tool_directly(args, code, out, err):
    result = run("tool", *args)
    assert result.returncode == code and result.stdout == out
    assert err in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_agent_prints_steps_and_the_answer(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"tool": "calculator", "args": {"expression": "23*19"}},
                                  {"answer": "It is 437."}]))
    result = run("agent", "What is 23*19?", LLMAPP_SCRIPTED_MODEL=str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is 437.\n"
    assert '-> calculator {"expression": "23*19"}' in result.stderr
    assert "<- calculator (" in result.stderr and "): 437" in result.stderr


def test_agent_stops_at_its_limit_with_exit_1(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"tool": "word_count", "args": {"text": "x"}}] * 5))
    result = run("agent", "loop", "--max-model-calls", "2", LLMAPP_SCRIPTED_MODEL=str(script))
    assert result.returncode == 1 and "stopped:" in result.stderr
    assert result.stderr.count("-> word_count") == 2


@pytest.mark.slow
def test_agent_json_on_the_bundled_model_names_the_tool_and_who_chose_it():
    result = run("agent", "What is 23*19?", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"answer", "steps", "results", "stopped"}
    step = data["steps"][0]
    assert (step["tool"], step["args"], step["result"]) == (
        "calculator", {"expression": "23 * 19"}, "437")
    assert step["decided_by"] == "chosen because the question writes its arithmetic out (0.90)"
    assert "437" in data["answer"] and data["results"] == ["437"]


@pytest.mark.slow
def test_agent_text_output_says_what_chose_the_tool_and_shows_the_result():
    result = run("agent", "How many words are in 'the quick brown fox jumps'?")
    assert result.returncode == 0, result.stderr
    assert '-> word_count {"text": "the quick brown fox jumps"} (chosen by similarity' \
        in result.stderr
    assert result.stdout.rstrip().endswith("= word_count: 5 words, 25 characters "
                                           "(21 without spaces)")
    chat = run("agent", "Hello!", "--tool-choice", "router")
    assert chat.returncode == 0 and "-- no tool:" in chat.stderr


def test_options_may_come_before_or_after_the_text():
    before = run("tool", "--arg", "expression=6*7", "calculator")
    assert before.returncode == 0 and before.stdout == "42\n", before.stderr
    helped = run("--help")
    assert "``" not in helped.stdout and "The llmapp command line" in helped.stdout
