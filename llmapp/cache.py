"""The response cache in front of the model: exact and semantic.

- **Exact.** The key is the SHA-256 of the normalized question (case, spaces
  and end punctuation folded) together with everything else the model sees
  (system prompt, history, retrieved context), the model, and its sampling
  settings.
- **Semantic.** Among entries of the same *partition* (the same everything
  but the question), the cached question closest to the new one by cosine
  similarity of all-MiniLM-L6-v2 embeddings, if it is at least
  :data:`llmapp.config.CACHE_THRESHOLD`, **and** :func:`same_request` finds
  no word that changes the meaning. Embeddings alone cannot tell "open a
  bank account" from "close a bank account" (cosine 0.94) or "100 dollars
  to euros" from "100 euros to dollars" (0.99): GPTCache's users report
  exactly such answers served for the opposite question. Measured on
  ``tests/data/cache_pairs*.jsonl`` by ``benchmarks/bench_cache.py``.
- **Scope.** An entry is served only within its scope: ``session:<id>`` (a
  browser session; the default), ``cli`` (the command line), or ``shared``
  (every user of the deployment, for FAQ-like content only: a shared cache
  can hand one user's answer, and what it repeats of their message, to
  another).
- **Storage.** The ``response_cache`` table of :mod:`llmapp.storage` (the
  conversations' database: SQLite by default, or PostgreSQL), so pages and
  the CLI share it. Entries expire after ``LLMAPP_CACHE_TTL`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmapp import config
from llmapp.errors import ConfigError
from llmapp.storage import Database

MODES = ("off", "exact", "semantic")
SCOPES = ("session", "shared")
MAX_CANDIDATES = 2000
"""Most recent entries of a partition compared in a semantic lookup."""

_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*")
_STOP = frozenset("""a an the of in on for to into with by at from about as and or is are was
were be been being do does did can could should would will shall may might must i me my we
our you your it its this that these those what which who whom whose when where why how there
here please tell give show explain define describe mean means meaning s t let like some any
much many get""".split())
_DIRECTION = frozenset({"to", "into", "from", "than", "vs", "versus", "before", "after",
                        "over", "under"})
_POLARITY = frozenset({"off", "out", "not", "no", "never", "without", "nor", "don", "doesn",
                       "isn", "aren", "won", "cannot"})
_stemmer = None


def normalize(question: str) -> str:
    """The question as the exact key sees it: lowercase, single spaces, no
    end punctuation (``"What is RAG?"`` and ``"what is  rag"`` are one key)."""
    return " ".join(question.lower().split()).rstrip("?!.。 ")


def _words(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def _stem(word: str) -> str:
    global _stemmer
    if _stemmer is None:
        from nltk.stem import PorterStemmer

        _stemmer = PorterStemmer()
    return _stemmer.stem(word)


def _content(words: Sequence[str]) -> list[str]:
    return [_stem(w) for w in words if w not in _STOP]


def _related(word: str, others: set[str]) -> bool:
    """One stem a prefix of another (``dict`` and ``dictionari``)."""
    return any(min(len(word), len(o)) >= 4 and (word.startswith(o) or o.startswith(word))
               for o in others)


def same_request(a: str, b: str) -> bool:
    """Whether two similar questions ask for the same answer, by the words
    that embeddings blur. They do not when:

    - their numbers differ (``12 times 7`` / ``12 times 8``);
    - one has a negation or a particle the other lacks (``turn on`` /
      ``turn off``);
    - a content word of one is replaced by another content word
      (``open``/``close``, ``France``/``Germany``, ``buy``/``sell``:
      antonyms and siblings embed close together, so a replaced word is
      never trusted, which costs recall on synonyms such as ``tall`` /
      ``height``); or
    - with a direction word (to, from, than, before...), their shared
      content words come in another order (``dollars to euros`` /
      ``euros to dollars``).

    Words only added (``Which city is the capital...``) are allowed. The
    rules were fitted on ``tests/data/cache_pairs.jsonl`` and checked on
    ``cache_pairs_heldout.jsonl``, written after them.
    """
    wa, wb = _words(a), _words(b)
    if sorted(w for w in wa if w[0].isdigit()) != sorted(w for w in wb if w[0].isdigit()):
        return False
    if (set(wa) ^ set(wb)) & _POLARITY:
        return False
    ca, cb = _content(wa), _content(wb)
    sa, sb = set(ca), set(cb)
    if (_DIRECTION & (set(wa) | set(wb))) and \
            [w for w in ca if w in sb] != [w for w in cb if w in sa]:
        return False
    only_a = {w for w in sa - sb if not _related(w, sb - sa)}
    only_b = {w for w in sb - sa if not _related(w, sa - sb)}
    return not (only_a and only_b)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


@dataclass(frozen=True)
class CacheRequest:
    """What identifies a reply.

    Attributes:
        question: the user's question, as they wrote it.
        context: everything else the model sees, e.g. the system prompt and
            the history as ``{"role", "content"}`` dicts, and for a grounded
            answer the retrieved chunks.
        model: ``provider:model``.
        params: the sampling settings (temperature, top_p, max_tokens, stop).
        scope: ``shared``, ``cli`` or ``session:<id>``.
    """

    question: str
    context: Any
    model: str
    params: dict
    scope: str

    @property
    def partition(self) -> str:
        """SHA-256 hex of everything but the question."""
        return _digest([self.context, self.model, self.params])

    @property
    def exact_key(self) -> str:
        """SHA-256 hex of the partition and the normalized question."""
        return _digest([self.partition, normalize(self.question)])


@dataclass(frozen=True)
class CacheHit:
    """A cached answer.

    Attributes:
        answer: the reply's text.
        kind: ``"exact"`` or ``"semantic"``.
        similarity: cosine similarity of the two questions (1.0 for exact).
        question: the cached question it matched.
        age_s: seconds since it was cached.
        lookup_s: seconds the lookup took.
    """

    answer: str
    kind: str
    similarity: float
    question: str
    age_s: float
    lookup_s: float = 0.0


def _vector(embedder: Any, text: str) -> np.ndarray:
    v = np.asarray(embedder.embed_query(text), dtype=np.float32)
    return v / (np.linalg.norm(v) or 1.0)


class ResponseCache:
    """Cached replies in a :class:`~llmapp.storage.Database`.

    Args:
        database: where entries live (the ``response_cache`` table).
        ttl_s: seconds an entry is served; older ones are ignored, and
            deleted on the next write.
        threshold: least cosine similarity for a semantic hit.
        embedder: LangChain ``Embeddings`` for questions; default the
            bundled all-MiniLM-L6-v2 (the threshold was measured with it),
            loaded at the first semantic lookup.

    Raises (every method):
        StoreError: the database failed.
    """

    def __init__(self, database: Database, *, ttl_s: float = config.CACHE_TTL_S,
                 threshold: float = config.CACHE_THRESHOLD, embedder: Any = None) -> None:
        self.database = database
        self.ttl_s = ttl_s
        self.threshold = threshold
        self._embedder = embedder

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from llmapp.rag.embeddings import LocalEmbeddings

            self._embedder = LocalEmbeddings()
        return self._embedder

    def lookup(self, request: CacheRequest, mode: str = "semantic") -> CacheHit | None:
        """The cached answer for ``request``, or None.

        Args:
            mode: ``exact`` (the same normalized question only) or
                ``semantic`` (exact first, then the closest similar question).

        Raises:
            ConfigError: an unknown mode.
        """
        from sqlalchemy import select, update

        from llmapp.storage.schema import response_cache as t

        if mode not in MODES:
            raise ConfigError(f"The cache mode must be one of {', '.join(MODES)}, not {mode!r}.")
        if mode == "off":
            return None
        start = time.perf_counter()
        fresh = time.time() - self.ttl_s
        with self.database.read() as conn:
            row = conn.execute(
                select(t.c.id, t.c.question, t.c.answer, t.c.created_at)
                .where(t.c.scope == request.scope, t.c.exact_key == request.exact_key,
                       t.c.created_at >= fresh)
                .order_by(t.c.created_at.desc()).limit(1)).first()
            found = (row, 1.0, "exact") if row else None
            if found is None and mode == "semantic":
                rows = conn.execute(
                    select(t.c.id, t.c.question, t.c.answer, t.c.created_at, t.c.embedding)
                    .where(t.c.scope == request.scope,
                           t.c.partition_key == request.partition,
                           t.c.created_at >= fresh, t.c.embedding.is_not(None))
                    .order_by(t.c.created_at.desc()).limit(MAX_CANDIDATES)).all()
                found = self._closest(request.question, rows)
        if found is None:
            return None
        row, similarity, kind = found
        with self.database.write() as conn:
            conn.execute(update(t).where(t.c.id == row.id).values(hits=t.c.hits + 1))
        return CacheHit(row.answer, kind, similarity, row.question, time.time() - row.created_at,
                        time.perf_counter() - start)

    def _closest(self, question: str, rows: Sequence[Any]) -> tuple[Any, float, str] | None:
        if not rows:
            return None
        query = _vector(self.embedder, question)
        matrix = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
        scores = matrix @ query
        for i in np.argsort(-scores):
            if scores[i] < self.threshold:
                break
            if same_request(question, rows[i].question):
                return rows[i], float(scores[i]), "semantic"
        return None

    def put(self, request: CacheRequest, answer: str, *, embed: bool = True) -> None:
        """Cache ``answer`` for ``request`` (empty answers are not cached),
        and delete expired entries.

        Args:
            embed: also store the question's embedding, for semantic lookups.
        """
        from sqlalchemy import delete

        from llmapp.storage.schema import response_cache as t

        if not answer.strip():
            return
        vector = _vector(self.embedder, request.question).tobytes() if embed else None
        now = time.time()
        with self.database.write() as conn:
            conn.execute(delete(t).where(t.c.created_at < now - self.ttl_s))
            conn.execute(t.insert().values(
                scope=request.scope, partition_key=request.partition,
                exact_key=request.exact_key, question=request.question, embedding=vector,
                answer=answer, created_at=now))

    def clear(self, scope: str | None = None) -> int:
        """Delete every entry (of one scope); returns how many."""
        from sqlalchemy import delete

        from llmapp.storage.schema import response_cache as t

        query = delete(t) if scope is None else delete(t).where(t.c.scope == scope)
        with self.database.write() as conn:
            return conn.execute(query).rowcount or 0

    def count(self, scope: str | None = None) -> int:
        """Entries still served (of one scope)."""
        from sqlalchemy import func, select

        from llmapp.storage.schema import response_cache as t

        query = select(func.count()).select_from(t).where(
            t.c.created_at >= time.time() - self.ttl_s)
        if scope is not None:
            query = query.where(t.c.scope == scope)
        with self.database.read() as conn:
            return int(conn.execute(query).scalar_one())


@dataclass
class CacheUse:
    """How one reply uses the cache: passed to :func:`llmapp.chat.start_reply`.

    Attributes:
        cache: the store.
        mode: ``exact`` or ``semantic`` (``off``: never looked up or filled).
        scope: see :class:`CacheRequest`.
        bypass: skip the lookup once (the reply is still cached).
        question: what identifies the request, when it is not the last
            message's text (a grounded answer's prompt wraps the question in
            its context).
        extra: more of what the model sees, for the partition (e.g. the
            retrieved chunks' ids).
    """

    cache: ResponseCache
    mode: str = "semantic"
    scope: str = "shared"
    bypass: bool = False
    question: str | None = None
    extra: Any = None

    def request(self, question: str, context: Any, model: str, params: dict) -> CacheRequest:
        """The :class:`CacheRequest` of a reply."""
        return CacheRequest(self.question if self.question is not None else question,
                            [context, self.extra] if self.extra is not None else context,
                            model, params, self.scope)


def open_cache(settings, scope: str, mode: str | None = None) -> tuple[CacheUse | None, str | None]:
    """The response cache for a command or a service, in
    ``LLMAPP_DATABASE_URL``'s database.

    Args:
        settings: :class:`~llmapp.settings.Settings` (TTL, threshold, scope).
        scope: the entries' owner when ``LLMAPP_CACHE_SCOPE`` is ``session``
            (e.g. ``"cli"``); with ``shared``, every caller shares entries.
        mode: ``semantic``, ``exact`` or ``off``; default ``LLMAPP_CACHE``.

    Returns:
        ``(cache, note)``: cache is None when off, or when the database cannot
        be opened, and then note says why.
    """
    from llmapp.storage import StoreError

    mode = mode or settings.cache_mode
    if mode == "off":
        return None, None
    try:
        database = Database(settings.database_url.get_secret_value())
    except StoreError as exc:
        return None, f"response cache off: {exc}"
    cache = ResponseCache(database, ttl_s=settings.cache_ttl_s,
                          threshold=settings.cache_threshold)
    return CacheUse(cache, mode, "shared" if settings.cache_scope == "shared" else scope), None
