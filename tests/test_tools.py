"""Stage 5 tools, for real: arithmetic, clock, fetch guards against a local
HTTP server, offline behaviour, and the knowledge base."""

import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import chroma_settings
from llmapp.tools import (MAX_EXPRESSION, ToolError, calculate, calculator, check_url,
                          current_datetime, fetch_text, make_fetch_url,
                          make_knowledge_base_tool, network_available, web_search, word_count)


@pytest.mark.parametrize("expression,value", [
    ("23 * 19", 437), ("(2 + 3) ** 2 / 5", 5.0), ("7 // 2", 3), ("-7 % 3", 2), ("2 ^ 10", 1024),
    ("1e3 + .5", 1000.5), ("-(-4)", 4), ("10 ** 1000 // 10 ** 999", 10)])
def test_arithmetic(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize("expression,words", [
    ("__import__('os').system('id')", "a function call"), ("open('/etc/passwd')", "a function call"),
    ("x + 1", "the name 'x'"), ("(1).__class__", "attribute access"),
    ("[1, 2][0]", "not Subscript"), ("'a' * 3", "not Constant"), ("lambda: 1", "not Lambda"),
    ("9 ** 9 ** 9", "too large"), ("10 ** 5000", "too large"), ("2 ** 3.5e9", "too large"),
    ("1 / 0", "Division by zero"), ("(-8) ** 0.5", "not a real number"), ("", "empty"),
    ("1 +", "not arithmetic"), ("1" * (MAX_EXPRESSION + 1), "longer than"),
])
def test_the_calculator_refuses_everything_but_arithmetic(expression, words):
    with pytest.raises(ToolError, match=words):
        calculate(expression)


def test_calculator_fuzz_agrees_with_python_on_plain_arithmetic():
    rng = random.Random(7)
    for _ in range(300):
        a, b, c = (rng.randint(-50, 50) for _ in range(3))
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        expression = f"{a} {op1} ({b} {op2} {c})"
        assert calculate(expression) == eval(expression)  # noqa: S307 - the reference
    for _ in range(200):  # random junk never escapes as anything but ToolError
        junk = "".join(rng.choice("0123456789+-*/()._abcxyz'[] ") for _ in range(12))
        try:
            calculate(junk)
        except ToolError:
            pass


def test_tools_are_typed_for_tool_calling():
    assert calculator.invoke({"expression": "6 * 7"}) == "42"
    assert calculator.args["expression"]["type"] == "string"
    assert "arithmetic" in calculator.description
    assert word_count.invoke({"text": "one two  three"}) == \
        "3 words, 14 characters (11 without spaces)"


def test_current_datetime_names_its_zone():
    text = current_datetime.invoke({"timezone": "Asia/Tokyo"})
    assert "(Asia/Tokyo, UTC+0900)" in text and str(time.gmtime().tm_year) in text
    with pytest.raises(ToolError, match="Unknown time zone 'Mars/Olympus'"):
        current_datetime.invoke({"timezone": "Mars/Olympus"})


@pytest.mark.parametrize("url,words", [
    ("file:///etc/passwd", "Only http and https"), ("ftp://example.com/x", "Only http and https"),
    ("http://127.0.0.1:8000/", "local or private"), ("http://localhost/", "local or private"),
    ("http://10.1.2.3/", "local or private"), ("http://192.168.0.1/", "local or private"),
    ("http://169.254.169.254/latest/meta-data/", "local or private"),
    ("http://[::1]/", "local or private"), ("http:///nohost", "no host"),
])
def test_fetch_refuses_files_loopback_and_private_addresses(url, words):
    with pytest.raises(ToolError, match=words):
        check_url(url)


class Page(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/big":
            body = b"x" * 2_000_000
            kind = "text/plain"
        elif self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        else:
            body = b"<html><script>evil()</script><h1>Title</h1><p>Hello there.</p></html>"
            kind = "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_fetch_reads_a_page_when_local_addresses_are_allowed(local_site):
    assert fetch_text(f"{local_site}/", allow_private=True) == "Title\nHello there."
    with pytest.raises(ToolError, match="local or private"):
        make_fetch_url().invoke({"url": f"{local_site}/"})
    assert make_fetch_url(allow_private=True).invoke({"url": f"{local_site}/"}).startswith("Title")


def test_fetch_limits_size_and_guards_redirects(local_site):
    with pytest.raises(ToolError, match="larger than 1000 kB"):
        fetch_text(f"{local_site}/big", allow_private=True)
    with pytest.raises(ToolError, match="302"):  # a redirect to file:// is not followed
        fetch_text(f"{local_site}/hop", allow_private=True)


def test_fetch_times_out_instead_of_hanging():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(ToolError, match="did not answer within 1 s"):
            fetch_text(f"http://127.0.0.1:{listener.getsockname()[1]}/", allow_private=True,
                       timeout_s=1)
        assert time.monotonic() - started < 5
    finally:
        listener.close()


@pytest.mark.skipif(network_available(), reason="checks the offline path")
def test_online_tools_say_offline_quickly():
    started = time.monotonic()
    with pytest.raises(ToolError, match="Offline"):
        web_search.invoke({"query": "retrieval augmented generation"})
    with pytest.raises(ToolError, match="Offline"):
        make_fetch_url().invoke({"url": "https://example.com/"})
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_knowledge_base_tool_returns_cited_snippets(tmp_path):
    from llmapp.rag.store import knowledge_base

    kb = knowledge_base(chroma_settings(tmp_path / "chroma"))
    kb.ingest("notes", b"# Launch\n\nThe launch code is 4242.\n", "notes.md")
    tool = make_knowledge_base_tool(kb, "notes", k=1)
    out = tool.invoke({"query": "What is the launch code?"})
    assert out.startswith("[1] notes.md, chunk 0\n") and "4242" in out
