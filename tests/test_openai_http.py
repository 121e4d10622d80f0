"""The OpenAI code path against real HTTP servers on localhost.

llama.cpp's server (``tests/serve_gguf.py``) serves the bundled model with an API key; two tiny
stdlib servers stand in for a rate-limiting and a silent server.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmapp.chat import ChatStore, start_reply
from llmapp.errors import ProviderError
from llmapp.providers import GenerationParams
from llmapp.settings import resolve
from helpers import compatible_settings, free_port

pytestmark = pytest.mark.slow


def ask(settings, text="Say hello in one short sentence.", **params):
    store = ChatStore()
    store.add_user(text)
    reply = start_reply(store, settings, GenerationParams(**{"max_tokens": 32, **params}))
    return store, reply


def fail(store, reply):
    with pytest.raises(ProviderError) as err:
        list(reply.stream)
    store.add(reply.failed(err.value))
    return err.value


def assert_history_kept(store, text="Say hello in one short sentence."):
    assert store.messages[0].role == "user" and store.messages[0].content == text
    assert store.history() == [{"role": "user", "content": text}]
    store.drop_failed_reply()
    assert store.awaiting_reply  # Retry sends the same message again


def test_streams_over_http_from_a_real_server(llama_server):
    store, reply = ask(compatible_settings(llama_server), temperature=0)
    chunks = list(reply.stream)
    stats = reply.stream.stats
    assert len(chunks) > 1 and "".join(chunks).strip()
    assert stats.provider == "openai-compatible" and stats.model == "smollm2"
    assert stats.ttft_s > 0 and stats.completion_tokens > 0
    assert stats.usage_source in ("reported", "estimated")


def test_max_tokens_reaches_a_compatible_server(llama_server):
    # llama.cpp's server ignores max_completion_tokens; llmapp must send max_tokens
    store, reply = ask(compatible_settings(llama_server), "Tell me a very long story.",
                       max_tokens=8, temperature=0)
    reply.stream.consume()
    assert 1 < reply.stream.stats.chunks <= 8


def test_the_openai_provider_over_http_counts_and_prices(llama_server, monkeypatch):
    # The openai SDK reads OPENAI_BASE_URL: the real OpenAI code path, served locally.
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.base_url)
    settings = resolve(environ={"OPENAI_API_KEY": llama_server.key}, env_file={})
    store, reply = ask(settings, temperature=0)
    assert reply.stream.consume().strip()
    stats = reply.stream.stats
    assert (stats.provider, stats.model) == ("openai", "gpt-5.4-mini")
    assert stats.usage_source == "reported"  # llama.cpp's server reports usage, as OpenAI does
    assert stats.cost_usd == pytest.approx(
        (stats.prompt_tokens * 0.75 + stats.completion_tokens * 4.50) / 1e6)
    assert "≈ $" in stats.summary()


def test_a_wrong_key_gets_a_clear_message_and_history_stays(llama_server):
    store, reply = ask(compatible_settings(llama_server, key="wrong-key"))
    err = fail(store, reply)
    assert err.kind == "auth" and "rejected the API key (401)" in str(err)
    assert llama_server.base_url in str(err) and "wrong-key" not in str(err)
    assert_history_kept(store)


def test_an_unreachable_server_gets_a_clear_message(llama_server):
    url = f"http://127.0.0.1:{free_port()}/v1"
    store, reply = ask(resolve(environ={"OPENAI_COMPATIBLE_BASE_URL": url,
                                        "LLMAPP_MAX_RETRIES": "0"}, env_file={}))
    err = fail(store, reply)
    assert err.kind == "connection" and f"Could not connect to the OpenAI-compatible server at {url}" in str(err)
    assert_history_kept(store)


class RateLimited(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self):
        type(self).hits += 1
        body = json.dumps({"error": {"message": "Rate limit reached", "type": "requests",
                                     "code": "rate_limit_exceeded"}}).encode()
        self.send_response(429)
        self.send_header("Content-Type", "application/json")
        self.send_header("retry-after-ms", "10")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_rate_limits_are_retried_with_backoff_then_reported():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RateLimited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        store, reply = ask(resolve(environ={"OPENAI_COMPATIBLE_BASE_URL": url,
                                            "LLMAPP_MAX_RETRIES": "2"}, env_file={}))
        err = fail(store, reply)
    finally:
        server.shutdown()
    assert RateLimited.hits == 3  # the first try and two retries
    assert err.kind == "rate_limit" and "429" in str(err) and err.retryable
    assert_history_kept(store)


def test_a_silent_server_times_out_after_retrying():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)  # read nothing, answer nothing

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        store, reply = ask(resolve(environ={"OPENAI_COMPATIBLE_BASE_URL": url,
                                            "LLMAPP_REQUEST_TIMEOUT": "0.5",
                                            "LLMAPP_MAX_RETRIES": "1"}, env_file={}))
        started = time.monotonic()
        err = fail(store, reply)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert err.kind == "timeout" and "did not answer in time" in str(err)
    assert len(accepted) == 2 and elapsed >= 1.0
    assert_history_kept(store)


def test_tool_calling_plumbing_over_http(tool_server):
    """Tools go out in OpenAI's format and tool calls come back parsed; the
    tiny model may pick badly (it often calls the calculator with an empty
    expression), but every path must hold."""
    from llmapp.agent import build_agent, run_agent
    from llmapp.providers import get_provider
    from llmapp.tools import calculator, word_count

    settings = compatible_settings(tool_server)
    model = get_provider("openai-compatible").chat_model(
        settings, GenerationParams(temperature=0.7, max_tokens=60))
    for _ in range(3):
        reply = model.bind_tools([calculator, word_count]).invoke(
            "Use the calculator to compute 23*19.")
        for tool_call in reply.tool_calls:
            assert tool_call["name"] in ("calculator", "word_count")
            assert isinstance(tool_call["args"], dict) and tool_call["id"]
        assert reply.tool_calls or reply.invalid_tool_calls or reply.text.strip()
    events = list(run_agent(build_agent(model, [calculator, word_count], max_model_calls=3),
                            "What is 23*19? Use the calculator."))
    assert events and events[-1].kind in ("answer", "limit")
    calls = [e for e in events if e.kind == "tool_call"]
    results = [e for e in events if e.kind == "tool_result"]
    assert len(results) == len(calls)  # every call got an observation, error or not


class Recording(BaseHTTPRequestHandler):
    """An OpenAI-shaped stub that records each request: a model object with a
    shutdown date, and a one-word streamed chat completion."""

    bodies: list[dict] = []
    models: dict[str, dict] = {"gpt-4.1-mini": {"id": "gpt-4.1-mini", "object": "model",
                                                "shutdown_date": 1799884800},
                               "gpt-5.4-mini": {"id": "gpt-5.4-mini", "object": "model"}}

    def _send(self, status, payload, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        model = self.path.rsplit("/", 1)[-1]
        if model in self.models:
            self._send(200, self.models[model])
        else:
            self._send(404, {"error": {"message": "no such model"}})

    def do_POST(self):
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0,
                 "model": "gpt-5.4-mini", "choices": [{"index": 0, "delta": {"content": "Hi"},
                                                       "finish_reason": "stop"}]}
        self._send(200, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode(),
                   "text/event-stream")

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_server(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recording.bodies = []
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
    yield
    server.shutdown()


def test_the_default_openai_model_gets_reasoning_model_parameters(recording_server):
    settings = resolve(environ={"OPENAI_API_KEY": "sk-test"}, env_file={})
    store, reply = ask(settings, temperature=0.3, top_p=0.9, max_tokens=40)
    assert reply.stream.consume() == "Hi"
    [body] = Recording.bodies
    assert body["model"] == "gpt-5.4-mini" and body["max_completion_tokens"] == 40
    assert "max_tokens" not in body and "temperature" not in body and "top_p" not in body


def test_a_model_with_a_shutdown_date_is_announced(recording_server):
    from llmapp.providers import get_provider

    openai = get_provider("openai")
    old = resolve(environ={"OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "gpt-4.1-mini"},
                  env_file={})
    notice = openai.shutdown_notice(old)
    assert "gpt-4.1-mini" in notice and "2027-01-14" in notice and "OPENAI_MODEL" in notice
    assert "sk-test" not in notice
    current = resolve(environ={"OPENAI_API_KEY": "sk-test"}, env_file={})
    assert openai.shutdown_notice(current) is None
    assert openai.shutdown_notice(resolve(environ={}, env_file={})) is None  # no key, no request
