"""The offline safety checker: nearest labelled exemplars under the bundled
all-MiniLM-L6-v2, and a profanity word list. No downloads, no key.

**Scores.** A text (each window of a long one, and each of its sentences)
is embedded, and its
``k = 8`` most similar exemplars of ``data/exemplars.json`` (unsafe ones by
category, and benign look-alikes such as "how do I kill a Python process")
vote, weighted by ``softmax(similarity / 0.05)``: a category's score is its
share of the vote, a k-nearest-neighbour estimate. It is then scaled down
when even the category's closest exemplar is far (cosine below 0.5,
reaching 0 at 0.3), so a text unlike every exemplar scores near 0.

**Profanity** is a match of a word of ``profanityfilter``'s list (its
``data/badwords.txt``), less the identity and anatomy terms that list carries
(e.g. "lesbian", "anus"): a filter that blocks who people are harms them.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np

from llmapp.safety.taxonomy import CATEGORIES

EXEMPLARS = Path(__file__).with_name("data") / "exemplars.json"
K = 8
TEMPERATURE = 0.05
FAR, NEAR = 0.30, 0.50
"""Cosine similarity to a category's closest exemplar below which its score
is 0 (FAR), and above which it is not scaled down (NEAR)."""
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


class LocalChecker:
    """Scores text by category offline.

    Args:
        embedder: LangChain ``Embeddings``; default the bundled MiniLM (the
            constants above were set with it).
    """

    name = "local"

    def __init__(self, embedder=None) -> None:
        self._embedder = embedder
        self._matrix: np.ndarray | None = None
        self._labels: np.ndarray | None = None
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
        if self._embedder is None:
            from llmapp.rag.embeddings import LocalEmbeddings

            self._embedder = LocalEmbeddings()
        data = json.loads(EXEMPLARS.read_text())
        texts, labels = [], []
        for label, items in data.items():
            if label.startswith("_"):
                continue
            texts += items
            labels += [label] * len(items)
        matrix = np.asarray(self._embedder.embed_documents(texts), dtype=np.float32)
        self._matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        self._labels = np.array(labels)

    def scores(self, text: str) -> dict[str, float]:
        """``{category: score in [0, 1]}`` for every category of
        :data:`~llmapp.safety.taxonomy.CATEGORIES`, the highest over the
        text's windows."""
        if self._matrix is None:
            self._load()
        vectors = self._vectors(pieces(text))
        out = {c: 0.0 for c in CATEGORIES}
        for sims in vectors @ self._matrix.T:
            top = np.argsort(-sims)[:K]
            weights = np.exp((sims[top] - sims[top].max()) / TEMPERATURE)
            weights /= weights.sum()
            for category in CATEGORIES:
                if category == "profanity":
                    continue
                mask = self._labels == category
                if not mask.any():
                    continue
                closest = float(sims[mask].max())
                scale = min(max((closest - FAR) / (NEAR - FAR), 0.0), 1.0)
                share = float(weights[self._labels[top] == category].sum())
                out[category] = max(out[category], round(share * scale, 3))
        out["profanity"] = 1.0 if profane_words(text) else 0.0
        return out
