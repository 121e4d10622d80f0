"""Loaders: a file's bytes into text sections with metadata.

Each loader returns a list of :class:`Section` (text plus ``page`` for PDFs).
Bad input raises :class:`~llmapp.rag.IngestError` with a message a user can
act on: empty, binary, not UTF-8, corrupt or encrypted PDF, too large, or of
an unsupported type.

Libraries: pypdf for PDF (page by page); for HTML, Beautiful Soup picks the
main content and drops navigation, and markdownify turns it into Markdown, so
headings, lists and code blocks survive for heading-aware chunking. Text that
is not UTF-8 is detected with charset-normalizer.

Converters compared on Click's and Flask's HTML docs (Debian's
python-click-doc and python-flask-doc): trafilatura extracted the main text
best without help, but brings 91 MB of dependencies (dateparser, babel,
regex, justext, htmldate; its lxml cleaner is now a separate package);
html-to-markdown (Rust) is the fastest but kept the navigation; markdownify
is 100 KB on the Beautiful Soup we already use, and with the main element
chosen first its Markdown matched trafilatura's.

Limits, so that a file built to exhaust the parser fails alone: pypdf runs
under :data:`PDF_LIMITS` (its own decompression and parsing limits, lowered),
HTML deeper than :data:`MAX_HTML_DEPTH` is flattened before markdownify (which
recurses once per level), and :func:`load` turns any other exception into an
:class:`~llmapp.rag.IngestError` naming the file. Time and memory per file are
bounded by :mod:`llmapp.rag.isolation`, which runs this in a worker process.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath

from llmapp.rag import IngestError

MAX_FILE_BYTES = 20 * 1024 * 1024
"""Largest file accepted: 20 MiB. A bigger one is refused before parsing."""
SUPPORTED = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm")
MAX_HTML_DEPTH = 100
"""Elements nested deeper than this are flattened to their text before
conversion: markdownify recurses once per level and raised RecursionError on
20,000 nested ``<div>``; real pages nest a few dozen levels."""
PDF_LIMITS = {
    "zlib_maximum_output_length": 16_000_000,
    "lzw_maximum_output_length": 16_000_000,
    "run_length_maximum_output_length": 16_000_000,
    "brotli_maximum_output_length": 16_000_000,
    "array_based_stream_maximum_output_length": 16_000_000,
    "maximum_declared_stream_length": 16_000_000,
    "stream_parsing_work_maximum_count": 1_000_000,
}
"""pypdf's resource limits (``pypdf.Configuration``, pypdf >= 6.18), lowered
from its defaults (75 MB per decoded stream, 2,000,000 tokens per content
stream): a page's content stream is a few KB to a few MB of text operators; a
68 KB PDF whose one stream inflated to 70 MB cost 5 to 13 s of CPU under the
defaults. The CPU time of a whole file is bounded by
:mod:`llmapp.rag.isolation`."""
log = logging.getLogger(__name__)


def display_name(name: str) -> str:
    """``name`` with control and other non-printable characters escaped as
    Python's ``repr`` does (``\\n``, ``\\x1b``, ``\\u202e``), so a file name
    cannot split a line of output or move the terminal's cursor. Printable
    text, accents included, is kept as is; backslashes too."""
    if name.isprintable():
        return name
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name)


@dataclass(frozen=True)
class Section:
    """Text from one place of a file.

    Attributes:
        text: the text; Markdown for ``.md`` and ``.html`` files.
        page: 1-based page number for PDFs, else None.
        title: the document's title (an HTML ``<title>``), or None.
        encoding: the text encoding it was read with, e.g. ``utf-8`` or ``cp1252``.
    """

    text: str
    page: int | None = None
    title: str | None = None
    encoding: str = "utf-8"


def decode(data: bytes, name: str) -> tuple[str, str]:
    """``(text, encoding)`` of a text file: UTF-8 (with or without a BOM),
    UTF-16 with its BOM, else the encoding charset-normalizer detects
    (cp1252, cp1251, ...). cp1252 wins whenever it reads the bytes about as
    cleanly as the best candidate (chaos within 0.05): on French text
    charset-normalizer otherwise ranked cp1250 or mac-latin2 first, which turn
    "à" into "ŕ". cp1252 is also what the WHATWG Encoding Standard reads for
    "latin1" and "iso-8859-1" labels. Cyrillic cp1251 text has no cp1252
    candidate and stays cp1251.

    Raises:
        IngestError: binary data, or bytes no encoding explains.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise IngestError(f"{name}: the UTF-16 text is damaged.") from None
    if b"\0" in data[:8192]:
        raise IngestError(f"{name}: this looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        position = exc.start
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is not None:  # Western European first, when it reads as cleanly (below)
        least = min(m.chaos for m in matches)
        best = next((m for m in matches if m.encoding == "cp1252" and m.chaos <= least + 0.05),
                    best)
    if best is None or best.encoding in ("utf_8", "utf_8_sig"):
        raise IngestError(f"{name}: the text is not UTF-8 (byte {position} cannot be decoded), "
                          "and no other encoding fits. Re-save it as UTF-8.")
    return str(best), best.encoding.replace("_", "-")


def _text(data: bytes, name: str) -> list[Section]:
    text, encoding = decode(data, name)
    return [Section(text, encoding=encoding)]


BOILERPLATE = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside",
               "form", "iframe", "svg", "button", "img")
