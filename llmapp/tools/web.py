"""The online tools: ``fetch_url`` (a web page as text: http(s) only, size
and time limits, no loopback or private addresses by default) and
``web_search`` (with ``ddgs``). Both say "offline" quickly when there is no
network; they never hang."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlparse

from langchain_core.tools import BaseTool, tool

from llmapp.tools.base import ToolError, ToolGuide, guided

FETCH_MAX_BYTES = 1_000_000
FETCH_TIMEOUT_S = 5.0
ONLINE_TIMEOUT_S = 5.0


def check_url(url: str, allow_private: bool = False) -> str:
    """The host of a URL the fetcher may open.

    Raises:
        ToolError: not http(s), no host, or (unless ``allow_private``) a
            host that resolves to a loopback, private, link-local or reserved
            address.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise ToolError(f"Only http and https URLs can be fetched, not {parsed.scheme or 'this'}.")
    if not parsed.hostname:
        raise ToolError("The URL has no host.")
    if allow_private:
        return parsed.hostname
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or 0, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise ToolError(f"Offline, or {parsed.hostname} does not exist: the name does not "
                        "resolve.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (address.is_loopback or address.is_private or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified):
            raise ToolError(f"{parsed.hostname} is a local or private address ({address}); "
                            "fetching it is not allowed.")
    return parsed.hostname


def fetch_text(url: str, allow_private: bool = False, max_bytes: int = FETCH_MAX_BYTES,
               timeout_s: float = FETCH_TIMEOUT_S) -> str:
    """A web page's text (HTML stripped with Beautiful Soup).

    Redirects are followed only to URLs that pass :func:`check_url` too.

    Raises:
        ToolError: a refused URL, offline, a timeout, an HTTP error, or a
            page over ``max_bytes``.
    """
    import urllib.error
    import urllib.request

    check_url(url, allow_private)

    class Guarded(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            check_url(newurl, allow_private)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(Guarded)
    request = urllib.request.Request(url, headers={"User-Agent": "llmapp/0.1 (+fetch_url tool)"})
    try:
        with opener.open(request, timeout=timeout_s) as response:
            data = response.read(max_bytes + 1)
            kind = response.headers.get_content_type()
            charset = response.headers.get_content_charset() or "utf-8"
    except urllib.error.HTTPError as exc:
        raise ToolError(f"The server answered HTTP {exc.code} for {url}.") from None
    except TimeoutError:
        raise ToolError(f"{url} did not answer within {timeout_s:.0f} s.") from None
    except urllib.error.URLError as exc:
        raise ToolError(f"Offline, or {url} is unreachable ({exc.reason}).") from None
    if len(data) > max_bytes:
        raise ToolError(f"The page is larger than {max_bytes // 1000} kB; not fetched.")
    text = data.decode(charset, errors="replace")
    if kind in ("text/html", "application/xhtml+xml"):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(text, "html.parser")
        for tag in soup(["script", "style", "noscript"]):
            tag.decompose()
        text = soup.get_text("\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines)


def make_fetch_url(allow_private: bool = False, max_chars: int = 4000) -> BaseTool:
    """The ``fetch_url`` tool; ``allow_private`` lets it open local addresses
    (setting ``LLMAPP_FETCH_ALLOW_PRIVATE``)."""

    @tool
    def fetch_url(url: str) -> str:
        """Fetch a web page (http or https) and return its text, cut to a few
        thousand characters."""
        text = fetch_text(url, allow_private)
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
