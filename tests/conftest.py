"""Shared fixtures: a clean environment, and real servers on localhost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import postgres as postgres_server
import pytest
from helpers import ROOT, SERVER_KEY, Server, free_port, wait_for_http
from streamlit.testing.v1 import AppTest

from llmapp.settings import SPECS, Settings, resolve


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
              tmp_path) -> None:
    """No setting leaks in from the machine: no key, no .env, a fresh tiktoken
    cache, and a database of the test's own (conversations and the response
    cache), so no test is served another's cached reply."""
    for name in (*SPECS, "OPENAI_BASE_URL", "LLMAPP_SCRIPTED_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMAPP_DATABASE_URL", f"sqlite:///{tmp_path}/llmapp.sqlite3")
    monkeypatch.setenv("LLMAPP_ENV_FILE", str(tmp_path_factory.getbasetemp() / "absent.env"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tiktoken"))


@pytest.fixture
def local_settings() -> Settings:
    """Settings with nothing configured: the bundled local model."""
    return resolve(environ={}, env_file={})


def _serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = (tmp_path_factory.mktemp("llama_server") / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "serve_gguf.py"), str(port),
                             SERVER_KEY], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v1/models", 60, proc)
        yield Server(f"http://127.0.0.1:{port}/v1", SERVER_KEY)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llama.cpp's server (``tests/serve_gguf.py``) serving the bundled model
    over HTTP on localhost, requiring the API key ``SERVER_KEY``, with
    OpenAI-style tool calling."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="session")
def tool_server(llama_server: Server) -> Server:
    """The same server: llama.cpp's server parses tool calls itself."""
    return llama_server


@pytest.fixture
def app() -> Callable[..., AppTest]:
    """Open a page under AppTest with optional secrets: ``app("Home.py", KEY="v")``."""
    def open_page(path: str, **secrets: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / path), default_timeout=120)
        for name, value in secrets.items():
            at.secrets[name] = value
        return at.run()
    return open_page


@pytest.fixture(scope="session")
def postgres() -> Iterator[postgres_server.PostgresServer]:
    """A real PostgreSQL server on loopback (Debian's package, run as a
    non-root user), for the whole session. Missing PostgreSQL fails the run
    in CI and skips elsewhere."""
    import os

    try:
        server = postgres_server.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A new, empty database of each kind: a SQLite file, then a PostgreSQL
    database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/conversations.sqlite3"
    return request.getfixturevalue("postgres").create_database()
