"""The vector store: Chroma collections of embedded chunks, and search.

Chroma runs on disk (``PersistentClient`` at ``LLMAPP_CHROMA_PATH``) or, when
``CHROMA_HOST`` is set, as a server reached with ``HttpClient``: the path to
take when one machine is outgrown.

Ingestion is idempotent. A document is its source name; its chunk ids come
from the SHA-256 of its bytes, so the same file again adds nothing, and a
changed file replaces its old chunks. New chunks are written before old ones
are deleted, and a failed write removes what it wrote: a document's chunks
land all or none.

Each file is isolated: it is loaded and chunked in a worker process under
limits of memory and CPU time (:mod:`llmapp.rag.isolation`), any failure of
its parser or of the embedder on its chunks becomes that file's one-line
error, and the other files ingest. Source names are stored and shown with
control characters escaped (:func:`llmapp.rag.loaders.display_name`).

Each collection records the embedder that built it (model id and dimension)
and its chunking; a query with another embedder is refused.

Search is hybrid by default: dense (cosine similarity of embeddings) and
lexical (BM25, :mod:`llmapp.rag.lexical`) rankings fused by reciprocal rank
fusion. Each collection carries a ``revision`` that every change renews, so
the lexical index, derived from Chroma's own chunks, is rebuilt when they
change, in this process or any other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings

from llmapp.errors import LlmappError
from llmapp.rag import IngestError, RagError
from llmapp.rag.chunking import Chunk, ChunkSettings
from llmapp.rag.embeddings import EmbedderInfo, embedder_info
from llmapp.rag.isolation import ParseWorker, limits_supported, parse_here, shared_worker
from llmapp.rag.lexical import LexicalIndex, fuse
from llmapp.rag.loaders import display_name
from llmapp.rag.sections import SectionIndex
from llmapp.settings import Settings

DEFAULT_COLLECTION = "handbook"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
MIN_SQLITE = (3, 35, 0)
log = logging.getLogger(__name__)


def ensure_sqlite() -> None:
    """chromadb needs SQLite >= 3.35. Where Python's is older (Streamlit
    Community Cloud's Debian image), use ``pysqlite3-binary`` in its place.

    Raises:
        RagError: SQLite is too old and pysqlite3-binary is not installed.
    """
    import sqlite3

    if sqlite3.sqlite_version_info >= MIN_SQLITE:
        return
    try:
        import pysqlite3  # type: ignore[import-not-found]
    except ImportError:
        raise RagError(f"Chroma needs SQLite 3.35 or newer; this Python has "
                       f"{sqlite3.sqlite_version}. pip install pysqlite3-binary.") from None
    sys.modules["sqlite3"] = pysqlite3


def check_name(name: str) -> str:
    """A valid collection name, or a clear error.

    Raises:
        RagError: not 3 to 512 letters, digits, ``.``, ``_`` or ``-``,
            starting and ending with a letter or digit (Chroma's rule).
    """
    if not NAME_RULE.match(name or ""):
        raise RagError(f"{name!r} is not a valid collection name: use 3 to 512 letters, digits, "
                       "'.', '_' or '-', starting and ending with a letter or digit.")
    return name


def make_client(settings: Settings):
    """A Chroma client: ``HttpClient`` if ``CHROMA_HOST`` is set, else
    ``PersistentClient`` at ``LLMAPP_CHROMA_PATH``. Telemetry is off.

    Raises:
        RagError: the server is unreachable, its headers are not a JSON
            object, or the folder cannot be used.
    """
    ensure_sqlite()
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        headers: dict[str, str] = {}
        if settings.chroma_headers is not None:
            try:
                headers = json.loads(settings.chroma_headers.get_secret_value())
                assert isinstance(headers, dict)
            except (ValueError, AssertionError):
                raise RagError("CHROMA_HEADERS must be a JSON object, e.g. "
                               '{"Authorization": "Bearer ..."}.') from None
        where = f"{'https' if settings.chroma_ssl else 'http'}://{settings.chroma_host}:" \
                f"{settings.chroma_port}"
        try:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                       ssl=settings.chroma_ssl, headers=headers,
                                       settings=chroma_settings)
        except Exception as exc:
            raise RagError(f"Cannot reach the Chroma server at {where}: is it running? "
                           f"({type(exc).__name__})") from exc
    try:
        return chromadb.PersistentClient(path=settings.chroma_path, settings=chroma_settings)
    except Exception as exc:
        raise RagError(f"Cannot open the Chroma store at {settings.chroma_path}: {exc}") from exc


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's name, counts and how it was built."""

    name: str
    documents: int
    chunks: int
    embedder: str
    dimension: int
    chunking: str


@dataclass(frozen=True)
class IngestResult:
    """What ingesting one file did.

    Attributes:
        source: the document's name.
        status: ``added``, ``replaced`` (it had changed) or ``unchanged``.
        chunks: chunks now stored for it.
        seconds: wall time, embedding included.
        embed_seconds: time spent embedding.
        notice: something the user should know, e.g. that the text was not
            UTF-8 and was read as cp1252; or None.
    """

    source: str
    status: str
    chunks: int
    seconds: float = 0.0
    embed_seconds: float = 0.0
    notice: str | None = None


@dataclass
class _Prepared:
    """A file loaded and chunked, waiting for its embeddings."""

    source: str
    digest: str
    chunks: list[Chunk]
    old_ids: list[str]
    notice: str | None
    started: float = 0.0
    ids: list[str] = field(default_factory=list)
    embed_seconds: float = 0.0

    def key(self, chunking: ChunkSettings) -> str:
        """The chunk-id prefix: a hash of the source, its bytes and the chunking."""
        return hashlib.sha256(f"{self.source}\0{self.digest}\0{chunking.describe()}".encode()
                              ).hexdigest()[:24]


def _metadata(p: _Prepared, c: Chunk, chunking: ChunkSettings) -> dict[str, Any]:
    """What Chroma keeps beside a chunk."""
    meta: dict[str, Any] = {"source": p.source, "sha256": p.digest, "index": c.index,
                            "chunking": chunking.describe()}
    for name in ("page", "parent", "headers", "section"):
        value = getattr(c, name)
        if value is not None and value != "":
            meta[name] = value
    return meta


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk.

    Attributes:
        id: the chunk id.
        source: document name.
        page: 1-based PDF page, or None.
        index: chunk position in its document.
        score: cosine similarity, -1 to 1 (higher is closer).
        text: the chunk that matched.
        context: what the answer reads: the parent section for
            parent-child chunks, else ``text``.
        section: the document's title and the chunk's header path, or None.
        found_by: which retrieval found it: ``dense``, ``lexical`` or ``both``.
    """

    id: str
    source: str
    page: int | None
    index: int
    score: float
    text: str
    context: str
    section: str | None = None
    found_by: str = "dense"

    def cite(self) -> str:
        """Where it came from, e.g. ``guide.pdf, page 3, chunk 7``."""
        page = f", page {self.page}" if self.page else ""
        return f"{self.source}{page}, chunk {self.index}"

    def to_dict(self) -> dict[str, Any]:
        """``{id, source, page, section, score, text}`` for JSON output."""
        return {"id": self.id, "source": self.source, "page": self.page,
                "section": self.section, "score": round(self.score, 4),
                "found_by": self.found_by, "text": self.text}


@dataclass
class KnowledgeBase:
    """Collections of embedded chunks in one Chroma client.

    Args:
        client: a chromadb client (see :func:`make_client`).
        embedder: the LangChain embedder; it must say which model it is
            (see :func:`llmapp.rag.embeddings.embedder_info`).
    """

    client: Any
    embedder: Embeddings
    batch_size: int | None = None
    """Chunks per write; None uses the client's maximum."""
    parser: ParseWorker | None | bool = None
    """Where files are loaded and chunked: a :class:`ParseWorker`; None, the
    process-wide one (:func:`~llmapp.rag.isolation.shared_worker`); False, in
    this process without limits."""
    info: EmbedderInfo = field(init=False)

    def __post_init__(self) -> None:
        self.info = embedder_info(self.embedder)

    # --- collections ---------------------------------------------------------

    def _collection(self, name: str, create: bool = False, chunking: ChunkSettings | None = None):
        check_name(name)
        try:
            if create:
                metadata = {"hnsw:space": "cosine", "embedder": self.info.id,
                            "dimension": self.info.dimension,
                            "chunking": chunking.describe() if chunking else "",
                            "created": time.time()}
                col = self.client.get_or_create_collection(name, embedding_function=None,
                                                           metadata=metadata)
            else:
                col = self.client.get_collection(name, embedding_function=None)
        except Exception as exc:
            if not create and ("does not exist" in str(exc) or "NotFound" in type(exc).__name__):
                raise RagError(f"There is no collection {name!r}. Ingest documents into it "
                               "first.") from None
            raise RagError(f"Chroma could not open collection {name!r}: {exc}") from exc
        self._check_embedder(col)
        return col

    def _check_embedder(self, col) -> None:
        meta = col.metadata or {}
        built, dim = meta.get("embedder"), meta.get("dimension")
        if built and (built != self.info.id or dim != self.info.dimension):
            raise RagError(
                f"Collection {col.name!r} was built with {built} ({dim} dimensions), but the "
                f"active embedder is {self.info.id} ({self.info.dimension}). Switch "
                "LLMAPP_EMBEDDER back, or ingest into a new collection.")

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its document and chunk counts, by name."""
        out = []
        for col in sorted(self.client.list_collections(), key=lambda c: c.name):
            col = self.client.get_collection(col.name, embedding_function=None)
            meta = col.metadata or {}
            sources = {m.get("source") for m in col.get(include=["metadatas"])["metadatas"]}
            out.append(CollectionInfo(col.name, len(sources), col.count(),
                                      meta.get("embedder", "?"), meta.get("dimension", 0),
                                      meta.get("chunking", "")))
        return out

    def reset(self, name: str) -> None:
        """Delete a collection and everything in it."""
        check_name(name)
        try:
            self.client.delete_collection(name)
        except Exception as exc:
            raise RagError(f"There is no collection {name!r} to reset.") from exc

    def delete_document(self, name: str, source: str) -> int:
        """Delete one document's chunks; returns how many were deleted."""
        col = self._collection(name)
        ids = col.get(where={"source": source})["ids"]
        if not ids:
            raise RagError(f"{source!r} is not in collection {name!r}.")
        col.delete(ids=ids)
        _renew_revision(col)
        return len(ids)

    def documents(self, name: str) -> dict[str, int]:
        """Document names in a collection, with their chunk counts."""
        counts: dict[str, int] = {}
        for meta in self._collection(name).get(include=["metadatas"])["metadatas"]:
            counts[meta["source"]] = counts.get(meta["source"], 0) + 1
        return dict(sorted(counts.items()))

    # --- ingestion -----------------------------------------------------------

    def ingest(self, name: str, data: bytes, source: str,
               chunking: ChunkSettings | None = None) -> IngestResult:
        """Load, chunk, embed and store one file, idempotently.

        Args:
            name: the collection (created if missing).
            data: the file's bytes.
            source: its name, which identifies the document in the collection.
            chunking: the chunking settings (default: :class:`ChunkSettings`).

        Raises:
            IngestError: the file cannot be loaded or gives no chunks.
            RagError: the collection belongs to another embedder, or Chroma
                failed (nothing of this file was kept).
        """
        [(_, result)] = list(self.ingest_many(name, [(source, data)], chunking))
        if isinstance(result, Exception):
            raise result
        return result

    def ingest_many(self, name: str, files: Iterable[tuple[str, bytes]],
                    chunking: ChunkSettings | None = None, group_chunks: int = 256
                    ) -> Iterator[tuple[str, IngestResult | LlmappError]]:
        """Ingest several files; yield ``(source, result or error)`` for each,
        in order, as groups of them are stored.

        Files are embedded together, about ``group_chunks`` chunks at a time,
        so the embedder batches chunks of similar length across files (one
        file at a time ran at 0.64x raw Chroma's speed on 60 small files). A
        file that fails, whatever the reason, gets its error and the others go
        on; each file's chunks still land all or none. ``source`` is stored
        and yielded with control characters escaped
        (:func:`~llmapp.rag.loaders.display_name`).

        Raises:
            RagError: the collection cannot be opened or belongs to another
                embedder (before any file is read).
        """
        chunking = chunking or ChunkSettings()
        col = self._collection(name, create=True, chunking=chunking)
        group: list[_Prepared] = []
        pending: list[tuple[str, IngestResult | LlmappError | _Prepared]] = []
        for source, data in files:
            source = display_name(source)
            started = time.perf_counter()
            try:
                prepared = self._prepare(col, source, data, chunking)
            except LlmappError as exc:
                pending.append((source, exc))
                continue
            except Exception as exc:  # noqa: BLE001 - Chroma failed on this file
                log.warning("%s: preparing it failed", source, exc_info=True)
                pending.append((source, RagError(f"{source}: Chroma failed while checking it "
                                                 f"({type(exc).__name__}); nothing of it was "
                                                 "kept.")))
                continue
            if isinstance(prepared, IngestResult):
                pending.append((source, dataclasses.replace(
                    prepared, seconds=time.perf_counter() - started)))
                continue
            prepared.started = started
            pending.append((source, prepared))
            group.append(prepared)
            if sum(len(p.chunks) for p in group) >= group_chunks:
                yield from self._store_group(col, group, pending, chunking)
                group, pending = [], []
        yield from self._store_group(col, group, pending, chunking)

    def _prepare(self, col, source: str, data: bytes, chunking: ChunkSettings):
        """Load and chunk one file (under the worker's limits): an
        ``unchanged`` :class:`IngestResult` when it is already stored as is,
        else a :class:`_Prepared`.

        Raises:
            IngestError: the file cannot be parsed, or is over a limit.
        """
        if self.parser is False or (self.parser is None and not limits_supported()):
            parsed = parse_here(data, source, chunking)
        else:
            parsed = (self.parser or shared_worker()).parse(data, source, chunking)
        encoding = parsed.encoding
        notice = (f"not UTF-8: read as {encoding}; check its accents and symbols"
                  if encoding not in ("utf-8", "utf-16") else None)
        digest = hashlib.sha256(data).hexdigest()
        old = col.get(where={"source": source}, include=["metadatas"])
        how = chunking.describe()
        if old["ids"] and all(m.get("sha256") == digest and m.get("chunking") == how
                              for m in old["metadatas"]):
            return IngestResult(source, "unchanged", len(old["ids"]), notice=notice)
        chunks = parsed.chunks
        if not chunks:
            raise IngestError(f"{source}: no text to index after chunking.")
        return _Prepared(source, digest, chunks, old["ids"], notice)

    def _store_group(self, col, group: list[_Prepared], pending: list,
                     chunking: ChunkSettings) -> Iterator[tuple[str, Any]]:
        """Embed a group's chunks in one call, write them in as few batches
        as the client allows, drop replaced chunks, and yield the group's
        results in file order. A failed write removes everything the group
        wrote and fails each of its files: every file lands all or none. A
        file the embedder fails on fails alone (:meth:`_embed`)."""
        failure: RagError | None = None
        embedded, refused = self._embed(group)
        group = [p for p in group if id(p) in embedded]
        if group:
            ids, metadatas, documents, vectors = [], [], [], []
            for p in group:
                p.ids = [f"{p.key(chunking)}-{c.index}" for c in p.chunks]
                ids += p.ids
                metadatas += [_metadata(p, c, chunking) for c in p.chunks]
                documents += [c.text for c in p.chunks]
                vectors += embedded[id(p)]
            try:
                self._add_all_or_none(col, ids, vectors, documents, metadatas)
            except RagError as exc:
                failure = exc
            else:
                stale = [i for p in group for i in p.old_ids if i not in set(p.ids)]
                if stale:
                    col.delete(ids=stale)
                _renew_revision(col)  # before anyone hears of the new chunks
        for source, item in pending:
            if isinstance(item, _Prepared) and id(item) in refused:
                item = refused[id(item)]
            elif isinstance(item, _Prepared):
                item = RagError(f"{source}: {failure}") if failure else IngestResult(
                    source, "replaced" if item.old_ids else "added", len(item.chunks),
                    time.perf_counter() - item.started, item.embed_seconds, item.notice)
            yield source, item

    def _embed(self, group: list[_Prepared]) -> tuple[dict[int, list], dict[int, RagError]]:
        """The vectors of each file's chunks, by ``id(file)``, and the errors
        of the files the embedder failed on. One call embeds the whole group
        (chunks of similar length batch together); if it fails, each file is
        embedded alone, so only the file it fails on is lost."""
        if not group:
            return {}, {}
        started = time.perf_counter()
        texts = [c.embed_text for p in group for c in p.chunks]
        try:
            vectors = self.embedder.embed_documents(texts)
        except Exception:  # noqa: BLE001 - find the file it fails on, below
            log.warning("embedding a group of %d files failed; one by one", len(group),
                        exc_info=True)
        else:
            share = (time.perf_counter() - started) / len(texts)
            out, start = {}, 0
            for p in group:
                out[id(p)] = list(vectors[start:start + len(p.chunks)])
                start += len(p.chunks)
                p.embed_seconds = share * len(p.chunks)
            return out, {}
        out, refused = {}, {}
        for p in group:
            started = time.perf_counter()
            try:
                out[id(p)] = list(self.embedder.embed_documents([c.embed_text for c in p.chunks]))
            except Exception as exc:  # noqa: BLE001 - this file's error
                log.warning("%s: embedding failed", p.source, exc_info=True)
                refused[id(p)] = RagError(f"{p.source}: the embedder failed on it "
                                          f"({type(exc).__name__}); nothing of it was kept.")
            p.embed_seconds = time.perf_counter() - started
        return out, refused

    def _add_all_or_none(self, col, ids: list[str], vectors, documents: list[str],
                         metadatas: list[dict]) -> None:
        """Write in batches of the client's maximum; on any failure delete
        what was written and raise.

        Raises:
            RagError: Chroma failed; nothing was kept.
        """
        batch = max(1, self.batch_size or int(self.client.get_max_batch_size()))
        written: list[str] = []
        try:
            for start in range(0, len(ids), batch):
                end = start + batch
                self._write(col, ids[start:end], vectors[start:end], documents[start:end],
                            metadatas[start:end])
                written += ids[start:end]
        except BaseException as exc:
            if written:
                col.delete(ids=written)
            if isinstance(exc, Exception):
                raise RagError(f"Chroma failed while storing it; nothing of it was kept "
                               f"({type(exc).__name__}: {exc}).") from exc
            raise

    def _write(self, col, ids, vectors, documents, metadatas) -> None:
        """One batch into Chroma."""
        col.upsert(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas)

    # --- retrieval -----------------------------------------------------------

    def search(self, name: str, query: str, k: int = 4, *, mmr: bool = False,
               fetch_k: int | None = None, mmr_lambda: float = 0.5,
               score_threshold: float | None = None,
               sources: Sequence[str] | None = None,
               max_per_source: int | None = None, retriever: str = "hybrid") -> list[Hit]:
        """The chunks closest to ``query``.

        Args:
            name: the collection.
            query: the question.
            k: how many chunks to return.
            mmr: max marginal relevance: pick ``k`` of the ``fetch_k`` best
                candidates that are relevant and unlike each other
                (``mmr_lambda`` 1 is pure relevance, 0 pure diversity);
                LangChain's ``maximal_marginal_relevance``.
            score_threshold: drop hits below this cosine similarity.
            sources: only these documents.
            max_per_source: at most this many chunks of one document, so one
                long page cannot crowd out the rest.
            retriever: ``hybrid`` (the default: chunk embeddings, BM25 and
                section-heading embeddings fused by RRF), ``dense`` or
                ``lexical``. Every hit has its cosine similarity as
                ``score``, whichever ranking found it.

        Raises:
            RagError: empty query, no such collection, an empty collection,
                another embedder's collection, or an unknown retriever.
        """
        if not query.strip():
            raise RagError("Type a question to search for.")
        if k < 1:
            raise RagError(f"k must be at least 1, got {k}.")
        if retriever not in RETRIEVERS:
            raise RagError(f"Unknown retriever {retriever!r}: use {', '.join(RETRIEVERS)}.")
        col = self._collection(name)
        total = col.count()
        if total == 0:
            raise RagError(f"Collection {name!r} is empty. Ingest documents into it first.")
        vector = self.embedder.embed_query(query)
        widen = mmr or max_per_source or retriever != "dense"
        n = min(total, (fetch_k or max(4 * k, 20)) if widen else k)
        where = None
        if sources:
            where = {"source": {"$in": list(sources)}} if len(sources) > 1 else {
                "source": sources[0]}
        dense: dict[str, tuple] = {}
        if retriever != "lexical":
            include = ["documents", "metadatas", "distances"] + (["embeddings"] if mmr else [])
            found = col.query(query_embeddings=[vector], n_results=n, where=where,
                              include=include)
            embeddings = found["embeddings"][0] if mmr else [None] * len(found["ids"][0])
            dense = {i: (doc, m, 1.0 - d, e) for i, doc, m, d, e in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0],
                found["distances"][0], embeddings, strict=True)}
        lexical: list[str] = []
        sections: list[list[str]] = []
        if retriever != "dense":
            lexical = _lexical_index(col, total).search(query, n, sources)
        if retriever == "hybrid":
            sections = _section_index(col, total, self.embedder).search(vector, n, sources)
        fused = fuse(list(dense), lexical, sections)
        if not (mmr or max_per_source):
            fused = fused[:k]  # only these are read back
        rows = self._rows(col, fused, dense, vector)
        if mmr and rows:
            import numpy as np
            from langchain_core.vectorstores.utils import maximal_marginal_relevance

            picked = maximal_marginal_relevance(np.array(vector), [r[4] for r in rows],
                                                lambda_mult=mmr_lambda, k=len(rows))
            rows = [rows[i] for i in picked]
        rows = _capped(rows, max_per_source, k) if max_per_source else rows[:k]
        hits = [Hit(id=i, source=m["source"], page=m.get("page"), index=m.get("index", 0),
                    score=score, text=doc, context=m.get("parent") or doc,
                    section=m.get("section"), found_by=found_by)
                for i, doc, m, score, _, found_by in rows]
        if score_threshold is not None:
            hits = [h for h in hits if h.score >= score_threshold]
        return hits

    def _rows(self, col, fused, dense: dict, vector) -> list[tuple]:
        """``(id, text, metadata, cosine, embedding, found_by)`` for each fused
        chunk, in fused order; chunks only the lexical ranking found are
        fetched, and their cosine similarity computed."""
        import numpy as np

        missing = [f.id for f in fused if f.id not in dense]
        extra = {}
        if missing:
            got = col.get(ids=missing, include=["documents", "metadatas", "embeddings"])
            query = np.asarray(vector, dtype=np.float64)
            for i, doc, m, e in zip(got["ids"], got["documents"], got["metadatas"],
                                    got["embeddings"], strict=True):
                e = np.asarray(e, dtype=np.float64)
                cosine = float(e @ query / ((np.linalg.norm(e) * np.linalg.norm(query)) or 1.0))
                extra[i] = (doc, m, cosine, e)
        rows = []
        for f in fused:
            doc, m, cosine, e = dense.get(f.id) or extra[f.id]
            rows.append((f.id, doc, m, cosine, e, f.found_by))
        return rows


