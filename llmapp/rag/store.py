"""The vector store: Chroma collections of embedded chunks, and search.

Chroma runs on disk (``PersistentClient`` at ``LLMAPP_CHROMA_PATH``) or, when
``CHROMA_HOST`` is set, as a server reached with ``HttpClient``: the path to
take when one machine is outgrown.

Ingestion is idempotent. A document is its source name; its chunk ids come
from the SHA-256 of its bytes, so the same file again adds nothing, and a
changed file replaces its old chunks. New chunks are written before old ones
are deleted, and a failed write removes what it wrote: a document's chunks
land all or none.

Each collection records the embedder that built it (model id and dimension)
and its chunking; a query with another embedder is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings

from llmapp.rag import IngestError, RagError
from llmapp.rag.chunking import Chunk, ChunkSettings, chunk
from llmapp.rag.embeddings import EmbedderInfo, embedder_info
from llmapp.rag.loaders import load
from llmapp.settings import Settings

DEFAULT_COLLECTION = "handbook"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
MIN_SQLITE = (3, 35, 0)


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
    """

    source: str
    status: str
    chunks: int
    seconds: float = 0.0
    embed_seconds: float = 0.0


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
    """

    id: str
    source: str
    page: int | None
    index: int
    score: float
    text: str
    context: str

    def cite(self) -> str:
        """Where it came from, e.g. ``guide.pdf, page 3, chunk 7``."""
        page = f", page {self.page}" if self.page else ""
        return f"{self.source}{page}, chunk {self.index}"

    def to_dict(self) -> dict[str, Any]:
        """``{id, source, page, score, text}`` for JSON output."""
        return {"id": self.id, "source": self.source, "page": self.page,
                "score": round(self.score, 4), "text": self.text}


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
            chunking: the chunking settings (default: recursive, 800 characters,
                120 overlap).

        Raises:
            IngestError: the file cannot be loaded or gives no chunks.
            RagError: the collection belongs to another embedder, or Chroma
                failed (nothing of this file was kept).
        """
        started = time.perf_counter()
        chunking = chunking or ChunkSettings()
        sections = load(data, source)
        digest = hashlib.sha256(data).hexdigest()
        col = self._collection(name, create=True, chunking=chunking)
        old = col.get(where={"source": source}, include=["metadatas"])
        how = chunking.describe()
        if old["ids"] and all(m.get("sha256") == digest and m.get("chunking") == how
                              for m in old["metadatas"]):
            return IngestResult(source, "unchanged", len(old["ids"]),
                                time.perf_counter() - started)
        chunks = chunk(sections, chunking)
        if not chunks:
            raise IngestError(f"{source}: no text to index after chunking.")
        embed_started = time.perf_counter()
        vectors = self.embedder.embed_documents([c.text for c in chunks])
        embed_seconds = time.perf_counter() - embed_started
        key = hashlib.sha256(f"{source}\0{digest}\0{how}".encode()).hexdigest()[:24]
        ids = [f"{key}-{c.index}" for c in chunks]
        self._add_all_or_none(col, ids, vectors, chunks, source, digest, chunking)
        stale = [i for i in old["ids"] if i not in set(ids)]
        if stale:
            col.delete(ids=stale)
        return IngestResult(source, "replaced" if old["ids"] else "added", len(chunks),
                            time.perf_counter() - started, embed_seconds)

    def _add_all_or_none(self, col, ids: list[str], vectors, chunks: Sequence[Chunk],
                         source: str, digest: str, chunking: ChunkSettings) -> None:
        metadatas = []
        for c in chunks:
            meta: dict[str, Any] = {"source": source, "sha256": digest, "index": c.index,
                                    "chunking": chunking.describe()}
            if c.page is not None:
                meta["page"] = c.page
            if c.parent is not None:
                meta["parent"] = c.parent
            if c.headers:
                meta["headers"] = c.headers
            metadatas.append(meta)
        batch = max(1, self.batch_size or int(self.client.get_max_batch_size()))
        written: list[str] = []
        try:
            for start in range(0, len(ids), batch):
                end = start + batch
                self._write(col, ids[start:end], vectors[start:end],
                            [c.text for c in chunks[start:end]], metadatas[start:end])
                written += ids[start:end]
        except BaseException as exc:
            if written:
                col.delete(ids=written)
            if isinstance(exc, Exception):
                raise RagError(f"{source}: Chroma failed while storing it; nothing of it was "
                               f"kept ({type(exc).__name__}: {exc}).") from exc
            raise

    def _write(self, col, ids, vectors, documents, metadatas) -> None:
        """One batch into Chroma."""
        col.upsert(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas)

    # --- retrieval -----------------------------------------------------------

    def search(self, name: str, query: str, k: int = 4, *, mmr: bool = False,
               fetch_k: int | None = None, mmr_lambda: float = 0.5,
               score_threshold: float | None = None,
               sources: Sequence[str] | None = None) -> list[Hit]:
        """The chunks closest to ``query``.

        Args:
            name: the collection.
            query: the question.
            k: how many chunks to return.
            mmr: max marginal relevance: pick ``k`` of the ``fetch_k`` nearest
                that are relevant and unlike each other (``mmr_lambda`` 1 is
                pure relevance, 0 pure diversity); LangChain's
                ``maximal_marginal_relevance``.
            score_threshold: drop hits below this cosine similarity.
            sources: only these documents.

        Raises:
            RagError: empty query, no such collection, an empty collection,
                or another embedder's collection.
        """
        if not query.strip():
            raise RagError("Type a question to search for.")
        if k < 1:
            raise RagError(f"k must be at least 1, got {k}.")
        col = self._collection(name)
        total = col.count()
        if total == 0:
            raise RagError(f"Collection {name!r} is empty. Ingest documents into it first.")
        vector = self.embedder.embed_query(query)
        n = min(total, (fetch_k or max(4 * k, 20)) if mmr else k)
        where = None
        if sources:
            where = {"source": {"$in": list(sources)}} if len(sources) > 1 else {
                "source": sources[0]}
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if mmr else [])
        found = col.query(query_embeddings=[vector], n_results=n, where=where, include=include)
        rows = list(zip(found["ids"][0], found["documents"][0], found["metadatas"][0],
                        found["distances"][0], strict=True))
        if mmr and rows:
            import numpy as np
            from langchain_core.vectorstores.utils import maximal_marginal_relevance

            picked = maximal_marginal_relevance(np.array(vector), list(found["embeddings"][0]),
                                                lambda_mult=mmr_lambda, k=k)
            rows = [rows[i] for i in picked]
        hits = [Hit(id=i, source=m["source"], page=m.get("page"), index=m.get("index", 0),
                    score=1.0 - d, text=doc, context=m.get("parent") or doc)
                for i, doc, m, d in rows]
        if score_threshold is not None:
            hits = [h for h in hits if h.score >= score_threshold]
        return hits


def knowledge_base(settings: Settings, embedder: Embeddings | None = None) -> KnowledgeBase:
    """A :class:`KnowledgeBase` from settings: the client they select and
    the embedder (default: :func:`llmapp.rag.embeddings.get_embedder`)."""
    from llmapp.rag.embeddings import get_embedder

    return KnowledgeBase(make_client(settings), embedder or get_embedder(settings))
