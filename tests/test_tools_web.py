"""The fetcher under attack (issue 28, item 4): DNS rebinding, redirects
inward, shared and IPv4-carrying addresses, malformed URLs, TLS names.

Real HTTP(S) servers on loopback. Where a test needs an address the fetcher
may open, it gives the fetcher (llmapp's own boundary) a predicate that
allows 127.0.0.1 only, standing in for "a public address", and a resolver
that stands in for DNS; 127.0.0.2 then plays the inward address."""

import ipaddress
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls

from llmapp.tools import ToolError, check_url, fetch_text
from llmapp.tools.web import FetchPlan, Fetcher, is_public_address, plan_fetch

PUBLIC = ipaddress.ip_address("127.0.0.1")


def only_public_stand_in(address) -> bool:
    return address == PUBLIC


class Recorder(BaseHTTPRequestHandler):
    """Answers ``/`` with its server's name, ``/hop?to=URL`` with a 302 to
    URL; records ``(Host header, path)`` of every request."""

    def do_GET(self):
        self.server.seen.append((self.headers.get("Host"), self.path))
        if self.path.startswith("/hop?to="):
            self.send_response(302)
            self.send_header("Location", self.path[len("/hop?to="):])
            self.end_headers()
            return
        body = f"<p>{self.server.name} page</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=bogus-charset")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(address, port, name, wrap=None):
    server = ThreadingHTTPServer((address, port), Recorder)
    server.name, server.seen = name, []
    if wrap is not None:
        server.socket = wrap(server.socket)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def two_servers():
    """A "public" server on 127.0.0.1 and an "inward" one on 127.0.0.2, on
    the same port, so only the address tells them apart."""
    public = _serve("127.0.0.1", 0, "public")
    inward = _serve("127.0.0.2", public.server_port, "inward")
    yield public, inward
    for server in (public, inward):
        server.shutdown()
        server.server_close()


def test_a_rebinding_resolver_never_reaches_the_inward_address(two_servers):
    """Regression (issue 28): the host was resolved once for the check and
    again to connect, so a DNS answer that changed in between reached
    loopback. Now the first answer is checked and connected to; the
    rebinding resolver's later answer (the inward address) is never asked."""
    public, inward = two_servers
    calls = []

    def rebinding(host, port):
        calls.append((host, port))
        return ["127.0.0.1"] if len(calls) == 1 else ["127.0.0.2"]

    fetcher = Fetcher(resolve=rebinding, allowed=only_public_stand_in)
    url = f"http://rebind.test:{public.server_port}/"
    assert fetcher.fetch_text(url) == "public page"
    assert calls == [("rebind.test", public.server_port)]
    assert public.seen == [(f"rebind.test:{public.server_port}", "/")]  # Host kept
    assert inward.seen == []


def test_a_resolver_answering_inward_first_is_refused_before_connecting(two_servers):
    public, inward = two_servers
    fetcher = Fetcher(resolve=lambda host, port: ["127.0.0.2", "127.0.0.1"],
                      allowed=only_public_stand_in)
    with pytest.raises(ToolError, match=r"local or private address \(127.0.0.2\)"):
        fetcher.fetch_text(f"http://mixed.test:{public.server_port}/")
    assert public.seen == [] and inward.seen == []


def test_every_redirect_hop_is_checked(two_servers):
    public, inward = two_servers
    port = public.server_port
    names = {"public.test": ["127.0.0.1"], "inward.test": ["127.0.0.2"]}
    fetcher = Fetcher(resolve=lambda host, _: names[host], allowed=only_public_stand_in)
    with pytest.raises(ToolError, match=r"redirected \(HTTP 302\) to http://inward.test.*"
                                        r"local or private address \(127.0.0.2\)"):
        fetcher.fetch_text(f"http://public.test:{port}/hop?to=http://inward.test:{port}/")
    with pytest.raises(ToolError, match="local or private address"):  # an IP literal too
        fetcher.fetch_text(f"http://public.test:{port}/hop?to=http://127.0.0.2:{port}/")
    assert inward.seen == []
    assert fetcher.fetch_text(f"http://public.test:{port}/hop?to=/") == "public page"
    chain = f"http://public.test:{port}/hop?to=http://public.test:{port}/hop?to=/hop"
    with pytest.raises(ToolError, match="redirected more than 2 times"):
        Fetcher(resolve=lambda host, _: names[host], allowed=only_public_stand_in,
                max_redirects=2).fetch_text(chain.replace("to=/hop", "to=/hop?to=/hop?to=/"))


