"""Does a reply loop? Small models under greedy-ish decoding often repeat a
phrase or a sentence until ``max_tokens``; this detects it.

A reply *loops* when one word n-gram (default 4 words, at least 3 of them
containing a letter or digit, so Markdown table rules do not count) occurs
``min_repeats`` times or more. Case and punctuation around words are ignored.
"""

from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"\S+")


def most_repeated(text: str, n: int = 4) -> tuple[str, int]:
    """The word n-gram of ``text`` that occurs most often, and its count
    (``("", 0)`` for a text shorter than ``n`` words)."""
    words = [w.strip(".,;:!?\"'()[]*_`").lower() for w in WORD.findall(text)]
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    best = [(g, c) for g, c in grams.most_common()
            if sum(any(ch.isalnum() for ch in w) for w in g) >= 3]
    if not best:
        return "", 0
    gram, count = best[0]
    return " ".join(gram), count


def loops(text: str, n: int = 4, min_repeats: int = 3) -> bool:
    """True when some word n-gram occurs ``min_repeats`` times or more."""
    return most_repeated(text, n)[1] >= min_repeats


GUARD_N = 8
GUARD_REPEATS = 3
"""A reply is stopped when one run of 8 words comes back a third time. The
8 words (not the 4 of :func:`loops`) keep ordinary prose, lists and tables
clear of it: on the pages' example prompts no reply that did not loop
tripped it (``benchmarks/bench_loops.py``)."""


class LoopGuard:
    """Watches a reply as it streams and says when it has started to loop.

    Feed it the text pieces in order; :meth:`feed` returns True once some
    run of ``n`` words (at least 3 of them with a letter or digit) has
    occurred ``repeats`` times. Words are compared as :func:`most_repeated`
    compares them. Cost: one dictionary update per completed word.
    """

    def __init__(self, n: int = GUARD_N, repeats: int = GUARD_REPEATS) -> None:
        self.n, self.repeats = n, repeats
        self._words: list[str] = []
        self._partial = ""
        self._seen: Counter[tuple[str, ...]] = Counter()
        self.tripped = False

    def feed(self, piece: str) -> bool:
        """Add a piece of the reply; True when the reply now loops."""
        text = self._partial + piece
        words = text.split()
        # the last word may continue in the next piece, unless the text ends in a space
        self._partial = "" if not words or text[-1:].isspace() else words.pop()
        for word in words:
            self._words.append(word.strip(".,;:!?\"'()[]*_`").lower())
            if len(self._words) >= self.n:
                gram = tuple(self._words[-self.n:])
                if sum(any(ch.isalnum() for ch in w) for w in gram) >= 3:
                    self._seen[gram] += 1
                    if self._seen[gram] >= self.repeats:
                        self.tripped = True
        return self.tripped
