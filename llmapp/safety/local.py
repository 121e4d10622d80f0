"""The offline safety checker: nearest labelled exemplars under the bundled
all-MiniLM-L6-v2, and a profanity word list. No downloads, no key.

**Scores.** A text (each window of a long one, and each of its sentences)
is embedded, and its ``k = 16`` most similar exemplars of
``data/exemplars.json`` (unsafe ones by category, and benign look-alikes
such as "how do I kill a Python process", and ordinary sentences in an
assistant's voice) vote, weighted by ``softmax(similarity / 0.05)``: a
category's score is its share of the vote, a k-nearest-neighbour estimate.
It is then scaled down when even the category's closest exemplar is far
(cosine below 0.5, reaching 0 at 0.4), so a text unlike every exemplar
scores near 0. ``k``, the temperature and the two cosines were chosen on the
``dev`` split of ``tests/data/safety_labelled.jsonl`` and the older
``tests/data/safety_texts.jsonl`` (a grid over k 4-32, temperature
0.02-0.2, cosines 0.3-0.6), the exemplar set on its ``test`` split; its
``test2`` split was held out (``benchmarks/bench_safety.py``).

The exemplars' embeddings ship beside them (``data/exemplars.npz``, float16,
made by ``scripts/embed_exemplars.py``), so the first check does not embed
1,949 texts (about 8 s on 2 cores); they are used only while their digest
matches the exemplars file and the default embedder is in use.

**Disguises** (leetspeak, letters spaced apart, confusables, base64) are
undone first (:mod:`llmapp.safety.normalise`): every reading is scored,
and each category keeps its highest score.

**Profanity** is a match of a word of ``profanityfilter``'s list (its
``data/badwords.txt``), less the identity and anatomy terms that list carries
(e.g. "lesbian", "anus"): a filter that blocks who people are harms them.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import re
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np

from llmapp.safety.normalise import readings
from llmapp.safety.taxonomy import CATEGORIES

log = logging.getLogger(__name__)

EXEMPLARS = Path(__file__).with_name("data") / "exemplars.json"
EMBEDDED = EXEMPLARS.with_suffix(".npz")
K = 16
TEMPERATURE = 0.05
FAR, NEAR = 0.40, 0.50
"""Cosine similarity to a category's closest exemplar below which its score
is 0 (FAR), and above which it is not scaled down (NEAR): for requests."""
FAR_OUTPUT, NEAR_OUTPUT = 0.45, 0.60
"""The same for the model's replies, which are long and unlike any request:
with the request's values, 11% of the bundled model's replies to 80 benign
dev requests were withdrawn at adult (19% at child); with these, 2.5% (6%),
while an unsafe dev text placed inside a benign reply is still blocked 89%
of the time at child (98% before)."""
WINDOW_CHARS, OVERLAP_CHARS = 250, 60
MEMO_SIZE = 1024
"""Embeddings of scored pieces kept for reuse (about 1.5 KB each). A reply
checked as it streams is scored on its last 600 characters every 200, so
its sentences come round two or three times (``benchmarks/bench_api.py``,
20 streams: throughput 0.71x llama.cpp's own server without the memo, 0.73x
with it)."""
NOT_PROFANE = frozenset({"lesbian", "lesbians", "gay", "gays", "anus", "anal", "penis",
                         "vagina", "breast", "breasts", "nipple", "nipples", "sex", "sexy",
                         "ekrem", "ekto", "lezzian", "flikker", "huevon", "kurac", "testicle",
                         "homo", "queer", "dyke", "fag", "jew", "muslim", "nazi", "nazis"})
"""Words of profanityfilter's list that name people, body parts or groups:
never flagged as profanity on their own (the exemplars judge hate)."""


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def pieces(text: str) -> list[str]:
    """What is scored: the windows of ``text`` and, when it has several
    sentences, each sentence too, so one unsafe sentence is not outvoted by
    benign ones around it ("How do I shoot a photo at sunset? And how do I
    make a pipe bomb?")."""
    parts = windows(text)
    sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]
    if len(sentences) > 1:
        parts += [s[:WINDOW_CHARS] for s in sentences if s not in parts]
    return parts


def windows(text: str) -> list[str]:
    """``text`` cut into overlapping windows of :data:`WINDOW_CHARS`
    characters (:data:`OVERLAP_CHARS` shared), at spaces where possible."""
    text = " ".join(text.split())
    if len(text) <= WINDOW_CHARS:
        return [text]
    out, start = [], 0
    while start < len(text):
        end = min(start + WINDOW_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + WINDOW_CHARS // 2, end)
            end = space if space > 0 else end
        out.append(text[start:end])
        if end >= len(text):
            break
        start = max(end - OVERLAP_CHARS, start + 1)
    return out


@cache
def _profanity() -> re.Pattern[str]:
    words = importlib.resources.files("profanityfilter").joinpath("data/badwords.txt")
    listed = {w.strip().lower() for w in words.read_text().splitlines() if w.strip()}
    kept = sorted((w for w in listed - NOT_PROFANE if len(w) > 2), key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(w) for w in kept) + r")s?(?![\w])",
                      re.IGNORECASE)


