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