RETRIEVERS = ("hybrid", "dense", "lexical")
"""What :meth:`KnowledgeBase.search` can rank by."""
_LEXICAL: dict[str, tuple[str, int, LexicalIndex]] = {}
_SECTIONS: dict[str, tuple[str, int, str, SectionIndex]] = {}
_LEXICAL_LOCK = threading.Lock()


def _renew_revision(col) -> None:
    """Give the collection a new ``revision``: its chunks changed. (Chroma
    refuses ``hnsw:`` keys in a metadata update, so they are left out; the
    collection keeps its distance function.)"""
    metadata = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
    col.modify(metadata={**metadata, "revision": uuid.uuid4().hex})


def _lexical_index(col, count: int) -> LexicalIndex:
    """The BM25 index of ``col``'s chunks (``count`` of them now), built once
    per revision and chunk count."""
    key = (str((col.metadata or {}).get("revision", "")), count)
    with _LEXICAL_LOCK:
        cached = _LEXICAL.get(str(col.id))
        if cached and cached[:2] == key:
            return cached[2]
        got = col.get(include=["documents", "metadatas"])
        index = LexicalIndex((i, m["source"], f"{m.get('section') or ''}\n{doc}")
                             for i, doc, m in zip(got["ids"], got["documents"],
                                                  got["metadatas"], strict=True))
        _LEXICAL[str(col.id)] = (*key, index)
        return index


