"""Chunking strategies. Sizes are in characters.

Chunking decides what retrieval can find. Whole documents are too coarse to
find; single sentences are easy to find but carry too little. The strategies:

* ``recursive``: windows of at most ``chunk_size`` characters, cut at
  paragraph, then line, then word boundaries, each overlapping the previous by
  ``chunk_overlap`` characters (LangChain's RecursiveCharacterTextSplitter).
* ``sentence``: one chunk per sentence (pysbd's rule-based sentence boundaries).
* ``parent-child``: small child chunks (``chunk_size``) are embedded and
  searched; each carries its parent section (``parent_size``), which is what
  the answer gets to read.
* ``markdown``: sections under Markdown headers, each split like ``recursive``
  if too long; the header path is kept (LangChain's MarkdownHeaderTextSplitter).
  HTML pages arrive as Markdown (:mod:`llmapp.rag.loaders`), so this is
  heading-aware chunking for them too.

Whatever the strategy, the text that is embedded (:attr:`Chunk.embed_text`)
starts with the document's title and the chunk's section path, e.g.
``Options — Click Documentation (8.1.x) > Name Your Options``; the text shown
to users and given to the model stays the chunk alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmapp.errors import ConfigError
from llmapp.rag.loaders import Section

STRATEGIES = ("markdown", "recursive", "sentence", "parent-child")
"""The default first. ``markdown`` is the default because it is never worse:
text without headers is split exactly like ``recursive``, and on Click's and
Flask's HTML docs it raised MRR@5 from 0.810 to 0.835 (hybrid retrieval,
``benchmarks/bench_retrieval.py``)."""
DEFAULT_CHUNK_SIZE = 800
DEFAULT_CHUNK_OVERLAP = 120
DEFAULT_PARENT_SIZE = 2400


@dataclass(frozen=True)
class Chunk:
    """One piece of a document.

    Attributes:
        text: what is embedded and searched.
        index: position in the document, from 0.
        page: 1-based PDF page, or None.
        parent: the larger section returned instead of ``text`` (parent-child).
        headers: the Markdown header path, e.g. ``"Guide > Setup"``.
        title: the document's title (an HTML page's ``<title>``), or None.
    """

    text: str
    index: int
    page: int | None = None
    parent: str | None = None
    headers: str | None = None
    title: str | None = None

    @property
    def context(self) -> str:
        """What an answer reads: the parent when there is one, else the text."""
        return self.parent or self.text

    @property
    def section(self) -> str | None:
        """Title and header path, e.g. ``"Options — Click (8.1.x) > Name Your
        Options"``; a first header that the title starts with is not repeated."""
        parts = self.headers.split(" > ") if self.headers else []
        if self.title:
            if parts and self.title.startswith(parts[0]):
                parts = parts[1:]
            parts = [self.title, *parts]
        return " > ".join(parts) or None

    @property
    def embed_text(self) -> str:
        """What is embedded and indexed: the section path, a blank line, the text."""
        return f"{self.section}\n\n{self.text}" if self.section else self.text


@dataclass(frozen=True)
class ChunkSettings:
    """How to chunk.

    Raises:
        ConfigError: unknown strategy, a size below 50 or above 20,000
            characters, or an overlap not smaller than the size.
    """

    strategy: str = STRATEGIES[0]
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    parent_size: int = DEFAULT_PARENT_SIZE

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"Unknown chunking {self.strategy!r}: use one of "
                              f"{', '.join(STRATEGIES)}.")
        for name in ("chunk_size", "parent_size"):
            value = getattr(self, name)
            if not 50 <= value <= 20_000:
                raise ConfigError(f"{name} must be 50 to 20,000 characters, got {value}.")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(f"chunk_overlap must be 0 or more and below chunk_size "
                              f"({self.chunk_size}), got {self.chunk_overlap}.")
        if self.strategy == "parent-child" and self.parent_size <= self.chunk_size:
            raise ConfigError("parent_size must be larger than chunk_size for parent-child.")

    def describe(self) -> str:
        """E.g. ``"recursive, 800 chars, 120 overlap"``."""
        if self.strategy == "sentence":
            return "sentence"
        text = f"{self.strategy}, {self.chunk_size} chars, {self.chunk_overlap} overlap"
        return text + (f", parents {self.parent_size}" if self.strategy == "parent-child" else "")


