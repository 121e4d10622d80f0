"""Protected phrases: slogans and other text the model must not hand back as
its own (a generated slogan that is "Just Do It" is a trademark problem).

Matching is fuzzy and word-aligned: every run of the text's words as long as
the phrase (give or take one word) is scored against it with RapidFuzz's
``ratio`` (normalized Indel similarity, 0-100), over lowercased text without
punctuation, so "Just do it!", "just-do-it" and "Thinq Different" match, and
"just do the dishes" does not. A score of at least :data:`MIN_SCORE` counts.

The list lives in the ``protected_phrases`` table of :mod:`llmapp.storage`
(its migration, 0005, seeds it with 18 well-known slogans) and is edited on
the Guardrails page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from llmapp.storage import Database, StoreError

MIN_SCORE = 90.0
ACTIONS = ("flag", "block")
_PUNCT = re.compile(r"[^\w\s]")


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower().replace("’", "'").replace("'", "")).split())


@dataclass(frozen=True)
class PhraseMatch:
    """A protected phrase found in a text.

    Attributes:
        phrase: the protected phrase.
        owner: whose it is ("" if unknown).
        score: RapidFuzz partial_ratio, 0-100.
        found: the text's matching part (normalized).
        blocked: True under the ``block`` action.
    """

    phrase: str
    owner: str
    score: float
    found: str
    blocked: bool


class ProtectedPhrases:
    """A list of protected phrases and what a match does.

    Args:
        phrases: ``(phrase, owner)`` pairs.
        action: ``flag`` (say so under the reply) or ``block`` (withdraw it).
    """

    def __init__(self, phrases: Iterable[tuple[str, str]], action: str = "flag") -> None:
        self.phrases = [(p.strip(), o.strip()) for p, o in phrases if p.strip()]
        self.action = action
        self._normed = [(_norm(p), p, o) for p, o in self.phrases]

    def find(self, text: str) -> list[PhraseMatch]:
        """The protected phrases in ``text``, best first."""
        from rapidfuzz import fuzz

        words = _norm(text).split()
        out = []
        for normed, phrase, owner in self._normed:
            size = len(normed.split())
            best, found = 0.0, ""
            for n in {max(size - 1, 1), size, size + 1}:
                for i in range(max(len(words) - n + 1, 0)):
                    window = " ".join(words[i:i + n])
                    score = fuzz.ratio(normed, window, score_cutoff=MIN_SCORE)
                    if score > best:
                        best, found = score, window
            if best:
                out.append(PhraseMatch(phrase, owner, round(best, 1), found,
                                       self.action == "block"))
        return sorted(out, key=lambda m: -m.score)


def load_phrases(database: Database) -> list[tuple[str, str]]:
    """The stored list, ``(phrase, owner)`` in the order added.

    Raises:
        StoreError: the database failed.
    """
    from sqlalchemy import select

    from llmapp.storage.schema import protected_phrases as t

    with database.read() as conn:
        return [(r.phrase, r.owner) for r in conn.execute(
            select(t.c.phrase, t.c.owner).order_by(t.c.id))]


def save_phrases(database: Database, phrases: Iterable[tuple[str, str]]) -> int:
    """Replace the stored list (blank phrases and repeats dropped); returns
    how many are kept.

    Raises:
        StoreError: a phrase longer than 200 characters, or the database failed.
    """
    from llmapp.storage.schema import protected_phrases as t

    kept: dict[str, tuple[str, str]] = {}
    for phrase, owner in phrases:
        phrase, owner = phrase.strip(), owner.strip()
        if len(phrase) > 200:
            raise StoreError(f"A protected phrase is at most 200 characters: "
                             f"“{phrase[:40]}…” is {len(phrase)}.")
        if phrase and _norm(phrase) not in kept:
            kept[_norm(phrase)] = (phrase, owner)
    now = time.time()
    with database.write() as conn:
        conn.execute(t.delete())
        for phrase, owner in kept.values():
            conn.execute(t.insert().values(phrase=phrase, owner=owner, created_at=now))
    return len(kept)


def parse_lines(text: str) -> list[tuple[str, str]]:
    """``Phrase | Owner`` lines (the owner optional) as pairs."""
    pairs = []
    for line in text.splitlines():
        phrase, _, owner = line.partition("|")
        if phrase.strip():
            pairs.append((phrase.strip(), owner.strip()))
    return pairs