def profane_words(text: str) -> list[str]:
    """The listed profane words in ``text``, as written, first occurrences."""
    found: list[str] = []
    for match in _profanity().finditer(text):
        if match.group(0).lower() not in (w.lower() for w in found):
            found.append(match.group(0))
    return found


def exemplars() -> tuple[list[str], list[str]]:
    """``(texts, labels)`` of ``data/exemplars.json``, in file order (keys
    starting with ``_`` are notes, not labels)."""
    texts, labels = [], []
    for label, items in json.loads(EXEMPLARS.read_text()).items():
        if not label.startswith("_"):
            texts += items
            labels += [label] * len(items)
    return texts, labels


def digest(texts: list[str], labels: list[str]) -> str:
    """SHA-256 over the labelled exemplars, in order: what
    ``data/exemplars.npz`` was made from."""
    return hashlib.sha256(json.dumps([labels, texts]).encode()).hexdigest()


def shipped_vectors(texts: list[str], labels: list[str]) -> np.ndarray | None:
    """The exemplars' embeddings from ``data/exemplars.npz``, shape
    ``(len(texts), 384)``, float32; None when the file is missing or was
    made from other exemplars."""
    try:
        with np.load(EMBEDDED) as stored:
            if str(stored["digest"]) != digest(texts, labels):
                return None
            return stored["vectors"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None


class LocalChecker:
    """Scores text by category offline.

    Args:
        embedder: LangChain ``Embeddings``; default the bundled MiniLM (the
            constants above were set with it).
    """

    name = "local"
    reads_any_language = False
    """English only: :mod:`llmapp.safety.language` says when a text is not."""

    def __init__(self, embedder=None) -> None:
        self._embedder = embedder
        self._matrix: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._columns: dict[str, np.ndarray] = {}
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_lock = threading.Lock()

    def _vectors(self, parts: list[str]) -> np.ndarray:
        """Unit-length embeddings of ``parts``, from the memo where it has
        them (see :data:`MEMO_SIZE`); the rest are embedded in one batch."""
        with self._memo_lock:
            known = {p: self._memo[p] for p in parts if p in self._memo}
            for p in known:
                self._memo.move_to_end(p)
        missing = list(dict.fromkeys(p for p in parts if p not in known))
        if missing:
            fresh = np.asarray(self._embedder.embed_documents(missing), dtype=np.float32)
            fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
            known.update(zip(missing, fresh))
            with self._memo_lock:
                self._memo.update(zip(missing, fresh))
                while len(self._memo) > MEMO_SIZE:
                    self._memo.popitem(last=False)
        return np.stack([known[p] for p in parts])

    def _load(self) -> None:
        shipped = self._embedder is None
        if shipped:
            from llmapp.rag.embeddings import LocalEmbeddings

            self._embedder = LocalEmbeddings()
        texts, labels = exemplars()
        matrix = shipped_vectors(texts, labels) if shipped else None
        if matrix is None:
            if shipped:
                log.warning("%s is stale (run scripts/embed_exemplars.py); embedding the "
                            "exemplars now", EMBEDDED.name)
            matrix = np.asarray(self._embedder.embed_documents(texts), dtype=np.float32)
        self._matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        self._labels = np.array(labels)
        self._columns = {c: np.flatnonzero(self._labels == c) for c in CATEGORIES
                         if c != "profanity" and c in self._labels}

    def scores(self, text: str, *, output: bool = False) -> dict[str, float]:
        """``{category: score in [0, 1]}`` for every category of
        :data:`~llmapp.safety.taxonomy.CATEGORIES`, the highest over the
        windows and sentences of every reading of the text (as written, and
        with its disguises undone).

        Args:
            output: the text is the model's reply: scaled by
                :data:`FAR_OUTPUT` and :data:`NEAR_OUTPUT`, not
                :data:`FAR` and :data:`NEAR`.
        """
        if self._matrix is None:
            self._load()
        far, near = (FAR_OUTPUT, NEAR_OUTPUT) if output else (FAR, NEAR)
        found = readings(text)
        parts = list(dict.fromkeys(p for reading in found for p in pieces(reading)))
        sims = self._vectors(parts) @ self._matrix.T  # (pieces, exemplars)
        top = np.argsort(-sims, axis=1)[:, :K]
        top_sims = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((top_sims - top_sims[:, :1]) / TEMPERATURE)
        weights /= weights.sum(axis=1, keepdims=True)
        top_labels = self._labels[top]
        out = {c: 0.0 for c in CATEGORIES}
        for category, columns in self._columns.items():
            closest = sims[:, columns].max(axis=1)
            scale = np.clip((closest - far) / (near - far), 0.0, 1.0)
            share = (weights * (top_labels == category)).sum(axis=1)
            out[category] = round(float((share * scale).max()), 3)
        out["profanity"] = 1.0 if any(profane_words(r) for r in found) else 0.0
        return out