def test_the_default_check_refuses_loopback_from_a_resolver(two_servers):
    public, _ = two_servers
    for answer in (["127.0.0.1"], ["::ffff:127.0.0.1"], ["93.184.215.14", "127.0.0.1"]):
        with pytest.raises(ToolError, match="local or private"):
            Fetcher(resolve=lambda host, port, a=answer: a).fetch_text(
                f"http://public.test:{public.server_port}/")
    assert public.seen == []


@pytest.mark.parametrize("url", [
    "http://100.64.0.1/", "http://100.127.255.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:100.64.0.1]/",
    "http://[2002:7f00:1::]/",          # 6to4 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",     # NAT64 of 169.254.169.254
    "http://224.0.0.1/", "http://0.0.0.0/", "http://[::]/",
])
def test_shared_multicast_and_ipv4_carrying_addresses_are_refused(url):
    """Regression (issue 28): 100.64.0.0/10 (shared address space, where some
    clouds put metadata services) passed; so did 6to4 and NAT64 addresses
    that lead to loopback or link-local."""
    with pytest.raises(ToolError, match="local or private"):
        check_url(url)


@pytest.mark.parametrize("url,words", [
    ("http://example.com:99999/", "bad port"), ("http://example.com:0/", "bad port"),
    ("http://example.com:http/", "bad port"), ("http://[::1/", "not a valid URL"),
    ("http://a..b/", "not a valid host name"), ("http://-a.example/", "not a valid host name"),
    (f"http://{'a' * 64}.example/", "not a valid host name"),
    ("http://exa mple.com/", "spaces or control"), ("http://ex\x00ample.com/", "control"),
    ("http://[fe80::zz]/", "not a valid"), ("http://user:pw@example.com/", "user name"),
    ("http://" + "a" * 3000 + ".com/", "longer than"), ("javascript:alert(1)", "Only http"),
])
def test_malformed_urls_are_tool_errors(url, words):
    """Regression (issue 28): these ended in a raw ValueError or UnicodeError."""
    with pytest.raises(ToolError, match=words):
        check_url(url)
    with pytest.raises(ToolError, match=words):
        fetch_text(url)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=120), urls(),
                 st.builds(lambda scheme, host, tail: f"{scheme}://{host}{tail}",
                           st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
                           st.text(max_size=40), st.text(max_size=40))))
def test_any_string_gives_a_fetch_plan_or_a_tool_error(url):
    """URL checking under Hypothesis: a checked plan or a ToolError, never
    another exception; a plan is well-formed. The resolver answers a fixed
    public address (no DNS is asked)."""
    try:
        plan = plan_fetch(url, resolve=lambda host, port: ["93.184.215.14"])
    except ToolError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(plan, FetchPlan) and plan.scheme in ("http", "https")
    assert 1 <= plan.port <= 65535 and plan.target.startswith("/")
    assert plan.host.isascii() and plan.target.isascii() and plan.host
    assert not any(c.isspace() or not c.isprintable() for c in plan.host + plan.target)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.ip_addresses(), min_size=1, max_size=4))
def test_a_plan_holds_only_addresses_that_pass_the_check(addresses):
    answer = [str(a) for a in addresses]
    try:
        plan = plan_fetch("http://any.test/", resolve=lambda host, port: answer)
    except ToolError:
        assert not all(map(is_public_address, addresses))
        return
    assert plan.addresses == tuple(answer) and all(map(is_public_address, addresses))


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_site(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names ``fetch.test``,
    signed by a CA made for this test; yields ``(server, client context
    trusting that CA, the SNI names the server saw)``."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=llmapp test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp_path)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=fetch.test", cwd=tmp_path)
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:fetch.test\n"
                                      "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                                      "keyUsage=digitalSignature\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=tmp_path)
    sni = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server_context.sni_callback = lambda sock, name, ctx: sni.append(name)
    server = _serve("127.0.0.1", 0, "tls",
                    lambda sock: server_context.wrap_socket(sock, server_side=True))
    client_context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    yield server, client_context, sni
    server.shutdown()
    server.server_close()


def test_https_goes_to_the_checked_address_with_sni_and_the_certificate_for_the_name(tls_site):
    server, context, sni = tls_site
    port = server.server_port
    fetcher = Fetcher(resolve=lambda host, _: ["127.0.0.1"], allowed=only_public_stand_in,
                      ssl_context=context)
    assert fetcher.fetch_text(f"https://fetch.test:{port}/") == "tls page"
    assert sni == ["fetch.test"] and server.seen == [(f"fetch.test:{port}", "/")]
    with pytest.raises(ToolError, match="TLS handshake with other.test failed"):
        fetcher.fetch_text(f"https://other.test:{port}/")  # the certificate names fetch.test
    assert server.seen == [(f"fetch.test:{port}", "/")]
