"""Undo the disguises that hide a request from the offline checker, before
it scores (issue 28: "m4k3 a b0mb", "b o m b" and base64 passed every level).

:func:`readings` gives the text as written and, when any rule below changes
it, the text as it reads once undone. The checker scores every reading and
keeps the highest score, so a rule that misfires on harmless text can only
add a reading, never hide the original.

- **Unicode compatibility forms** (NFKC, Unicode Standard Annex #15):
  fullwidth and styled letters ("ｂｏｍｂ", "𝐛𝐨𝐦𝐛") become plain ones; zero-width
  characters (U+200B-U+200D, U+2060, U+FEFF) and soft hyphens are removed.
- **Confusables** inside a word of mixed scripts (a Cyrillic "о" in a Latin
  word) become their Latin look-alike, from Unicode's confusables table
  (UTS #39) as packaged by ``confusable-homoglyphs``. A word in one script
  ("бомба") is left alone: it is another language, not a disguise
  (:mod:`llmapp.safety.language` handles that).
- **Leetspeak** in a word that mixes letters with digits or ``@$!|``
  ("m4k3", "b0mb", "$u1c1de"): each stand-in becomes the letter it stands
  for (:data:`LEET`). Numbers on their own ("1984", "4-0") are left alone.
- **Letters spaced apart**: three or more single letters separated by one
  space, dot, dash or underscore ("b o m b", "k.i.l.l") are joined.
- **Encoded runs**: a base64 run of 16 or more characters, or a hex run of
  16 or more digits, that decodes to mostly printable UTF-8 text is read
  decoded, in place.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from functools import lru_cache

INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                      "9": "g", "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})
"""Stand-in -> letter, the common leetspeak substitutions."""
_LEET_WORD = re.compile(r"(?<!\S)(?=[A-Za-z0-9@$!|+]*[A-Za-z])(?=[A-Za-z0-9@$!|+]*[0-9@$|+])"
                        r"[A-Za-z0-9@$!|+]+(?=[.,;:?!]*(?:\s|$))")
_SPACED = re.compile(r"(?<![A-Za-z])[A-Za-z](?:[ ._-][A-Za-z]){2,}(?![A-Za-z])")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){8,}(?![0-9A-Fa-f])")
_WORD = re.compile(r"\w+")
MIN_PRINTABLE = 0.9
"""Share of printable characters a decoded run needs to count as text."""


def readings(text: str) -> list[str]:
    """``[text]``, plus ``text`` with its disguises undone when that differs.

    Args:
        text: any string.

    Returns:
        One or two strings; the first is always ``text`` itself.
    """
    undone = undisguise(text)
    return [text] if undone == text else [text, undone]


@lru_cache(maxsize=1024)
def undisguise(text: str) -> str:
    """``text`` with every rule of this module applied: compatibility forms
    first, then encoded runs (before leetspeak, which would garble them),
    confusables, leetspeak and spaced letters."""
    out = unicodedata.normalize("NFKC", text).translate(INVISIBLE)
    out = _HEX.sub(lambda m: _decoded(m.group(0), _hex) or m.group(0), out)
    out = _BASE64.sub(lambda m: _decoded(m.group(0), _b64) or m.group(0), out)
    out = _WORD.sub(lambda m: _unconfuse(m.group(0)), out)
    out = _LEET_WORD.sub(lambda m: m.group(0).translate(LEET), out)
    return _SPACED.sub(lambda m: _joined(m.group(0)), out).strip()


def _joined(run: str) -> str:
    """Spaced letters joined; a leading "a" or "I" stays a word of its own
    when at least three letters follow ("make a b o m b")."""
    letters = re.sub(r"[ ._-]", "", run)
    if letters[0] in "aAI" and len(letters) >= 4 and run[1] == " ":
        return f"{letters[0]} {letters[1:]}"
    return letters


def _unconfuse(word: str) -> str:
    """Letters of other scripts in a word that also has Latin letters become
    their Latin look-alikes (UTS #39); other words come back unchanged."""
    if word.isascii() or not any("a" <= c.lower() <= "z" for c in word):
        return word
    from confusable_homoglyphs import confusables

    found = confusables.is_confusable(word, greedy=True, preferred_aliases=["latin"]) or []
    swap = {f["character"]: f["homoglyphs"][0]["c"] for f in found if f["homoglyphs"]}
    return "".join(swap.get(c, c) for c in word)


def _b64(run: str) -> bytes:
    return base64.b64decode(run + "=" * (-len(run) % 4), validate=True)


def _hex(run: str) -> bytes:
    return binascii.unhexlify(re.sub(r"[ :]", "", run))


def _decoded(run: str, decode) -> str | None:
    """The run decoded as UTF-8 text, or None when it is not text (most
    base64-looking runs, such as long identifiers, decode to bytes)."""
    try:
        text = decode(run).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    printable = sum(c.isprintable() or c.isspace() for c in text)
    letters = sum(c.isalpha() for c in text)
    if not text or printable / len(text) < MIN_PRINTABLE or letters < len(text) / 2:
        return None
    return f" {text} "
