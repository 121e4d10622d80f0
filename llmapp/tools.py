"""Stage 5: typed tools a model can call, as LangChain tools.

=====================  ====================================================
tool                   does
=====================  ====================================================
``calculator``         arithmetic on numbers, safely (an AST whitelist; no
                       ``eval``): + - * / // % ** and parentheses
``word_count``         words and characters of a text (the seed's
                       ``get_word_length``, grown up)
``current_datetime``   the date and time now, in a time zone
``knowledge_base``     cited snippets from a stage-3 Chroma collection
``fetch_url``          a web page as text: http(s) only, size and time
                       limits, no loopback or private addresses by default
``web_search``         a web search with ``ddgs``
=====================  ====================================================

Tools return text for the model and raise :class:`ToolError` with a message
the model (and the user) can act on. The online tools say "offline" quickly
when there is no network; they never hang.
"""

from __future__ import annotations

import ast
import ipaddress
import math
import operator
import socket
import time
from datetime import datetime
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, tool

from llmapp.errors import LlmappError

MAX_EXPRESSION = 200
"""Longest expression the calculator accepts, in characters."""
MAX_EXPONENT = 1000
"""Largest exponent: 10 ** 1000 has 1,001 digits; anything bigger is refused
before it is computed (a huge power can take minutes and gigabytes)."""
MAX_MAGNITUDE = 10 ** 1000
FETCH_MAX_BYTES = 1_000_000
FETCH_TIMEOUT_S = 5.0
ONLINE_TIMEOUT_S = 5.0


class ToolError(LlmappError):
    """A tool could not do what was asked; the message says why."""


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or
                                             (abs(left) > 1 and abs(right) * math.log10(
                                                 abs(left)) > 1000)):
            raise ToolError(f"The power {left} ** {right} is too large to compute.")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ToolError("Division by zero.") from None
        except OverflowError:
            raise ToolError("The result is too large.") from None
        if isinstance(result, complex):
            raise ToolError("The result is not a real number.")
        if isinstance(result, int) and abs(result) > MAX_MAGNITUDE:
            raise ToolError("The result is too large.")
        return result
    what = type(node).__name__
    if isinstance(node, ast.Name):
        what = f"the name {node.id!r}"
    elif isinstance(node, ast.Attribute):
        what = "attribute access"
    elif isinstance(node, ast.Call):
        what = "a function call"
    raise ToolError(f"Only numbers and + - * / // % ** ( ) are allowed, not {what}.")


def calculate(expression: str) -> int | float:
    """Evaluate arithmetic safely.

    Parses with :mod:`ast` and walks only numbers, unary +/-, and binary
    + - * / // % **. Names, attributes, calls, subscripts, comprehensions and
    strings are refused; so are expressions over :data:`MAX_EXPRESSION`
    characters, exponents over :data:`MAX_EXPONENT` and results over 1,000
    digits.

    Raises:
        ToolError: empty, unparsable, disallowed or too large.
    """
    expression = (expression or "").strip()
    if not expression:
        raise ToolError("The expression is empty: give arithmetic such as 23 * 19.")
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION} characters.")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not arithmetic I can parse.") from None
    return _evaluate(tree)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. "23 * 19" or "(2 + 3) ** 2 / 7".
    Supports + - * / // % ** and parentheses on numbers; nothing else."""
    value = calculate(expression)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value)


@tool
def word_count(text: str) -> str:
    """Count the words and characters of a text, e.g. to answer "how many
    letters are in 'educa'?"."""
    words = len(text.split())
    return f"{words} words, {len(text)} characters ({len(text.replace(' ', ''))} without spaces)"


@tool
def current_datetime(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone such as "Europe/Oslo"
    or "America/New_York" (default UTC)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"Unknown time zone {timezone!r}: use an IANA name such as "
                        "Europe/Oslo.") from None
    now = datetime.now(zone)
    return now.strftime(f"%A %d %B %Y, %H:%M:%S ({zone.key}, UTC%z)")


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
    except (TimeoutError, socket.timeout):
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

    return fetch_url


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


def make_knowledge_base_tool(kb, collection: str, k: int = 3) -> BaseTool:
    """The ``knowledge_base`` tool over a stage-3 collection."""

    @tool
    def knowledge_base(query: str) -> str:
        """Search the user's documents; returns numbered snippets with their
        source file and page, to cite."""
        hits = kb.search(collection, query, k)
        return "\n\n".join(f"[{n}] {h.cite()}\n{' '.join(h.context.split())[:800]}"
                           for n, h in enumerate(hits, start=1)) or "Nothing found."

    return knowledge_base


def available_tools(kb=None, collection: str | None = None,
                    allow_private: bool = False) -> dict[str, BaseTool]:
    """The tools by name; ``knowledge_base`` only when a knowledge base and a
    collection are given."""
    tools = {t.name: t for t in (calculator, word_count, current_datetime,
                                 make_fetch_url(allow_private), web_search)}
    if kb is not None and collection:
        tools["knowledge_base"] = make_knowledge_base_tool(kb, collection)
    return tools


def run_tool(tool_: BaseTool, arguments: dict) -> tuple[str, float]:
    """Call a tool directly; returns ``(result text, seconds)``.

    Raises:
        ToolError: the tool refused, or the arguments do not fit its schema.
    """
    from pydantic import ValidationError

    started = time.perf_counter()
    try:
        result = tool_.invoke(arguments)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolError(f"Bad arguments for {tool_.name}: {problems}.") from None
    except ToolError:
        raise
    except LlmappError as exc:
        raise ToolError(str(exc)) from exc
    return str(result), time.perf_counter() - started
