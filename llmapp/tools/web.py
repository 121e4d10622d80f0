"""The online tools: ``fetch_url`` (a web page as text: http(s) only, size
and time limits, no loopback or private addresses by default) and
``web_search`` (with ``ddgs``). Both say "offline" quickly when there is no
network; they never hang.

How the fetcher keeps from being turned inward (server-side request forgery):

- **Resolve once, connect to what was checked.** Each hop's host is resolved
  once (:func:`resolve_host`), every address it resolves to is checked
  (:func:`is_public_address`), and the connection goes to a checked address.
  A second lookup, which a rebinding DNS server can answer with 127.0.0.1,
  never happens. The request still carries the host name: in the ``Host``
  header and, for https, in TLS SNI and the certificate check
  (``ssl.SSLContext.wrap_socket(server_hostname=...)``).
- **Public addresses only.** An address must be ``is_global`` in
  :mod:`ipaddress` (IANA's special-purpose registries: this refuses
  loopback, private, link-local, shared 100.64.0.0/10, documentation and
  reserved ranges) and not multicast; so must any IPv4 address it carries
  (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64 ``64:ff9b::/96``).
- **Every redirect is a new hop,** planned and checked the same way.
- **Malformed URLs are refused** with a :class:`ToolError` that says what is
  wrong (a port out of range, an unclosed ``[``, an empty label).
"""

from __future__ import annotations

import codecs
import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from langchain_core.tools import BaseTool, tool

from llmapp.tools.base import ToolError, ToolGuide, guided