"""Elements dropped from HTML before conversion: never the document's content."""
BOILERPLATE_SELECTORS = ("[role=navigation]", "[role=search]", "[role=banner]",
                         "[role=contentinfo]", "[aria-hidden=true]", ".headerlink",
                         ".sphinxsidebar", ".related", ".toctree-wrapper")
"""Navigation by role, and by the class names of Sphinx, the most common
documentation generator (sidebars, "next/previous" bars, permalinks)."""
MAIN_SELECTORS = ("main", "[role=main]", "article", ".body", "#content", "body")
"""Where the content is, first match wins."""


def html_to_markdown(html: str) -> tuple[str, str | None]:
    """The main content of an HTML page as Markdown, and the page's title.

    Headings become ``#`` lines, lists stay lists, ``<pre>`` becomes fenced
    code; links keep only their text, and inline elements stay inside their
    sentence. Navigation, sidebars, footers and scripts are dropped.
    """
    from bs4 import BeautifulSoup
    from markdownify import markdownify

    soup = BeautifulSoup(html, "html.parser")  # builds the tree without recursion
    flatten_deep(soup, MAX_HTML_DEPTH)
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(list(BOILERPLATE)):
        tag.decompose()
    for selector in BOILERPLATE_SELECTORS:
        for tag in soup.select(selector):
            tag.decompose()
    main = next((found for selector in MAIN_SELECTORS if (found := soup.select_one(selector))),
                soup)
    markdown = markdownify(str(main), heading_style="ATX", bullets="-", strip=["a"],
                           code_language="", escape_underscores=False, escape_asterisks=False)
    return re.sub(r"\n{3,}", "\n\n", markdown).strip(), title or None


def flatten_deep(root, limit: int) -> int:
    """Replace the content of each element at depth ``limit`` (below ``root``)
    that still has child elements by its text, walking the tree with a stack
    (no recursion). Returns how many elements were flattened."""
    from bs4 import Tag

    flattened = 0
    stack = [(root, 0)]
    while stack:
        tag, depth = stack.pop()
        children = [c for c in tag.contents if isinstance(c, Tag)]
        if depth >= limit and children:
            text = tag.get_text(" ")  # iterative (bs4 walks next_element)
            tag.clear()
            tag.append(text)
            flattened += 1
            continue
        stack.extend((c, depth + 1) for c in children)
    return flattened


def _html(data: bytes, name: str) -> list[Section]:
    text, encoding = decode(data, name)
    markdown, title = html_to_markdown(text)
    return [Section(markdown, title=title, encoding=encoding)]


def _pdf(data: bytes, name: str) -> list[Section]:
    from pypdf import Configuration, PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PdfReadError

    limits = {k: v for k, v in PDF_LIMITS.items() if hasattr(Configuration, k)}  # by version
    try:
        with apply_configuration(**limits):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise IngestError(f"{name}: the PDF is encrypted (password-protected). Remove "
                                  "the password and upload it again.")
            pages = drop_running_lines([page.extract_text() or "" for page in reader.pages])
        return [Section(text, page=i + 1) for i, text in enumerate(pages)]
    except IngestError:
        raise
    except LimitReachedError:
        raise IngestError(f"{name}: the PDF is over a safety limit while being decompressed "
                          "or parsed (a stream inflates to more than "
                          f"{PDF_LIMITS['zlib_maximum_output_length'] // 10**6} MB, or holds "
                          "too many operators); it was not ingested.") from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{name}: the PDF is damaged and cannot be read ({type(exc).__name__})."
                          ) from None


