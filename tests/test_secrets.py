"""Secrets that stay secret (issue 28, item 6): database URLs parsed and
masked with SQLAlchemy, configured secrets scrubbed from upstream errors,
logs and API error bodies, credentials in base URLs masked. Real servers
on loopback: an OpenAI-compatible one that echoes the key back, and
PostgreSQL ports where nothing listens."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import free_port, run_cli

from llmapp.errors import ProviderError
from llmapp.secrets import mask_base_url, scrub
from llmapp.settings import resolve
from llmapp.storage import Database, StoreError, database_url, mask_url

KEY = "sk-echoed-Zq81vXk3Lm0pW7"
PASSWORDS = ("pa ss-W0rd!x", "p@ss-W0rd!y", "Qw3rty-Secret-z")


def _urls(port: int) -> list[tuple[str, str]]:
    """``(url, password)``: a space, an unescaped @, a ``password=`` parameter."""
    return [(f"postgresql://app:{PASSWORDS[0]}@127.0.0.1:{port}/chat", PASSWORDS[0]),
            (f"postgresql://app:{PASSWORDS[1]}@127.0.0.1:{port}/chat", PASSWORDS[1]),
            (f"postgresql://app@127.0.0.1:{port}/chat?password={PASSWORDS[2]}&sslmode=disable",
             PASSWORDS[2])]


@pytest.mark.parametrize("case", range(3))
def test_database_urls_never_show_the_password(case):
    """Regression (issue 28): a space, an unescaped @ or ``?password=`` in a
    PostgreSQL URL showed the password (or part of it) in the message."""
    port = free_port()  # nothing listens: the connection is refused
    url, password = _urls(port)[case]
    shown = mask_url(database_url(url))
    assert "***" in shown and "127.0.0.1" in shown
    assert not any(piece in shown for piece in (password, password.split("@")[-1], "W0rd"))
    with pytest.raises(StoreError, match="cannot be reached") as err:
        Database(url)
    assert "W0rd" not in str(err.value) and "Secret" not in str(err.value)
    assert f"127.0.0.1:{port}/chat" in str(err.value)


def test_an_unescaped_at_sign_stays_in_the_password():
    """Read as urllib.parse does: the last @ ends the user information."""
    url = database_url("postgres://app:p@ss@db.example.com:5433/chat")
    assert url == "postgresql+psycopg://app:p%40ss@db.example.com:5433/chat"
    assert mask_url(url) == "postgresql+psycopg://app:***@db.example.com:5433/chat"


@pytest.mark.parametrize("url", ["postgresql://app:Hunter-22x@db:abc/chat",
                                 "postgresql://app:Hunter-22x@[::1/chat"])
def test_an_unreadable_database_url_is_refused_without_echoing_it(url):
    """Regression: a bad port or bracket ended in a raw ValueError (whose
    text may quote the password)."""
    with pytest.raises(StoreError, match="not a URL SQLAlchemy can read") as err:
        Database(url)
    assert "Hunter" not in str(err.value)
    assert mask_url(url) == "postgresql://***"
    cli = run_cli("db", "status", "--url", url)
    assert cli.returncode == 2 and "Hunter" not in cli.stderr + cli.stdout
    assert "LLMAPP_DATABASE_URL" in cli.stderr and "Traceback" not in cli.stderr


def test_the_db_command_masks_an_at_sign_password():
    url = _urls(free_port())[1][0]
    cli = run_cli("db", "status", "--url", url)
    assert cli.returncode == 1 and "cannot be reached" in cli.stderr
    assert "W0rd" not in cli.stderr + cli.stdout and "Traceback" not in cli.stderr


class Echo(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that rejects every chat request with a
    400 whose message echoes the key it was sent."""

    def do_GET(self):
        self._json(200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        self._json(400, {"error": {"message": f"Invalid model for API key {key}.",
                                   "type": "invalid_request_error"}})

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_an_upstream_error_that_echoes_the_key_is_scrubbed(echo_server):
    """Regression (issue 28): the key came back in the printed error."""
    cli = run_cli("-v", "chat", "hello", "--provider", "openai-compatible", "--base-url",
                  echo_server, "--model", "echo", OPENAI_COMPATIBLE_API_KEY=KEY,
                  LLMAPP_CACHE_MODE="off", LLMAPP_SAFETY_LEVEL="off")
    assert cli.returncode == 1 and "rejected the request (400)" in cli.stderr
    assert "Invalid model for API key ***" in cli.stderr
    assert KEY not in cli.stderr + cli.stdout


def test_library_errors_api_bodies_and_logs_are_scrubbed(caplog):
    from llmapp.api.schemas import error_body

    resolve(environ={"OPENAI_API_KEY": KEY,
                     "LLMAPP_API_KEY": "api-key-Fz0q77",
                     "LLMAPP_DATABASE_URL": f"postgresql://app:{PASSWORDS[2]}@db/chat"},
            env_file={})
    said = f"upstream said {KEY}, api-key-Fz0q77 and {PASSWORDS[2]}"
    assert KEY not in str(ProviderError(said)) and "Fz0q77" not in str(ProviderError(said))
    assert PASSWORDS[2] not in str(ProviderError(said))
    assert KEY not in json.dumps(error_body(400, said))
    with caplog.at_level(logging.INFO):
        try:
            raise RuntimeError(f"boom with {KEY}")
        except RuntimeError as exc:
            logging.getLogger("llmapp.test").error("failed: %s", said, exc_info=exc)
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "failed: upstream said ***" in logged and "boom with ***" in logged
    assert KEY not in logged and "Fz0q77" not in logged and PASSWORDS[2] not in logged
    assert scrub("short words stay: admin, app, chat") == "short words stay: admin, app, chat"


@pytest.mark.parametrize("url,shown", [
    ("http://bob:Pw-for-bob-123@host.example:8080/v1",
     "http://bob:***@host.example:8080/v1"),
    ("https://tok-Abc123456789@host.example/v1", "https://***@host.example/v1"),
    ("https://host.example/v1?api_key=qk-Secret-987&x=1",
     "https://host.example/v1?api_key=***&x=***"),
    ("http://[::1]:11434/v1", "http://[::1]:11434/v1"),
    ("http://bad:port@host:99999/v1", "http://***"),
])
def test_base_urls_are_shown_without_credentials(url, shown):
    assert mask_base_url(url) == shown


def test_doctor_masks_credentials_in_the_base_url():
    """Regression (issue 28): ``llmapp doctor`` printed the base URL whole."""
    port = free_port()
    url = f"http://bob:Pw-for-bob-123@127.0.0.1:{port}/v1?api_key=qk-Secret-987"
    cli = run_cli("doctor", OPENAI_COMPATIBLE_BASE_URL=url)
    out = cli.stdout + cli.stderr
    assert f"http://bob:***@127.0.0.1:{port}/v1?api_key=***" in out
    assert "Pw-for-bob" not in out and "qk-Secret" not in out and "Traceback" not in out
