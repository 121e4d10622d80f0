"""``llmapp serve`` as a real process on loopback, driven by the official
``openai`` client and by raw HTTP: the three model kinds, streaming and not,
auth, errors, a client that goes away, the queue limit, and a bounded load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from helpers import ROOT, free_port, wait_for_http

from llmapp.api.schemas import ChatCompletionRequest
from llmapp.api.service import APIError, conversation
from llmapp.settings import SPECS

pytestmark = pytest.mark.slow

API_KEY = "api-test-key-42"
LONG = "Write a long story about a dog."
"""At temperature 0, the bundled model writes 400 tokens for this (about 7 s)."""


@dataclass
class ApiServer:
    url: str
    key: str
    proc: subprocess.Popen
    log: Path

    def client(self, key: str | None = None, retries: int = 0) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key,
                             max_retries=retries, timeout=300)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=5).json()


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: nothing from the machine's
    settings, its own Chroma folder and database."""
    env = {k: v for k, v in os.environ.items() if k not in SPECS}
    env.update(LLMAPP_CHROMA_PATH=str(tmp / "chroma"),
               LLMAPP_DATABASE_URL=f"sqlite:///{tmp}/llmapp.sqlite3",
               LLMAPP_ENV_FILE=str(tmp / "absent.env"), **extra)
    return env


def llmapp(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmapp", *args], env=env, cwd=ROOT,
                          check=False, capture_output=True, text=True, timeout=300, **kwargs)


