"""``llmapp serve`` as a real process on loopback, driven by the official
``openai`` client and by raw HTTP: the three model kinds, streaming and not,
auth, errors, a client that goes away, the queue limit, and a bounded load.
"""

from __future__ import annotations

import json
import os
import socket
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
    # the stream's shape is under test: a sampled reply the safety filter withdraws
    # (about 1 in 100 everyday replies at adult, bench_safety.py) ends as OpenAI's do
    assert final.choices[0].finish_reason in ("stop", "length", "content_filter")
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
    for (a, b), chunks in zip(pairs, results[:10]):
        assert last(chunks).choices[0].finish_reason in ("stop", "length")
        steps = [c.model_extra["step"] for c in chunks if "step" in (c.model_extra or {})]
        assert steps[0]["args"]["expression"].replace(" ", "") == f"{a}*{b}"
        assert steps[1]["text"] == str(a * b)
    for chunks in results[10:]:
        # ~1% of the bundled model's sampled replies are withdrawn at the default
        # safety level (bench_safety.py); over 10 replies that failed CI once. The
        # stream's shape and usage are what this test checks.
        finish = last(chunks).choices[0].finish_reason
        assert finish in ("stop", "length", "content_filter")
        assert content(chunks).strip() or finish == "content_filter"
        assert chunks[-1].usage.completion_tokens > 0
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


# --- issue 28: an API that refuses cheaply, on the scripted model ---------------------

SCRIPTED_KEYS = {"web": "key-web-0123", "batch": "key-batch-4567"}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SCRIPTED_KEYS[name]}"}


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """``llmapp serve`` on the scripted model (each reply ``answer <n>``, n
    counting up), two keys, the response cache on, a 64 KiB body cap."""
    tmp = tmp_path_factory.mktemp("scripted_api")
    script = tmp / "script.json"
    script.write_text(json.dumps([{"answer": f"answer {n}"} for n in range(20000)]))
    yield from start_server(tmp, LLMAPP_SCRIPTED_MODEL=str(script),
                            LLMAPP_API_KEYS=json.dumps(SCRIPTED_KEYS),
                            LLMAPP_API_MAX_BODY_BYTES="65536")


