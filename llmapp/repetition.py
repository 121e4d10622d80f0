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


LIST_ITEMS = 25
"""Short items (at most :data:`ITEM_WORDS` words, between commas, semicolons
or line breaks) in a row after which a reply is stopped as a runaway list:
the bundled model answered "Hi! My name is Priya and I live in Lisbon." with
512 tokens of ever-new place names, which repeat no 8-word run."""
ITEM_WORDS = 4
DIVERSITY_WINDOW, MIN_DIVERSITY = 200, 0.12
"""Over the last 200 words, fewer than 24 distinct ones (12%) stops a reply:
a loop that varies a word each time slips past the 8-word runs. Ordinary
prose keeps about half its words distinct over 200 words, and a numbered
list of 30 lines that differ only in their numbers 15%. Markdown table rows
are left out: a table repeats its columns' words by design."""


class LoopGuard:
    """Watches a reply as it streams and says when it has degenerated.

    Feed it the text pieces in order; :meth:`feed` returns True once the
    reply loops (some run of ``n`` words, at least 3 of them with a letter or
    digit, occurred ``repeats`` times; words compared as :func:`most_repeated`
    compares them), runs away into a list of ever-new short items
    (:data:`LIST_ITEMS`), or its vocabulary collapses (:data:`MIN_DIVERSITY`);
    :attr:`reason` says which. Cost: one dictionary update per word.
    """

    REASONS = {"repetition": "it began repeating itself",
               "list": f"it ran into a list of over {LIST_ITEMS} items",
               "diversity": "it kept saying the same few words"}
    """How each :attr:`reason` reads in a reply's stats line."""

    def __init__(self, n: int = GUARD_N, repeats: int = GUARD_REPEATS) -> None:
        self.n, self.repeats = n, repeats
        self._words: list[str] = []
        self._partial = ""
        self._seen: Counter[tuple[str, ...]] = Counter()
        self._recent: Counter[str] = Counter()
        self._window: list[str] = []
        self._item_words = 0
        self._items = 0
        self._line_start, self._table_row = True, False
        self.tripped = False
        self.reason: str | None = None
        """``repetition``, ``list`` or ``diversity`` once tripped."""

    def _trip(self, reason: str) -> None:
        if not self.tripped:
            self.tripped, self.reason = True, reason

    def _diversity(self, word: str) -> None:
        self._window.append(word)
        self._recent[word] += 1
        if len(self._window) > DIVERSITY_WINDOW:
            old = self._window.pop(0)
            self._recent[old] -= 1
            if not self._recent[old]:
                del self._recent[old]
            if len(self._recent) < MIN_DIVERSITY * DIVERSITY_WINDOW:
                self._trip("diversity")

    def _count_item(self, raw: str) -> None:
        """Track a run of short items: a word ending in , ; or a line break
        closes an item."""
        self._item_words += 1
        if raw[-1:] in ",;" or raw.endswith("\n"):
            if self._item_words <= ITEM_WORDS:
                self._items += 1
                if self._items > LIST_ITEMS:
                    self._trip("list")
            else:
                self._items = 0
            self._item_words = 0
        elif raw[-1:] in ".!?:" and self._item_words > ITEM_WORDS:
            self._items, self._item_words = 0, 0

    def feed(self, piece: str) -> bool:
        """Add a piece of the reply; True when the reply has degenerated."""
        text = self._partial + piece
        raws = re.findall(r"\S+\n?|\n", text)
        # the last word may continue in the next piece, unless the text ends in a space
        self._partial = ""
        if raws and not text[-1:].isspace():
            self._partial = raws.pop()
        for raw in raws:
            if self._line_start:
                self._table_row = raw.startswith("|")
            self._line_start = raw.endswith("\n")
            word = raw.strip().strip(".,;:!?\"'()[]*_`").lower()
            if not word:
                if raw == "\n" and self._item_words:
                    self._count_item("\n")
                continue
            self._count_item(raw)
            self._words.append(word)
            if not self._table_row:  # a table repeats its columns' words by design
                self._diversity(word)
            if len(self._words) >= self.n:
                gram = tuple(self._words[-self.n:])
                if sum(any(ch.isalnum() for ch in w) for w in gram) >= 3:
                    self._seen[gram] += 1
                    if self._seen[gram] >= self.repeats:
                        self._trip("repetition")
        return self.tripped