def _splitter(size: int, overlap: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap,
                                          length_function=len, strip_whitespace=True)


SENTENCE_WINDOW = 5_000
"""Characters pysbd reads at a time. Its time grows with the square of its
input: 40,000 characters of short sentences took 2 s, and 2 MB of text half an
hour. Text is given to it paragraph by paragraph, and a longer paragraph in
windows cut at a line break or a space; a sentence that crosses a window's
edge (once per 5,000 characters at most) is cut in two."""


_BLOCK_START = re.compile(r"\s*(?:[-*+#>|]|\d+[.)]\s)")
"""A line that starts a Markdown list item, heading, quote or table row."""


def unwrap(text: str) -> str:
    """``text`` with hard-wrapped lines joined: a PDF's text breaks lines
    mid-sentence ("A chunk size of 500 to 1,000 characters works" / "for
    prose."), and pysbd takes every line break for a sentence end. A break
    stays after a sentence's end (``.!?:;``), after a heading or table row,
    before a list item, heading, quote or table row, and at a blank line."""
    lines = text.split("\n")
    out = lines[:1]
    for line in lines[1:]:
        before = out[-1].rstrip()
        if before and line.strip() and before[-1] not in ".!?:;" \
                and not before.lstrip().startswith(("#", "|")) and not _BLOCK_START.match(line):
            out[-1] = f"{before} {line.lstrip()}"
        else:
            out.append(line)
    return "\n".join(out)


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped (pysbd, English rules), read in
    windows of at most :data:`SENTENCE_WINDOW` characters; hard-wrapped
    lines are joined first (:func:`unwrap`)."""
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False)
    windows = _splitter(SENTENCE_WINDOW, 0)
    out = []
    for paragraph in re.split(r"\n\s*\n", unwrap(text)):
        pieces = [paragraph] if len(paragraph) <= SENTENCE_WINDOW else windows.split_text(paragraph)
        for piece in pieces:
            out += [s.strip() for s in segmenter.segment(piece) if s.strip()]
    return out


def _markdown_sections(text: str) -> list[tuple[str, str | None]]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=False)
    out = []
    for doc in splitter.split_text(text):
        path = " > ".join(doc.metadata[k] for k in ("h1", "h2", "h3") if k in doc.metadata)
        out.append((doc.page_content, path or None))
    return out


def chunk(sections: Sequence[Section], settings: ChunkSettings = ChunkSettings()) -> list[Chunk]:
    """Split a document's sections into chunks, numbered from 0 across pages.

    Chunks never span two PDF pages, so each keeps its page number.
    """
    chunks: list[Chunk] = []

    def add(text: str, page, parent=None, headers=None) -> None:
        if text.strip():
            chunks.append(Chunk(text.strip(), len(chunks), page, parent, headers, title))

    for section in sections:
        title = section.title
        if settings.strategy == "recursive":
            for piece in _splitter(settings.chunk_size, settings.chunk_overlap).split_text(
                    section.text):
                add(piece, section.page)
        elif settings.strategy == "sentence":
            for sentence in sentences(section.text):
                add(sentence, section.page)
        elif settings.strategy == "parent-child":
            parents = _splitter(settings.parent_size, 0).split_text(section.text)
            children = _splitter(settings.chunk_size, settings.chunk_overlap)
            for parent in parents:
                for piece in children.split_text(parent):
                    add(piece, section.page, parent=parent.strip())
        else:
            splitter = _splitter(settings.chunk_size, settings.chunk_overlap)
            for body, headers in _markdown_sections(section.text):
                for piece in splitter.split_text(body):
                    add(piece, section.page, headers=headers)
    return chunks