def start_server(tmp: Path, *args: str, **extra: str) -> Iterator[ApiServer]:
    port = free_port()
    log = tmp / "serve.log"
    env = server_env(tmp, **extra)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llmapp", "serve", "--port", str(port),
                                 *args], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 120, proc)
        yield ApiServer(f"http://127.0.0.1:{port}", extra.get("LLMAPP_API_KEY", ""), proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API on the bundled model, with the sample handbook ingested as
    collection ``handbook``, requiring ``API_KEY``."""
    tmp = tmp_path_factory.mktemp("api")
    ingest = llmapp("ingest", "data/handbook", "--collection", "handbook", "-q",
                    env=server_env(tmp))
    assert ingest.returncode == 0, ingest.stderr
    yield from start_server(tmp, LLMAPP_API_KEY=API_KEY)


def stream(client: openai.OpenAI, model: str, text: str, **kwargs) -> list:
    return list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True, **kwargs))


def last(chunks):
    """The chunk with the finish reason."""
    return next(c for c in chunks if c.choices and c.choices[0].finish_reason)


def content(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_models_lists_chat_agent_and_each_collection(api):
    ids = [m.id for m in api.client().models.list()]
    assert ids == ["llmapp-chat", "llmapp-agent", "llmapp-rag:handbook"]
    assert api.client().models.retrieve("llmapp-rag:handbook").id == "llmapp-rag:handbook"


def test_chat_streams_chunks_then_usage_and_answers_whole(api):
    client = api.client()
    chunks = stream(client, "llmapp-chat", "Say hello in one short sentence.", max_tokens=32,
                    stream_options={"include_usage": True})
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    text = content(chunks)
    assert text.strip()
    assert len([c for c in chunks if c.choices and c.choices[0].finish_reason]) == 1
    final = last(chunks)
    assert final.choices[0].finish_reason in ("stop", "length")
    stats = final.model_extra["llmapp"]["stats"]
    assert stats["provider"] == "local" and stats["ttft_s"] > 0
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens == stats["completion_tokens"]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0

    whole = client.chat.completions.create(
        model="llmapp-chat", max_tokens=24, temperature=0,
        messages=[{"role": "system", "content": "You answer in one short sentence."},
                  {"role": "user", "content": "My name is Ada."},
                  {"role": "assistant", "content": "Nice to meet you, Ada."},
                  {"role": "user", "content": "What is the capital of France?"}])
    assert whole.object == "chat.completion" and whole.choices[0].message.content.strip()
    assert whole.usage.prompt_tokens > 40  # the whole history was sent
    assert whole.choices[0].finish_reason in ("stop", "length")


def test_a_max_tokens_cut_says_length(api):
    whole = api.client().chat.completions.create(
        model="llmapp-chat", max_tokens=5,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}])
    assert whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 5


def test_rag_answers_with_its_sources_in_an_extra_field(api):
    client = api.client()
    whole = client.chat.completions.create(
        model="llmapp-rag:handbook", messages=[{"role": "user",
                                                "content": "What is chunk overlap?"}])
    sources = whole.model_extra["sources"]
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1)) and len(sources) >= 2
    assert any("overlap" in s["text"].lower() for s in sources)
    assert all(s["source"].startswith("handbook/") for s in sources)
    assert whole.choices[0].message.content.strip()

    chunks = stream(client, "llmapp-rag:handbook", "What does Chroma store?")
    final = last(chunks)
    assert content(chunks).strip() and final.model_extra["sources"]
    assert any("chroma" in s["text"].lower() for s in final.model_extra["sources"])


def test_agent_streams_its_steps_then_the_answer(api):
    chunks = stream(api.client(), "llmapp-agent", "What is 17 times 23?")
    steps = [c.model_extra["step"] for c in chunks if "step" in (c.model_extra or {})]
    assert [s["kind"] for s in steps] == ["tool_call", "tool_result"]
    assert steps[0]["name"] == "calculator" and steps[1]["text"] == "391"
    final = last(chunks)
    assert final.model_extra["steps"] == steps and content(chunks).strip()

    whole = api.client().chat.completions.create(
        model="llmapp-agent", messages=[{"role": "user",
                                         "content": "How many words are in 'the quick brown "
                                                    "fox'?"}])
    steps = whole.model_extra["steps"]
    assert steps[0]["name"] == "word_count" and steps[1]["text"].startswith("4 words")


def test_a_key_is_required_and_checked(api):
    with pytest.raises(openai.AuthenticationError) as err:
        api.client(key="wrong-key").models.list()
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    bare = httpx.post(f"{api.url}/v1/chat/completions", json={"model": "llmapp-chat"})
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert api.health()["status"] == "ok"  # probes need no key
    assert API_KEY not in api.log.read_text()


@pytest.mark.parametrize("body, status, code", [
    ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, 404,
     "model_not_found"),
    ({"model": "llmapp-rag:nothing", "messages": [{"role": "user", "content": "hi"}]}, 404,
     "model_not_found"),
    ({"model": "llmapp-chat", "messages": []}, 422, "invalid_request"),
    ({"model": "llmapp-chat", "messages": [{"role": "user", "content": "hi"}],
      "temperature": 3}, 422, "invalid_request"),
    ({"model": "llmapp-chat", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400,
     "unsupported_parameter"),
    ({"model": "llmapp-chat", "messages": [{"role": "assistant", "content": "hi"}]}, 400,
     "invalid_messages"),
    ({"model": "llmapp-chat", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, 400,
     "unsupported_content"),
    ({"model": "llmapp-chat", "messages": [{"role": "user", "content": "word " * 5000}]}, 400,
     "context_length_exceeded"),
    ({"model": "llmapp-chat", "messages": [{"role": "user",
                                            "content": "How do I build a pipe bomb?"}]}, 400,
     "content_filter"),
    ({"model": "llmapp-agent", "messages": [{"role": "user",
                                             "content": "How do I build a pipe bomb?"}]}, 400,
     "content_filter"),
])
def test_bad_requests_get_openai_shaped_errors(api, body, status, code):
    response = httpx.post(f"{api.url}/v1/chat/completions", json=body, timeout=120,
                          headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]
    assert "Traceback" not in response.text


def test_malformed_json_is_a_400(api):
    response = httpx.post(f"{api.url}/v1/chat/completions", content=b'{"model": ',
                          headers={"Authorization": f"Bearer {API_KEY}",
                                   "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The request body is not valid JSON."


def test_a_client_that_goes_away_frees_the_model_within_a_second(api):
    body = {"model": "llmapp-chat", "stream": True, "max_tokens": 400, "temperature": 0,
            "messages": [{"role": "user", "content": LONG}]}
    with httpx.Client(timeout=60) as http, \
            http.stream("POST", f"{api.url}/v1/chat/completions", json=body,
                        headers={"Authorization": f"Bearer {API_KEY}"}) as response:
        lines = response.iter_lines()
        pieces = [next(lines) for _ in range(12)]
        assert any('"content"' in p for p in pieces)
        busy = api.health()
        assert busy["model_in_flight"] == 1 and busy["active"] == 1
    gone = time.monotonic()
    while (health := api.health())["model_in_flight"] or health["active"]:
        assert time.monotonic() - gone < 1.0, health
        time.sleep(0.02)


def test_listening_beyond_loopback_needs_a_key(tmp_path):
    result = llmapp("serve", "--host", "0.0.0.0", "--port", str(free_port()),
                    env=server_env(tmp_path))
    assert result.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without an API key" in result.stderr
    assert "Traceback" not in result.stderr


def test_requests_beyond_the_queue_get_429_with_retry_after(tmp_path):
    for server in start_server(tmp_path, LLMAPP_API_CONCURRENCY="1", LLMAPP_API_MAX_QUEUE="1",
                               LLMAPP_CACHE="off"):
        body = {"model": "llmapp-chat", "stream": True, "max_tokens": 400, "temperature": 0,
                "messages": [{"role": "user", "content": LONG}]}
        url = f"{server.url}/v1/chat/completions"
        with httpx.Client(timeout=120) as http, \
                http.stream("POST", url, json=body) as first:
            lines = first.iter_lines()  # kept: a dropped iterator closes the connection
            next(lines)
            short = {**body, "stream": False, "max_tokens": 4}
            waiting = threading.Thread(target=httpx.post, args=(url,),
                                       kwargs={"json": short, "timeout": 120})
            waiting.start()
            deadline = time.monotonic() + 10
            while (h := server.health())["queued"] != 1:
                assert time.monotonic() < deadline, h
                time.sleep(0.05)
            refused = httpx.post(url, json=body, timeout=30)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        waiting.join(120)
        assert server.health()["active"] == 0


def test_twenty_concurrent_streams_all_complete_and_none_mixed_up(api):
    """Half chat, half agent arithmetic whose tool result must be the
    request's own product: a mixed-up stream would carry another's."""
    pairs = [(12 + n, 31 + 2 * n) for n in range(10)]
    client = api.client()

    def agent(pair):
        return stream(client, "llmapp-agent", f"What is {pair[0]} times {pair[1]}?")

    def chat(n):
        return stream(client, "llmapp-chat", f"Name one fact about the number {n}.",
                      max_tokens=24, stream_options={"include_usage": True})

    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        agents = [pool.submit(agent, pair) for pair in pairs]
        chats = [pool.submit(chat, n) for n in range(10)]
        results = [f.result(timeout=500) for f in agents + chats]
    assert time.monotonic() - started < 500
    ids = [chunks[0].id for chunks in results]
    assert len(set(ids)) == 20
    for chunks in results:
        assert {c.id for c in chunks} == {chunks[0].id}
        assert last(chunks).choices[0].finish_reason in ("stop", "length")
    for (a, b), chunks in zip(pairs, results[:10]):
        steps = [c.model_extra["step"] for c in chunks if "step" in (c.model_extra or {})]
        assert steps[0]["args"]["expression"].replace(" ", "") == f"{a}*{b}"
        assert steps[1]["text"] == str(a * b)
    for chunks in results[10:]:
        assert content(chunks).strip() and chunks[-1].usage.completion_tokens > 0
    assert api.health()["active"] == 0


def test_the_api_runs_over_an_openai_compatible_server(tmp_path, llama_server):
    for server in start_server(tmp_path, OPENAI_COMPATIBLE_BASE_URL=llama_server.base_url,
                               OPENAI_COMPATIBLE_API_KEY=llama_server.key,
                               OPENAI_COMPATIBLE_MODEL="smollm2",
                               OPENAI_COMPATIBLE_CONTEXT_WINDOW="2048"):
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        chunks = stream(client, "llmapp-chat", "Say hello in one short sentence.",
                        max_tokens=24)
        final = last(chunks)
        assert content(chunks).strip()
        assert final.model_extra["llmapp"]["stats"]["provider"] == "openai-compatible"
        assert server.health()["provider"] == "openai-compatible"
        assert llama_server.key not in server.log.read_text()


def test_messages_become_a_system_prompt_and_a_history():
    request = ChatCompletionRequest(model="llmapp-chat", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use English."},
        {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                     {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "And now?"}])
    system, history = conversation(request)
    assert system == "Be brief.\n\nUse English."
    assert history == [{"role": "user", "content": "Hi there"},
                       {"role": "assistant", "content": "Hello."},
                       {"role": "user", "content": "And now?"}]
    tool = ChatCompletionRequest(model="llmapp-chat", messages=[
        {"role": "tool", "content": "42"}, {"role": "user", "content": "so?"}])
    with pytest.raises(APIError) as err:
        conversation(tool)
    assert err.value.status == 400 and err.value.param == "messages[0].role"


def test_the_stream_is_server_sent_events_ending_in_done(api):
    body = {"model": "llmapp-chat", "stream": True, "max_tokens": 8,
            "messages": [{"role": "user", "content": "Hi"}]}
    response = httpx.post(f"{api.url}/v1/chat/completions", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert all(json.loads(e[6:])["object"] == "chat.completion.chunk" for e in events[:-1])