def raw_request(server: ApiServer, head: str, body: bytes, timeout: float = 30) -> bytes:
    """Send a request's head and ``body`` on a socket; return what came back
    before the server closed it (or ``timeout`` passed)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def test_no_key_gets_401_before_the_body_is_sent(scripted):
    """The head announces 40 MB; only 64 KiB follow. A server that reads the
    body before the key waits for the rest, and the test times out on it."""
    head = ("POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Content-Length: 40000000\n")
    answer = raw_request(scripted, head, b"[" * 65536)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b'"code": "invalid_api_key"' in answer


def test_a_chunked_body_past_the_cap_gets_413(scripted):
    piece = b" " * 0x8000
    chunks = (b"8000\r\n" + piece + b"\r\n") * 3 + b"0\r\n\r\n"  # 96 KiB, no length
    head = (f"POST /v1/chat/completions HTTP/1.1\nHost: x\nAuthorization: Bearer "
            f"{SCRIPTED_KEYS['web']}\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\n")
    answer = raw_request(scripted, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"65,536 bytes" in answer and b'"type": "invalid_request_error"' in answer
    big = {"model": "llmapp-chat", "messages": [{"role": "user", "content": "x" * 70000}]}
    response = httpx.post(f"{scripted.url}/v1/chat/completions", json=big,
                          headers=bearer("web"), timeout=30)
    assert response.status_code == 413 and response.json()["error"]["code"] == \
        "request_too_large"


@pytest.mark.parametrize("raw", [b'"a\\ud800b"', b'"nul\\u0000"', b'"\xed\xa0\x80"'])
def test_bad_text_gets_400_not_500(scripted, raw):
    body = b'{"model": "llmapp-chat", "messages": [{"role": "user", "content": ' + raw + b"}]}"
    response = httpx.post(f"{scripted.url}/v1/chat/completions", content=body, timeout=30,
                          headers={**bearer("web"), "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_text"


def ask(server: ApiServer, key: str, question: str, **extra) -> str:
    response = httpx.post(f"{server.url}/v1/chat/completions", headers=bearer(key), timeout=60,
                          json={"model": "llmapp-chat", "messages": [
                              {"role": "user", "content": question}], **extra})
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_the_cache_scope_is_the_principal_and_user_only_narrows_it(scripted):
    question = "Which river flows through the city of Lyon in France?"
    first = ask(scripted, "web", question, user="alice")
    assert ask(scripted, "web", question, user="alice") == first  # the cache serves it
    # another key holder naming the same user is not served web's reply
    assert ask(scripted, "batch", question, user="alice") != first
    assert ask(scripted, "web", question, user="bob") != first
    shared = ask(scripted, "web", question)
    assert shared != first and ask(scripted, "web", question) == shared
    assert ask(scripted, "batch", question) not in (first, shared)


def test_each_key_of_the_table_is_accepted_and_none_is_logged(scripted):
    for name in SCRIPTED_KEYS:
        models = httpx.get(f"{scripted.url}/v1/models", headers=bearer(name), timeout=30)
        assert models.status_code == 200
    wrong = httpx.get(f"{scripted.url}/v1/models", timeout=30,
                      headers={"Authorization": "Bearer key-web-012"})
    assert wrong.status_code == 401
    log = scripted.log.read_text()
    assert all(key not in log for key in SCRIPTED_KEYS.values())


def test_a_500_is_logged_with_its_traceback_at_the_default_level(tmp_path):
    """A script step with neither answer nor tool makes the scripted model
    raise KeyError inside the reply: an unexpected failure."""
    script = tmp_path / "broken.json"
    script.write_text(json.dumps([{"neither": "answer nor tool"}] * 10))
    for server in start_server(tmp_path, LLMAPP_SCRIPTED_MODEL=str(script)):
        response = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
            "model": "llmapp-chat", "messages": [{"role": "user", "content": "Hello there"}]})
        assert response.status_code == 500
        assert "log" in response.json()["error"]["message"]
        assert "Traceback" not in response.text
        deadline = time.monotonic() + 10
        while "KeyError: 'answer'" not in (log := server.log.read_text()):
            assert time.monotonic() < deadline, log
            time.sleep(0.1)
        assert "answering failed (500" in log and "Traceback (most recent call last)" in log


SCHEMATHESIS_EXAMPLES = 80
"""Examples per generation mode (valid, then invalid), over all operations."""


@pytest.fixture(scope="module")
def openapi_schema(scripted):
    import schemathesis

    return schemathesis.openapi.from_url(f"{scripted.url}/openapi.json")


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_server_error(scripted, openapi_schema, mode):
    """The running ``llmapp serve``'s own OpenAPI schema, every operation
    fuzzed by schemathesis, with a key: never a 5xx (its not_a_server_error
    check). Half the cases are given a served model and a user's question
    last, so that some get past the 404 and 400s into the reply (how many
    varies from run to run; tests/test_api_schemas.py reaches the reply in
    about a fifth of its cases)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    seen: list[tuple[str, int]] = []

    def served(case, model, question):
        # a served model, no tool messages, n=1 and a user's question last, so
        # that cases get past the 404 and the 400s into the reply
        body = case.body
        if isinstance(body, dict) and "model" in body:
            body.update(model=model, n=1, tools=None)
            if isinstance(body.get("messages"), list):
                body["messages"] = [m for m in body["messages"] if m.get("role") != "tool"]
                body["messages"].append({"role": "user", "content": question})
        return case

    cases = openapi_schema.as_strategy(GenerationMode(mode))
    models = st.sampled_from(["llmapp-chat", "llmapp-agent", "llmapp-rag:none"])

    @settings(max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases | st.builds(served, cases, models, st.text(min_size=1)))
    def fuzz(case):
        response = case.call(base_url=scripted.url, headers=bearer("web"), timeout=60)
        seen.append((case.operation.path, response.status_code))
        case.validate_response(response, checks=[not_a_server_error])

    fuzz()
    chat = sorted({status for path, status in seen if path == "/v1/chat/completions"})
    assert len(seen) >= SCHEMATHESIS_EXAMPLES // 2 and chat, seen
    assert {path for path, _ in seen} >= {"/v1/models/{model_id}", "/v1/models"}
    print(f"{mode}: {len(seen)} requests; chat completions answered {chat}")
