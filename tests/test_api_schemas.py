"""The API's request schema and its gate, in process: any JSON a client sends
gets a 2xx or a 4xx in OpenAI's error shape, never a 5xx (hypothesis); the
key is checked before one byte of the body is read, and the body is capped
(the ASGI receive channel, counted); a 10,000-message history is answered.

The app is the real one (:func:`llmapp.api.app.create_app`) on the scripted
model (llmapp's own test boundary), whose tokens are counted by the bundled
model's tokenizer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from llmapp.api.app import create_app
from llmapp.api.keys import KeyRing, parse_key_table
from llmapp.errors import ConfigError
from llmapp.settings import resolve

pytestmark = pytest.mark.slow

KEYS = {"web": "key-web-0123", "batch": "key-batch-4567"}
AUTH = {"Authorization": f"Bearer {KEYS['web']}"}
URL = "/v1/chat/completions"
CAP = 65_536


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("api_schemas")
    (tmp / "script.json").write_text(json.dumps([{"answer": f"answer {n}"}
                                                 for n in range(5000)]))
    return tmp


@pytest.fixture(autouse=True)
def scripted(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripted model, set after conftest's clean environment."""
    monkeypatch.setenv("LLMAPP_SCRIPTED_MODEL", str(folder / "script.json"))


def app_settings(folder: Path, **extra: str):
    return resolve(environ={"LLMAPP_API_KEYS": json.dumps(KEYS),
                            "LLMAPP_DATABASE_URL": f"sqlite:///{folder}/llmapp.sqlite3",
                            "LLMAPP_CHROMA_PATH": str(folder / "chroma"), **extra},
                   env_file={})


@pytest.fixture(scope="module")
def app(folder: Path):
    return create_app(app_settings(folder, LLMAPP_API_MAX_BODY_BYTES=str(CAP)))


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def is_openai_error(response) -> bool:
    error = response.json().get("error")
    return (isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
            and isinstance(error["message"], str) and error["message"])


# --- any JSON: never a 5xx ----------------------------------------------------

ODD = st.sampled_from(["\ud800", "\udfff", "\x00", "\ud83d", "é", "\u2028", "\ufeff"])
TEXT = st.text(st.characters(exclude_categories=()) | ODD, max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | TEXT
           | st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(TEXT, inner, max_size=3), max_leaves=12)
PLAIN = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
WORDS = st.text(st.characters(categories=["L", "N", "Zs", "P"]), min_size=1, max_size=40)


@st.composite
def valid_requests(draw) -> dict:
    """Requests as an OpenAI client sends them (text may still be odd)."""
    roles = st.sampled_from(["system", "developer", "user", "assistant"])
    text = WORDS | PLAIN | TEXT
    content = text | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}),
                              min_size=1, max_size=2)
    history = draw(st.lists(st.fixed_dictionaries({"role": roles, "content": content}),
                            max_size=3))
    body = {"model": draw(st.sampled_from(["llmapp-chat", "llmapp-agent",
                                           "llmapp-rag:none"])),
            "messages": [*history, {"role": "user", "content": draw(WORDS | PLAIN)}]}
    optional = {"stream": st.booleans(),
                "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
                "temperature": st.floats(0, 2), "top_p": st.floats(0.01, 1),
                "max_tokens": st.integers(1, 64), "max_completion_tokens": st.integers(1, 64),
                "stop": WORDS | st.lists(WORDS, max_size=4), "n": st.just(1),
                "seed": st.integers(), "user": PLAIN | TEXT}
    for name, value in optional.items():
        if draw(st.booleans()):
            body[name] = draw(value)
    return body


@st.composite
def mutants(draw) -> dict:
    """A valid request with one field replaced or added by any JSON."""
    body = draw(valid_requests())
    name = draw(st.sampled_from([*body, "stop", "user", "stream", "max_tokens", "tools",
                                 "n", "temperature", "extra"]))
    body[name] = draw(ANY_JSON)
    return body


ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | TEXT
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | TEXT},
                             optional={"text": TEXT | ANY_JSON})
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES},
    optional={"content": TEXT | st.none() | st.lists(PART, max_size=3) | ANY_JSON,
              "name": TEXT})