RUNNING_LINES = 2
"""Lines at the top and at the bottom of each PDF page that may be a running
header or footer."""


def drop_running_lines(pages: list[str]) -> list[str]:
    """Remove running headers and footers from the text of PDF pages: among
    the first and last :data:`RUNNING_LINES` lines of each page, a line that
    recurs (digits aside, so "page 3" matches "page 4") on at least half of
    the pages, and on 3 or more, is dropped wherever it occurs there.

    Page furniture repeated in every chunk matches every query alike and, put
    in a prompt, is copied by small models (see
    :func:`llmapp.rag.answer.format_context`)."""
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", " ".join(line.split()).lower())

    def edges(text: str) -> list[str]:
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[:RUNNING_LINES] + lines[-RUNNING_LINES:]

    counts: dict[str, int] = {}
    for text in pages:
        for k in {key(line) for line in edges(text)}:
            counts[k] = counts.get(k, 0) + 1
    running = {k for k, c in counts.items() if c >= 3 and c * 2 >= len(pages)}
    if not running:
        return pages
    out = []
    for text in pages:
        edge = set(edges(text))
        out.append("\n".join(line for line in text.splitlines()
                              if not (line in edge and key(line) in running)))
    return out


LOADERS = {".txt": _text, ".md": _text, ".markdown": _text, ".pdf": _pdf,
           ".html": _html, ".htm": _html}


def load(data: bytes, name: str) -> list[Section]:
    """Text sections of a file.

    Args:
        data: the file's bytes.
        name: its file name; the extension picks the loader.

    Raises:
        IngestError: unsupported type, too large, empty, binary, not UTF-8,
            a corrupt or encrypted PDF, over a parser limit, no text at all,
            or any other failure of a parser (its traceback goes to the log).
            Nothing else: a parser's own exception never escapes.
    """
    with failures_as_ingest_errors(name, "parse", "be parsed"):
        return _load(data, name)


@contextmanager
def failures_as_ingest_errors(name: str, step: str, passive: str) -> Iterator[None]:
    """Any exception in the block becomes one :class:`IngestError` naming the
    file (its traceback goes to the log): "<name>: nested too deeply to
    <step>", "needs too much memory to <step>", "cannot <passive> (<type>:
    <message>)". An ``IngestError`` passes through unchanged.

    Args:
        name: the file's name, shown escaped.
        step: what was being done, e.g. ``"parse"``.
        passive: the same in the passive, e.g. ``"be parsed"``.
    """
    try:
        yield
    except IngestError:
        raise
    except RecursionError:
        log.warning("%s: RecursionError trying to %s", name, step, exc_info=True)
        raise IngestError(f"{name}: nested too deeply to {step}.") from None
    except MemoryError:
        raise IngestError(f"{name}: needs too much memory to {step}.") from None
    except Exception as exc:  # any failure is this file's error
        log.warning("%s: failed to %s", name, step, exc_info=True)
        raise IngestError(f"{name}: cannot {passive} ({type(exc).__name__}: "
                          f"{display_name(str(exc))[:200]}).") from None


def _clean(text: str) -> str:
    """``text`` with lone surrogates (a PDF's broken character map can make
    them) replaced by U+FFFD: they cannot be stored as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _load(data: bytes, name: str) -> list[Section]:
    suffix = PurePath(name).suffix.lower()
    if suffix not in LOADERS:
        raise IngestError(f"{name}: {suffix or 'files without an extension'} is not supported. "
                          f"Use {', '.join(SUPPORTED)}.")
    if len(data) > MAX_FILE_BYTES:
        raise IngestError(f"{name}: {len(data) / 2**20:.0f} MiB is over the "
                          f"{MAX_FILE_BYTES // 2**20} MiB limit. Split it into smaller files.")
    if not data.strip():
        raise IngestError(f"{name}: the file is empty.")
    sections = [Section(_clean(s.text), s.page, s.title and _clean(s.title), s.encoding)
                for s in LOADERS[suffix](data, name)]
    if not any(s.text.strip() for s in sections):
        hint = " (a scanned PDF has images, not text)" if suffix == ".pdf" else ""
        raise IngestError(f"{name}: no text found{hint}.")
    return sections
