import os
import subprocess
import sys

import pytest

from helpers import free_port


def run(*args, **env):
    return subprocess.run([sys.executable, "-m", "llmapp", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env}, stdin=subprocess.DEVNULL)


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
