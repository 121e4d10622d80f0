"""Loaders: a file's bytes into text sections with metadata.

Each loader returns a list of :class:`Section` (text plus ``page`` for PDFs).
Bad input raises :class:`~llmapp.rag.IngestError` with a message a user can
act on: empty, binary, not UTF-8, corrupt or encrypted PDF, too large, or of
an unsupported type.

Libraries: pypdf for PDF (page by page), Beautiful Soup for HTML.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

from llmapp.rag import IngestError

MAX_FILE_BYTES = 20 * 1024 * 1024
"""Largest file accepted: 20 MiB. A bigger one is refused before parsing."""
SUPPORTED = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm")


@dataclass(frozen=True)
class Section:
    """Text from one place of a file.

    Attributes:
        text: the text.
        page: 1-based page number for PDFs, else None.
    """

    text: str
    page: int | None = None


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise IngestError(f"{name}: the UTF-16 text is damaged.") from None
    if b"\0" in data[:8192]:
        raise IngestError(f"{name}: this looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{name}: the text is not UTF-8 (byte {exc.start} cannot be "
                          "decoded). Re-save it as UTF-8 and upload it again.") from None


def _text(data: bytes, name: str) -> list[Section]:
    return [Section(_decode(data, name))]


def _html(data: bytes, name: str) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data, name), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return [Section(soup.get_text("\n"))]


def _pdf(data: bytes, name: str) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(f"{name}: the PDF is encrypted (password-protected). Remove the "
                              "password and upload it again.")
        return [Section(page.extract_text() or "", page=i + 1)
                for i, page in enumerate(reader.pages)]
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{name}: the PDF is damaged and cannot be read ({type(exc).__name__})."
                          ) from None


LOADERS = {".txt": _text, ".md": _text, ".markdown": _text, ".pdf": _pdf,
           ".html": _html, ".htm": _html}


def load(data: bytes, name: str) -> list[Section]:
    """Text sections of a file.

    Args:
        data: the file's bytes.
        name: its file name; the extension picks the loader.

    Raises:
        IngestError: unsupported type, too large, empty, binary, not UTF-8,
            a corrupt or encrypted PDF, or no text at all.
    """
    suffix = PurePath(name).suffix.lower()
    if suffix not in LOADERS:
        raise IngestError(f"{name}: {suffix or 'files without an extension'} is not supported. "
                          f"Use {', '.join(SUPPORTED)}.")
    if len(data) > MAX_FILE_BYTES:
        raise IngestError(f"{name}: {len(data) / 2**20:.0f} MiB is over the "
                          f"{MAX_FILE_BYTES // 2**20} MiB limit. Split it into smaller files.")
    if not data.strip():
        raise IngestError(f"{name}: the file is empty.")
    sections = LOADERS[suffix](data, name)
    if not any(s.text.strip() for s in sections):
        hint = " (a scanned PDF has images, not text)" if suffix == ".pdf" else ""
        raise IngestError(f"{name}: no text found{hint}.")
    return sections