def _section_index(col, count: int, embedder: Embeddings) -> SectionIndex:
    """The section-heading index of ``col`` (``count`` chunks now), built
    once per revision, chunk count and embedder."""
    key = (str((col.metadata or {}).get("revision", "")), count, embedder_info(embedder).id)
    with _LEXICAL_LOCK:
        cached = _SECTIONS.get(str(col.id))
        if cached and cached[:3] == key:
            return cached[3]
        got = col.get(include=["metadatas"])
        previous = cached[3] if cached and cached[2] == key[2] else None
        index = SectionIndex(((i, m["source"], m.get("section")) for i, m in
                              zip(got["ids"], got["metadatas"], strict=True)), embedder,
                             previous)
        _SECTIONS[str(col.id)] = (*key, index)
        return index


def _capped(rows: list, per_source: int, k: int) -> list:
    """The first ``k`` rows, at most ``per_source`` of each document (rows
    hold the metadata third)."""
    kept, seen = [], {}
    for row in rows:
        source = row[2]["source"]
        if seen.get(source, 0) < per_source:
            seen[source] = seen.get(source, 0) + 1
            kept.append(row)
    return kept[:k]


def knowledge_base(settings: Settings, embedder: Embeddings | None = None) -> KnowledgeBase:
    """A :class:`KnowledgeBase` from settings: the client they select and
    the embedder (default: :func:`llmapp.rag.embeddings.get_embedder`)."""
    from llmapp.rag.embeddings import get_embedder

    return KnowledgeBase(make_client(settings), embedder or get_embedder(settings))