SHAPED = st.fixed_dictionaries(
    {"model": st.sampled_from(["llmapp-chat", "llmapp-agent", "llmapp-rag:none"]) | TEXT,
     "messages": st.lists(MESSAGE, max_size=4)})
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(body=valid_requests() | mutants() | SHAPED | ANY_JSON)
def test_any_json_body_gets_a_2xx_or_an_openai_4xx(client, body):
    # json.dumps writes lone surrogates as \ud800 escapes and NaN as NaN, as
    # a careless client would
    response = client.post(URL, content=json.dumps(body).encode(),
                           headers={**AUTH, "Content-Type": "application/json"})
    event(f"status {response.status_code}")  # --hypothesis-show-statistics
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert is_openai_error(response), response.text


@FUZZ
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_get_a_4xx_never_a_5xx(client, raw):
    response = client.post(URL, content=raw, headers={**AUTH,
                                                      "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and is_openai_error(response), response.text


@pytest.mark.parametrize("content", ["a\ud800b", "nul\x00here", "\udfff"])
def test_bad_text_is_a_400_naming_the_field(client, content):
    body = {"model": "llmapp-chat", "messages": [{"role": "user", "content": content}]}
    response = client.post(URL, content=json.dumps(body).encode(),
                           headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_text" and error["param"] == "messages[0].content"


def test_a_lone_surrogate_in_the_model_name_is_a_400_not_a_500(client):
    # the 404's message would echo the name, which cannot be written as UTF-8
    response = client.post(URL, content=b'{"model": "\\ud800", "messages": '
                                        b'[{"role": "user", "content": "hi"}]}',
                           headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


# --- the gate: key first, body capped ----------------------------------------

def scope_of(headers: dict[str, str], path: str = URL) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


def drive(app, headers: dict[str, str], chunk: bytes, chunks: int) -> tuple[int, int, dict]:
    """Run one request through the ASGI app with a body of ``chunks`` pieces;
    return the status, the bytes the app pulled, and the JSON answer."""
    pulled = 0
    left = chunks
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled, left
        if left == 0:
            await asyncio.sleep(3600)  # the client waits; nobody should ask again
        left -= 1
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": left > 0}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope_of(headers), receive, send), 60))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, pulled, json.loads(body)


def test_no_key_is_refused_before_one_byte_of_the_body_is_read(app):
    # 4,000 chunks of 1 MiB: 4 GB the old app would have read and parsed first
    status, pulled, body = drive(app, {"Content-Type": "application/json"},
                                 b" " * 1_048_576, 4000)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert pulled == 0
    status, pulled, _ = drive(app, {"Authorization": "Bearer key-web-0124"}, b" " * 1024, 10)
    assert status == 401 and pulled == 0


def test_a_declared_length_over_the_cap_is_refused_unread(app):
    status, pulled, body = drive(app, {**AUTH, "Content-Length": str(CAP + 1)}, b" ", CAP + 1)
    assert status == 413 and pulled == 0
    assert body["error"]["code"] == "request_too_large" and "65,536" in body["error"]["message"]


def test_a_chunked_body_is_counted_and_refused_past_the_cap(app):
    # no Content-Length: the gate counts, and stops pulling one chunk past the cap
    status, pulled, body = drive(app, AUTH, b" " * 4096, 10_000)
    assert status == 413 and body["error"]["type"] == "invalid_request_error"
    assert CAP < pulled <= CAP + 4096


def test_a_body_under_the_cap_reaches_the_route(app):
    request = json.dumps({"model": "llmapp-chat", "messages": [
        {"role": "user", "content": "Say hi."}]}).encode()
    status, pulled, body = drive(app, {**AUTH, "Content-Type": "application/json"},
                                 request, 1)
    assert status == 200 and pulled == len(request)
    assert body["choices"][0]["message"]["content"].startswith("answer ")


def test_message_count_and_stop_list_are_capped_with_400(folder):
    app = create_app(app_settings(folder, LLMAPP_API_MAX_MESSAGES="5"))
    with TestClient(app) as client:
        many = [{"role": "user", "content": "hi"}] * 6
        response = client.post(URL, json={"model": "llmapp-chat", "messages": many},
                               headers=AUTH)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == {
            "message": "The request has 6 messages; this server takes at most 5 "
                       "(LLMAPP_API_MAX_MESSAGES).", "type": "invalid_request_error",
            "param": "messages", "code": "too_many_messages"}
        response = client.post(URL, json={"model": "llmapp-chat", "messages": many[:1],
                                          "stop": ["a", "b", "c", "d", "e"]}, headers=AUTH)
        assert response.status_code == 400 and response.json()["error"]["param"] == "stop"
        response = client.post(URL, json={"model": "llmapp-chat", "messages": many[:5],
                                          "stop": ["a", "b", "c", "d"]}, headers=AUTH)
        assert response.status_code == 200, response.text


def test_ten_thousand_messages_are_fitted_and_answered(folder):
    """Under the default caps (1 MiB, 10,000 messages); the trimming counts
    each message once at most (tests/test_tokens.py counts the calls)."""
    history = []
    for n in range(5000):
        history += [{"role": "user", "content": f"Question {n}: what is {n} plus one?"},
                    {"role": "assistant", "content": f"{n} plus one is {n + 1}."}]
    history[-1] = {"role": "user", "content": "And what is 2 plus 2?"}
    assert len(history) == 10_000
    with TestClient(create_app(app_settings(folder))) as client:
        response = client.post(URL, json={"model": "llmapp-chat", "messages": history},
                               headers=AUTH)
    assert response.status_code == 200, response.text
    notices = response.json()["llmapp"]["notices"]
    assert any("Dropped the oldest" in n for n in notices), notices


# --- keys ----------------------------------------------------------------------

def test_each_key_is_its_principal_and_compared_in_full():
    ring = KeyRing.from_settings(resolve(environ={"LLMAPP_API_KEYS": json.dumps(KEYS),
                                                  "LLMAPP_API_KEY": "key-single-89"},
                                         env_file={}))
    assert ring.principal("Bearer key-web-0123") == "web"
    assert ring.principal("bearer key-batch-4567") == "batch"
    assert ring.principal("Bearer key-single-89") == "default"
    for wrong in ("Bearer key-web-012", "Bearer key-web-01234", "Basic key-web-0123",
                  "key-web-0123", "Bearer ", "", None):
        assert ring.principal(wrong) is None
    assert KeyRing.from_settings(resolve(environ={}, env_file={})).principal(None) == "anonymous"


@pytest.mark.parametrize("value, says", [
    ("not json", "must be a JSON object"),
    ('["key-web-0123"]', "must be a JSON object"),
    ('{"web": ""}', "no key"),
    ('{"we b": "key-web-0123"}', "names are 1-64"),
    ('{"a": "key-same-0000", "b": "key-same-0000"}', "one key to two names"),
])
def test_a_bad_key_table_is_refused_without_showing_a_key(value, says):
    with pytest.raises(ValueError, match=says):
        parse_key_table(value)
    with pytest.raises(ConfigError) as err:
        resolve(environ={"LLMAPP_API_KEYS": value}, env_file={})
    assert "key-web-0123" not in str(err.value) and "key-same" not in str(err.value)


def test_the_single_key_keeps_working_beside_the_table_and_cannot_be_shadowed():
    clash = resolve(environ={"LLMAPP_API_KEYS": '{"default": "key-x-1111"}',
                             "LLMAPP_API_KEY": "key-single-89"}, env_file={})
    with pytest.raises(ConfigError, match="names 'default'"):
        KeyRing.from_settings(clash)
    shared = resolve(environ={"LLMAPP_API_KEYS": '{"web": "key-single-89"}',
                              "LLMAPP_API_KEY": "key-single-89"}, env_file={})
    with pytest.raises(ConfigError, match="another name"):
        KeyRing.from_settings(shared)
    settings = resolve(environ={"LLMAPP_API_KEYS": json.dumps(KEYS)}, env_file={})
    assert "key-web-0123" not in repr(settings)