FETCH_MAX_BYTES = 1_000_000
FETCH_TIMEOUT_S = 5.0
"""Longest wait for a connection or for the next bytes of a page, in seconds."""
FETCH_DEADLINE_FACTOR = 3
"""One hop (connect, send, read the whole page) ends after this many
``timeout_s``: a server that drips a byte at a time cannot hold a fetch."""
FETCH_MAX_REDIRECTS = 5
MAX_URL_CHARS = 2048
"""Longest URL the fetcher accepts, in characters (browsers and servers
commonly cap near 2,000)."""
ONLINE_TIMEOUT_S = 5.0
USER_AGENT = "llmapp/0.1 (+fetch_url tool)"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses`` (as text, in the order to try them)."""
Allowed = Callable[[Address], bool]
"""Whether the fetcher may connect to an address."""

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_REDIRECTS = (301, 302, 303, 307, 308)
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def shown_url(url: object, limit: int = 200) -> str:
    """``url`` for a message: cut to ``limit`` characters, with control and
    other unprintable characters escaped, so it stays on one line."""
    text = str(url)
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)


def embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and leads to:
    IPv4-mapped (``::ffff:a.b.c.d``), 6to4 (``2002::/16``), Teredo (server
    and client) and NAT64 (``64:ff9b::/96``, RFC 6052; ``64:ff9b:1::/48``,
    RFC 8215, its last 32 bits). Empty for an IPv4 address."""
    if address.version == 4:
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        found.extend(address.teredo)
    if any(address in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public_address(address: Address) -> bool:
    """Whether the fetcher may connect to ``address`` by default: globally
    reachable (``is_global``, from IANA's IPv4 and IPv6 special-purpose
    address registries, which excludes loopback, private, link-local, shared
    100.64.0.0/10, documentation and reserved ranges), not multicast, and the
    same holds for every IPv4 address it carries (:func:`embedded_ipv4`)."""
    return all(a.is_global and not a.is_multicast for a in (address, *embedded_ipv4(address)))


def allow_any_address(address: Address) -> bool:
    """The predicate of ``LLMAPP_FETCH_ALLOW_PRIVATE``: every address."""
    return True


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for TCP (``socket.getaddrinfo``),
    in the order the system prefers, without repeats.

    Raises:
        ToolError: the name does not resolve (or there is no network).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ToolError(f"Offline, or {shown_url(host)} does not exist: the name does not "
                        "resolve.") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchPlan:
    """One checked request: where to connect and what to ask for.

    Attributes:
        url: the URL as given (for messages and resolving redirects).
        scheme: ``"http"`` or ``"https"``.
        host: the host name in ASCII (IDNA), or the IP address, sent as the
            ``Host`` header and, for https, as TLS SNI and the name the
            certificate must match.
        port: the TCP port (1-65535).
        target: the request target, ``/path?query`` with unsafe characters
            %-escaped (no fragment).
        addresses: the checked addresses, in the order to try them; the
            connection goes to one of these and nowhere else.
    """

    url: str
    scheme: str
    host: str
    port: int
    target: str
    addresses: tuple[str, ...]


def _ascii_host(host: str) -> str:
    """The host as an IP address's text or an ASCII DNS name; raises
    :class:`ToolError` for anything else."""
    if ":" in host or host.replace(".", "").isdigit():
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            if ":" in host:
                raise ToolError(f"{shown_url(host)} is not a valid IPv6 address.") from None
    name = host[:-1] if host.endswith(".") else host
    try:
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ToolError(f"{shown_url(host)} is not a valid host name (an empty or too long "
                        "label, or characters a host name cannot have).") from None
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ToolError(f"{shown_url(host)} is not a valid host name: a host name is labels "
                        "of letters, digits and hyphens joined by single dots.")
    return name


def parse_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, target)`` of an http(s) URL, checked for form
    only (no lookup).

    Raises:
        ToolError: not text, too long, not http(s), user information, no
            host, a bad host name or IP address, or a port that is not a
            number from 1 to 65535.
    """
    if not isinstance(url, str):
        raise ToolError("The URL must be text.")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise ToolError(f"The URL is longer than {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed [ or a bad IPv6 literal
        raise ToolError(f"{shown_url(url)} is not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ToolError(f"Only http and https URLs can be fetched, not "
                        f"{shown_url(scheme, 20) or 'this'}.")
    if "@" in parts.netloc:
        raise ToolError("URLs with a user name or password are not fetched.")
    if any(not c.isprintable() or c.isspace() for c in parts.netloc):
        raise ToolError(f"{shown_url(url)} is not a valid URL: its host part holds spaces or "
                        "control characters.")
    if not parts.hostname:
        raise ToolError("The URL has no host.")
    try:
        port = parts.port
    except ValueError:
        raise ToolError(f"{shown_url(url)} has a bad port: it must be a number from 1 to "
                        "65535.") from None
    if port == 0:
        raise ToolError(f"{shown_url(url)} has a bad port: it must be a number from 1 to 65535.")
    host = _ascii_host(parts.hostname)
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return scheme, host, port or (443 if scheme == "https" else 80), target


def plan_fetch(url: str, *, resolve: Resolve = resolve_host,
               allowed: Allowed = is_public_address) -> FetchPlan:
    """Check ``url`` and resolve its host once: the request the fetcher may make.

    Args:
        url: an http(s) URL.
        resolve: ``(host, port) -> addresses``; called once, and only for a
            host name (an IP address is taken as it is).
        allowed: the check every resolved address must pass.

    Raises:
        ToolError: a malformed or refused URL (see :func:`parse_url`), a
            name that does not resolve, or any address ``allowed`` refuses.
    """
    scheme, host, port, target = parse_url(url)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = list(resolve(host, port))
    if not addresses:
        raise ToolError(f"{host} does not resolve to any address.")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise ToolError(f"{host} resolved to {shown_url(text, 60)}, which is not an IP "
                            "address.") from None
        if not allowed(address):
            carried = ", ".join(map(str, embedded_ipv4(address)))
            via = f", which leads to {carried}" if carried else ""
            raise ToolError(f"{host} is a local or private address ({address}{via}); fetching "
                            "it is not allowed.")
    return FetchPlan(url.strip(), scheme, host, port, target, tuple(addresses))


def check_url(url: str, allow_private: bool = False) -> str:
    """The host of a URL the fetcher may open (see :func:`plan_fetch`).

    Raises:
        ToolError: malformed, not http(s), no host, or (unless
            ``allow_private``) a host with any address that is not public.
    """
    allowed = allow_any_address if allow_private else is_public_address
    return plan_fetch(url, allowed=allowed).host


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` for a request to ``host``: the
    socket goes to the checked address, the ``Host`` header names the host
    (http.client builds it from ``host`` and ``port``)."""

    def __init__(self, plan: FetchPlan, address: str, timeout_s: float) -> None:
        super().__init__(plan.host, plan.port, timeout=timeout_s)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """As :class:`_PinnedHTTPConnection`, then TLS with SNI and certificate
    verification for ``host`` (``ssl.create_default_context()``: the
    system's CAs, hostname checking on)."""

    default_port = 443

    def __init__(self, plan: FetchPlan, address: str, timeout_s: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(plan, address, timeout_s)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


@dataclass(frozen=True)
class _Answer:
    status: int
    location: str | None
    kind: str
    charset: str | None
    data: bytes


def _charset(name: str | None) -> str:
    if name:
        try:
            return codecs.lookup(name).name
        except LookupError:
            pass
    return "utf-8"


def page_text(data: bytes, kind: str, charset: str | None) -> str:
    """A page's text: decoded (unknown charsets read as UTF-8, bad bytes
    replaced), HTML stripped of tags, scripts and styles with Beautiful
    Soup, blank lines dropped."""
    text = data.decode(_charset(charset), errors="replace")
    if kind in ("text/html", "application/xhtml+xml"):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript"]):
            tag.decompose()
        text = soup.get_text("\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines)


@dataclass
class Fetcher:
    """Fetches web pages without being turned inward (see the module's notes).

    Attributes:
        allow_private: let it open any address (``LLMAPP_FETCH_ALLOW_PRIVATE``);
            it still resolves once and connects to what it resolved.
        resolve: ``(host, port) -> addresses``, by default the system's
            resolver (:func:`resolve_host`).
        allowed: the check every address passes; by default
            :func:`is_public_address` (or :func:`allow_any_address` when
            ``allow_private``).
        max_bytes: the largest page, in bytes.
        timeout_s: the longest wait to connect or for the next bytes, in
            seconds; a whole hop ends after ``FETCH_DEADLINE_FACTOR`` times it.
        max_redirects: redirects followed before giving up.
        ssl_context: the TLS settings for https; by default
            ``ssl.create_default_context()`` (the system's CAs, hostname
            checking on). Tests give one that trusts their own CA.
    """

    allow_private: bool = False
    resolve: Resolve = resolve_host
    allowed: Allowed | None = None
    max_bytes: int = FETCH_MAX_BYTES
    timeout_s: float = FETCH_TIMEOUT_S
    max_redirects: int = FETCH_MAX_REDIRECTS
    ssl_context: ssl.SSLContext | None = None

    def plan(self, url: str) -> FetchPlan:
        """The checked request for ``url`` (:func:`plan_fetch` with this
        fetcher's resolver and check).

        Raises:
            ToolError: as :func:`plan_fetch`.
        """
        allowed = self.allowed or (allow_any_address if self.allow_private
                                   else is_public_address)
        return plan_fetch(url, resolve=self.resolve, allowed=allowed)

    def fetch_text(self, url: str) -> str:
        """A web page's text (:func:`page_text`). Redirects are followed,
        each one planned and checked like the first URL.

        Raises:
            ToolError: a malformed or refused URL (at any hop), offline, a
                timeout, an HTTP error, too many redirects, or a page over
                ``max_bytes``.
        """
        plan = self.plan(url)
        for _ in range(self.max_redirects + 1):
            answer = self._get(plan)
            if answer.status not in _REDIRECTS:
                break
            if not answer.location:
                raise ToolError(f"The server answered HTTP {answer.status} for "
                                f"{shown_url(plan.url)} without saying where to go.")
            target = urljoin(plan.url, answer.location)
            try:
                plan = self.plan(target)
            except ToolError as exc:
                raise ToolError(f"{shown_url(plan.url)} redirected (HTTP {answer.status}) to "
                                f"{shown_url(target)}, which is not followed: {exc}") from None
        else:
            raise ToolError(f"{shown_url(url)} redirected more than {self.max_redirects} times; "
                            "not followed further.")
        if answer.status >= 300:
            raise ToolError(f"The server answered HTTP {answer.status} for {shown_url(plan.url)}.")
        if len(answer.data) > self.max_bytes:
            raise ToolError(f"The page is larger than {self.max_bytes // 1000} kB; not fetched.")
        return page_text(answer.data, answer.kind, answer.charset)

    def _connection(self, plan: FetchPlan, address: str) -> _PinnedHTTPConnection:
        if plan.scheme == "https":
            return _PinnedHTTPSConnection(plan, address, self.timeout_s,
                                          self.ssl_context or ssl.create_default_context())
        return _PinnedHTTPConnection(plan, address, self.timeout_s)

    def _get(self, plan: FetchPlan) -> _Answer:
        """GET ``plan.target`` from the first of ``plan.addresses`` that
        accepts a connection."""
        where = shown_url(plan.url)
        deadline = time.monotonic() + FETCH_DEADLINE_FACTOR * self.timeout_s
        failure: BaseException | None = None
        for address in plan.addresses:
            conn = self._connection(plan, address)
            try:
                try:
                    conn.connect()
                except ssl.SSLError as exc:
                    why = getattr(exc, "verify_message", None) or exc.reason or type(exc).__name__
                    raise ToolError(f"The TLS handshake with {plan.host} failed ({why}).") \
                        from None
                except OSError as exc:
                    failure = exc
                    continue
                try:
                    conn.request("GET", plan.target, headers={"User-Agent": USER_AGENT,
                                                              "Connection": "close"})
                    response = conn.getresponse()
                    data = self._read(response, deadline, where)
                except (TimeoutError, socket.timeout):
                    raise ToolError(f"{where} did not answer within {self.timeout_s:.0f} s.") \
                        from None
                except (OSError, http.client.HTTPException) as exc:
                    raise ToolError(f"{where} sent a broken answer ({type(exc).__name__}).") \
                        from None
                return _Answer(response.status, response.getheader("Location"),
                               response.headers.get_content_type(),
                               response.headers.get_content_charset(), data)
            finally:
                conn.close()
        if isinstance(failure, (TimeoutError, socket.timeout)):
            raise ToolError(f"{where} did not answer within {self.timeout_s:.0f} s.")
        reason = getattr(failure, "strerror", None) or type(failure).__name__
        raise ToolError(f"Offline, or {where} is unreachable ({reason}).")

    def _read(self, response: http.client.HTTPResponse, deadline: float, where: str) -> bytes:
        """Up to ``max_bytes + 1`` bytes of the body, until the hop's deadline."""
        chunks: list[bytes] = []
        size = 0
        while size <= self.max_bytes:
            if time.monotonic() > deadline:
                raise ToolError(f"{where} took longer than "
                                f"{FETCH_DEADLINE_FACTOR * self.timeout_s:.0f} s to send the page.")
            chunk = response.read1(min(65536, self.max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


def fetch_text(url: str, allow_private: bool = False, max_bytes: int = FETCH_MAX_BYTES,
               timeout_s: float = FETCH_TIMEOUT_S) -> str:
    """A web page's text (HTML stripped with Beautiful Soup), by a
    :class:`Fetcher` with these limits.

    Raises:
        ToolError: a malformed or refused URL (at any redirect), offline, a
            timeout, an HTTP error, or a page over ``max_bytes``.
    """
    return Fetcher(allow_private, max_bytes=max_bytes, timeout_s=timeout_s).fetch_text(url)


def make_fetch_url(allow_private: bool = False, max_chars: int = 4000,
                   fetcher: Fetcher | None = None) -> BaseTool:
    """The ``fetch_url`` tool; ``allow_private`` lets it open local addresses
    (setting ``LLMAPP_FETCH_ALLOW_PRIVATE``); ``fetcher`` replaces the
    default :class:`Fetcher` (tests give one with their own resolver)."""
    fetcher = fetcher or Fetcher(allow_private)

    @tool
    def fetch_url(url: str) -> str:
        """Fetch a web page (http or https) and return its text, cut to a few
        thousand characters."""
        text = fetcher.fetch_text(url)
        return text[:max_chars] + ("\n[…cut]" if len(text) > max_chars else "")

    return guided(fetch_url, FETCH_GUIDE)


def network_available(timeout_s: float = 1.5) -> bool:
    """Whether a search engine's host resolves and accepts a connection, quickly."""
    try:
        with socket.create_connection(("duckduckgo.com", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


@tool
def web_search(query: str, max_results: int = 5) -> str:
    """Search the web; returns titles, links and snippets of the top results."""
    if not network_available():
        raise ToolError("Offline: web search needs a network connection, and there is none.")
    try:
        from ddgs import DDGS
    except ImportError:
        raise ToolError("Web search needs the ddgs package: pip install ddgs.") from None
    try:
        results = DDGS(timeout=int(ONLINE_TIMEOUT_S)).text(query, max_results=max_results)
    except Exception as exc:
        raise ToolError(f"The web search failed ({type(exc).__name__}).") from exc
    return "\n\n".join(f"{r.get('title')}\n{r.get('href')}\n{r.get('body')}" for r in results) \
        or "No results."


def url_candidates(question: str) -> list[str]:
    """The http(s) URLs written in ``question``, in order; never empty (a
    question with none offers ``https://example.com``, which a page shows)."""
    urls = [u.rstrip(".,;:!?)'\"") for u in re.findall(r"https?://\S+", question)]
    return list(dict.fromkeys(urls)) or ["https://example.com"]


FETCH_GUIDE = ToolGuide(
    examples=(("Fetch https://example.com and tell me what it says",
               {"url": "https://example.com"}),
              ("Summarize the page at https://docs.python.org/3/",
               {"url": "https://docs.python.org/3/"}),
              ("Open this link: http://info.cern.ch", {"url": "http://info.cern.ch"})),
    narrow=lambda question: {"url": {"enum": url_candidates(question)}})

guided(web_search, ToolGuide(
    examples=(("Search the web for the latest Streamlit release",
               {"query": "latest Streamlit release"}),
              ("Look up today's news about electric cars", {"query": "news electric cars"}),
              ("Google who won the last football world cup",
               {"query": "last football world cup winner"})),
    narrow=lambda question: {"query": {"const": question.strip()}}))
