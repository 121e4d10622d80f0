"""The response cache in front of the model: exact and semantic.

- **Exact.** The key is the SHA-256 of the normalized question (case, spaces
  and end punctuation folded) together with everything else the model sees
  (system prompt, history, retrieved context), the model, and its sampling
  settings.
- **Semantic.** Among entries of the same *partition* (the same everything
  but the question), the cached question closest to the new one by cosine
  similarity of all-MiniLM-L6-v2 embeddings, if it is at least
  :data:`llmapp.config.CACHE_THRESHOLD`, **and** :func:`disagreement` finds
  nothing that changes the answer: the two must agree on numbers, ordinals
  (World War I / II), units, negation, names and order. Embeddings alone cannot tell "open a
  bank account" from "close a bank account" (cosine 0.94) or "100 dollars
  to euros" from "100 euros to dollars" (0.99): GPTCache's users report
  exactly such answers served for the opposite question. Measured on
  ``tests/data/cache_pairs_dev.jsonl`` (chosen on) and ``cache_pairs_test.jsonl``
  (held out) by ``benchmarks/bench_cache.py``.
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmapp import config
from llmapp.errors import ConfigError
from llmapp.storage import Database

MODES = ("off", "exact", "semantic")
SCOPES = ("session", "shared")
MAX_CANDIDATES = 2000
"""Most recent entries of a partition compared in a semantic lookup."""

_TOKEN = re.compile(r"\d+(?:st|nd|rd|th)\b|[^\W\d_]+(?:'[^\W\d_]+)?|\d+(?:[.,]\d+)*|[$€£¥%°]")
_STOP = frozenset("""a an the of in on for to into with by at from about as and or is are was
were be been being do does did can could should would will shall may might must i me my we
our you your it its this that these those what which who whom whose when where why how there
here please tell give show explain define describe mean means meaning s t let like some any
much many get""".split())
_DIRECTION = frozenset({"to", "into", "from", "than", "vs", "versus", "before", "after",
                        "over", "under"})
_OPPOSITE_PARTICLES = {"on": "off", "off": "on", "in": "out", "out": "in", "up": "down",
                       "down": "up"}
"""Particles that flip a phrasal verb (turn on / off, log in / out, zoom in / out)."""
_NEGATION = frozenset({"no", "nobody", "noone"})
_QUESTION_WORDS = {"who": "person", "whom": "person", "whose": "person", "when": "time",
                   "where": "place", "why": "reason"}
"""Question words that fix the kind of answer: a person, a time, a place, a
reason. ``what``, ``which`` and ``how`` are left out: they ask for any kind
(``How tall`` / ``What is the height``, ``What year`` / ``When``)."""
_NOUN_LINK = re.compile(r"\b(?:of|for|about)\b|['’]s\b")
"""Words that let two nouns trade places without a change of roles
(``GDP of Japan`` / ``Japan's GDP``, ``a recipe for pancakes`` / ``a pancake recipe``)."""
_PASSIVE = re.compile(r"\b(?:be|is|are|was|were|been|being)\s+(?:\w+\s+)?\w+(?:ed|en|wn|t)\b"
                      r"|\bby\s+whom\b")
"""Negation words beyond NLTK's VADER list (``VaderConstants.NEGATE``, Hutto and
Gilbert 2014), which is used as well."""
_CARDINALS = {w: i for i, w in enumerate(
    "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split()) if w != "_"}
_CARDINALS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
                   "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
                   "million": 10**6, "billion": 10**9, "dozen": 12, "half": 0.5,
                   "twice": 2, "double": 2, "triple": 3})
"""English number names ("one" is left out: it is a pronoun as often as a number)."""
_ORDINALS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
    "twentieth".split())}
_ORDINALS.update({"last": -1, "final": -1, "next": -2, "previous": -3, "penultimate": -4})
_ORDINAL_DIGITS = re.compile(r"(\d+)(?:st|nd|rd|th)$")
_ROMAN = re.compile(r"^(?=[IVXLC])(C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
"""A Roman numeral up to CCCXCIX (Louis XIV, World War II, Elizabeth I)."""
_UNITS = {
    # time
    "second": "s", "sec": "s", "secs": "s", "minute": "min", "min": "min", "mins": "min",
    "hour": "h", "hr": "h", "hrs": "h", "day": "day", "week": "week", "month": "month",
    "year": "year", "decade": "decade", "century": "century",
    # length (SI and US customary)
    "m": "m", "meter": "m", "metre": "m", "km": "km", "kilometer": "km", "kilometre": "km",
    "cm": "cm", "centimeter": "cm", "centimetre": "cm", "mm": "mm", "millimeter": "mm",
    "millimetre": "mm", "mile": "mi", "mi": "mi", "foot": "ft", "feet": "ft", "ft": "ft",
    "inch": "in", "inches": "in", "yard": "yd", "yd": "yd",
    # mass
    "g": "g", "gram": "g", "gramme": "g", "kg": "kg", "kilogram": "kg", "kilo": "kg",
    "mg": "mg", "milligram": "mg", "lb": "lb", "lbs": "lb", "pound": "pound", "ounce": "oz",
    "oz": "oz", "ton": "t", "tonne": "t", "stone": "st",
    # volume
    "l": "l", "liter": "l", "litre": "l", "ml": "ml", "milliliter": "ml", "millilitre": "ml",
    "gallon": "gal", "gal": "gal", "quart": "qt", "pint": "pt", "cup": "cup",
    "tablespoon": "tbsp", "tbsp": "tbsp", "teaspoon": "tsp", "tsp": "tsp",
    # temperature, speed, data, energy, share
    "celsius": "degC", "centigrade": "degC", "fahrenheit": "degF", "kelvin": "K",
    "mph": "mph", "kph": "km/h", "knot": "kn", "byte": "B", "kb": "kB", "mb": "MB",
    "gb": "GB", "tb": "TB", "calorie": "kcal", "kcal": "kcal", "joule": "J", "watt": "W",
    "volt": "V", "percent": "%", "%": "%",
    # money (ISO 4217 codes and their names)
    "$": "USD", "dollar": "USD", "usd": "USD", "€": "EUR", "euro": "EUR", "eur": "EUR",
    "£": "GBP", "gbp": "GBP", "sterling": "GBP", "¥": "JPY", "yen": "JPY", "jpy": "JPY",
    "yuan": "CNY", "rmb": "CNY", "rupee": "INR", "franc": "CHF", "peso": "MXN",
    "won": "KRW", "ruble": "RUB", "rouble": "RUB", "bitcoin": "BTC",
}
"""Unit names, plurals folded, to one symbol each: SI units and prefixes (BIPM, *The
International System of Units*, 9th ed., 2019), US customary units (NIST Handbook 44,
appendix C), ISO 4217 currency codes. "pound" stays itself (mass or sterling)."""
_TIME_UNITS = frozenset({"s", "min", "h", "day", "week", "month", "year"})
_DIMENSIONS = {
    "tall": "height", "high": "height", "height": "height",
    "long": "length", "length": "length", "duration": "length",
    "old": "age", "age": "age", "far": "distance", "distance": "distance",
    "heavy": "weight", "weigh": "weight", "weight": "weight", "mass": "weight",
    "deep": "depth", "depth": "depth", "wide": "width", "width": "width",
    "broad": "width", "big": "size", "large": "size", "size": "size",
    "fast": "speed", "quick": "speed", "speed": "speed", "hot": "temperature",
    "cold": "temperature", "temperature": "temperature", "expensive": "cost",
    "cost": "cost", "price": "cost",
    "largest": "largest", "biggest": "largest", "smallest": "smallest", "tiniest": "smallest",
    "closest": "nearest", "nearest": "nearest",
    "wrote": "author", "write": "author", "written": "author", "author": "author",
    "writer": "author", "create": "make", "make": "make", "made": "make",
}
"""Words that ask for the same thing: a degree adjective and its dimension noun ("how
tall" / "height", "how far" / "distance", the pairs of English measure adjectives,
Bierwisch 1989, *Dimensional Adjectives*), superlatives of the same scale, and the
verb of a work and its maker ("wrote" / "author"). Matched as whole words, before
stemming."""
_stemmer = None
_negate: frozenset[str] | None = None


def normalize(question: str) -> str:
    """The question as the exact key sees it: lowercase, single spaces, no
    end punctuation (``"What is RAG?"`` and ``"what is  rag"`` are one key)."""
    return " ".join(question.lower().split()).rstrip("?!.。 ")


def _raw_tokens(text: str) -> list[str]:
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"(?i)\bcan't\b", "can not", text)
    text = re.sub(r"(?i)\bwon't\b", "will not", text)
    text = re.sub(r"(?i)n't\b", " not", text)
    text = re.sub(r"(?i)\bcannot\b", "can not", text)
    text = re.sub(r"(?i)(\w)'s\b", r"\1", text)  # possessive or "is": neither changes the request
    text = re.sub(r"(?i)'(re|ve|ll|d|m)\b", "", text)
    return _TOKEN.findall(text)


def _words(text: str) -> list[str]:
    return [t.lower() for t in _raw_tokens(text)]


def _stem(word: str) -> str:
    global _stemmer
    if _stemmer is None:
        from nltk.stem import PorterStemmer

        _stemmer = PorterStemmer()
    return _stemmer.stem(word)


def _is_negation(word: str) -> bool:
    global _negate
    if _negate is None:
        from nltk.sentiment.vader import VaderConstants

        _negate = frozenset(VaderConstants.NEGATE) | _NEGATION
    return word in _negate


def _singular(word: str) -> str:
    if word in _UNITS or word in ("inches", "feet"):
        return word
    for end, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(end) and word[:-len(end)] + repl in _UNITS:
            return word[:-len(end)] + repl
    return word


def _number(token: str) -> float | None:
    if token[0].isdigit():
        try:
            return float(token.replace(",", ""))
        except ValueError:
            return None
    return _CARDINALS.get(token)


@dataclass
class _Parsed:
    """What the agreement check reads in one question."""

    numbers: list = field(default_factory=list)
    ordinals: list = field(default_factory=list)
    quantities: list = field(default_factory=list)
    units: set = field(default_factory=set)
    entities: list = field(default_factory=list)
    quoted: list = field(default_factory=list)
    negations: int = 0
    particles: set = field(default_factory=set)
    ordered: list = field(default_factory=list)
    directions: list = field(default_factory=list)
    how_long: bool = False
    words: list = field(default_factory=list)
    content: list = field(default_factory=list)


_QUOTED = re.compile(r"(?<!\w)'([^']+)'(?!\w)|\"([^\"]+)\"")
_SYMBOLS = frozenset("$€£¥%")


def _parse(text: str) -> _Parsed:
    """The numbers, ordinals, units, names, negations and content words of
    a question, for :func:`disagreement`."""
    p = _Parsed(quoted=sorted(q.strip().lower() for found in _QUOTED.findall(text)
                              for q in found if q))
    raw = _raw_tokens(text)
    low = [t.lower() for t in raw]
    p.words = low
    skip: set[int] = set()
    for i, (tok, word) in enumerate(zip(raw, low, strict=True)):
        prev = raw[i - 1] if i else ""
        after_name = i > 1 and prev[:1].isupper() and prev.lower() not in _STOP
        if _ORDINAL_DIGITS.match(word):
            p.ordinals.append(int(_ORDINAL_DIGITS.match(word).group(1)))
            skip.add(i)
        elif word in _ORDINALS:
            p.ordinals.append(_ORDINALS[word])
            skip.add(i)
        elif _ROMAN.match(tok) and (after_name or (len(tok) > 1 and set(tok) <= set("IVX"))):
            p.ordinals.append(_roman(tok))
            skip.add(i)
        elif _is_negation(word):
            p.negations += 1
            skip.add(i)
        elif (value := _number(word)) is not None:
            p.numbers.append(value)
            skip.add(i)
            unit = _UNITS.get(_singular(low[i + 1])) if i + 1 < len(low) else None
            if unit is None and i + 2 < len(low) and low[i + 1] in ("degree", "degrees"):
                unit = _UNITS.get(_singular(low[i + 2]))
            if unit is None and i and low[i - 1] in ("$", "€", "£", "¥"):
                unit = _UNITS[low[i - 1]]
            if unit is not None:
                p.quantities.append((value, unit))
                skip.add(i + 1)
        elif tok[:1].isupper() and (i > 0 and word not in _STOP or len(tok) > 1
                                    and tok.isupper()):
            p.entities.append(word)
    for i, word in enumerate(low):
        before = low[max(i - 2, 0):i]
        if word in _OPPOSITE_PARTICLES:
            p.particles.add(word)
        if i in skip:
            continue
        unit = _UNITS.get(_singular(word))
        if unit is not None and (len(word) > 1 or word in _SYMBOLS):
            p.ordered.append("unit:" + unit)
            asked = "how many" in " ".join(low[max(i - 3, 0):i])  # how many (vacation) days
            target = before[-1:] in (["to"], ["into"], ["in"]) or (  # to miles, in a pound
                len(before) == 2 and before[0] in ("to", "into", "in")
                and before[1] in ("a", "an", "the"))
            if asked or target:
                p.units.add(unit)
                if unit in _TIME_UNITS and before == ["how", "many"]:
                    p.content.append("dim:length")  # "how many minutes" asks "how long"
                continue
        if word in _DIRECTION:
            p.directions.append(len(p.ordered))
            p.ordered.append("dir:" + word)
            p.content.append("dir:" + ("to" if word == "into" else word))  # before / after
            continue
        if word in _STOP or word in ("degree", "degrees"):
            continue
        if word == "long" and before[-1:] == ["how"]:
            p.how_long = True
        token = "dim:" + _DIMENSIONS[word] if word in _DIMENSIONS else _stem(word)
        p.content.append(token)
        p.ordered.append(token)
    return p


def _roman(numeral: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for a, b in zip(numeral, numeral[1:] + " ", strict=True):
        v = values[a]
        total += -v if b != " " and values[b] > v else v
    return total


def _related(word: str, others: set[str]) -> bool:
    """One stem a prefix of another (``dict`` and ``dictionari``)."""
    return any(min(len(word), len(o)) >= 4 and (word.startswith(o) or o.startswith(word))
               for o in others)


def _opposite_prefix(a: set[str], b: set[str]) -> bool:
    """A word in one is another's with a negating prefix (lock / unlock,
    enable / disable, follow / unfollow)."""
    for x in a:
        for y in b:
            for pre in ("un", "dis", "de", "in", "im", "non", "anti"):
                if min(len(x), len(y)) >= 4 and (x == pre + y or y == pre + x):
                    return True
    return {"en" + w[3:] for w in a if w.startswith("dis")} & b != set() or \
        {"en" + w[3:] for w in b if w.startswith("dis")} & a != set()


def _apart(p: _Parsed, names: list[str]) -> bool:
    """Whether a content word other than a name stands between the first
    and the last of ``names`` (``Caesar defeat Pompey``, not ``GDP of Japan``)."""
    at = [i for i, w in enumerate(p.ordered) if w in {_stem(n) for n in names}]
    return bool(at) and any(w not in {_stem(n) for n in p.entities} and not w.startswith("dir:")
                            for w in p.ordered[min(at) + 1:max(at)])


def _reversed(pa: _Parsed, pb: _Parsed) -> bool:
    """Whether, around a direction word of ``pa`` (``x to y``, ``x than y``),
    the nearest words on either side that both questions share come in the
    other order in ``pb`` (``dollars to euros`` / ``euros to dollars``)."""
    shared = set(pa.ordered) & set(pb.ordered)
    for i in pa.directions:
        left = next((w for w in reversed(pa.ordered[:i]) if w in shared
                     and not w.startswith("dir:")), None)
        right = next((w for w in pa.ordered[i + 1:] if w in shared
                      and not w.startswith("dir:")), None)
        if left and right and left != right and pb.ordered.index(right) < \
                pb.ordered.index(left):
            return True
    return False


def _swapped(ca: list[str], cb: list[str]) -> bool:
    """Whether subject and object traded places: the same content words in
    exactly the reverse order (``Who did Brutus betray?`` / ``Who betrayed
    Brutus?``), or two shared words swapped around a third that stays between
    them (``Does the dog chase the cat?`` / ``Does the cat chase the dog?``).
    A phrase moved to the front (``In Python, how do I sort a list?``)
    reverses no such triple, and passes."""
    a, b = list(dict.fromkeys(ca)), list(dict.fromkeys(cb))
    if len(a) >= 2 and set(a) == set(b) and a != b and a == b[::-1]:
        return True
    pos = {w: b.index(w) for w in a if w in b}
    shared = [w for w in a if w in pos]
    return any(pos[shared[k]] > pos[shared[m]] > pos[shared[n]]
               for k in range(len(shared)) for m in range(k + 1, len(shared))
               for n in range(m + 1, len(shared)))


def disagreement(a: str, b: str) -> str | None:
    """Why two similar questions do not ask for the same answer, or None when
    nothing in them says so. The checks, in order:

    - ``numbers``: their numbers (digits and number words, in order) differ
      (``12 times 7`` / ``12 times 8``, ``ten ideas`` / ``three ideas``);
    - ``ordinals``: their ordinals differ: ``first`` / ``1st`` / ``I`` after
      a name are one, ``World War I`` / ``World War II``, ``Louis XIV`` /
      ``Louis XVI``, ``16th`` / ``18th`` are not;
    - ``units``: the quantities (number and unit, e.g. ``10 km``) or the
      bare units asked for (``to miles``) differ; ``how many minutes`` asks
      ``how long``;
    - ``negation``: they hold a different number of negations (NLTK's VADER
      list, ``no``; ``n't`` is read as ``not``), or a word in one is the other's
      with a negating prefix (``lock`` / ``unlock``), or a phrasal verb's
      particle differs (``turn on`` / ``turn off``);
    - ``entities``: a name (a capitalized word past the first, an acronym, a
      quoted phrase) of one is missing from the other, or shared names come
      in another order (``Did Caesar defeat Pompey?``);
    - ``order``: with a direction word (to, from, than, before...), their
      shared content words come in another order (``dollars to euros`` /
      ``euros to dollars``);
    - ``question word``: both ask with a question word that fixes the kind
      of answer, and the kinds differ (:data:`_QUESTION_WORDS`: ``Where`` /
      ``When was Einstein born?``);
    - ``roles``: the same content words in exactly the reverse order, in
      questions with no passive and no ``of``/``for``/``about``/``'s``
      (:data:`_NOUN_LINK`) (``Who did Brutus betray?`` / ``Who
      betrayed Brutus?``; ``Who wrote it?`` / ``By whom was it written?``
      passes);
    - ``replaced word``: a content word of one is replaced by another content
      word (``open``/``close``, ``buy``/``sell``: antonyms and siblings embed
      close together, so a replaced word is never trusted), unless they share
      a stem or ask for the same dimension (:data:`_DIMENSIONS`: ``tall`` /
      ``height``, ``wrote`` / ``author``).

    Words only added (``Which city is the capital...``) are allowed. The rules
    and lists were chosen on ``tests/data/cache_pairs_dev.jsonl``; their
    figures are measured on ``cache_pairs_test.jsonl`` by
    ``benchmarks/bench_cache.py``.
    """
    pa, pb = _parse(a), _parse(b)
    if pa.numbers != pb.numbers and sorted(pa.numbers) != sorted(pb.numbers):
        return "numbers"
    if sorted(pa.ordinals) != sorted(pb.ordinals):
        return "ordinals"
    units_a, units_b = pa.units, pb.units
    if pa.how_long and not units_a:  # "how long" / "how many minutes"
        units_b = units_b - _TIME_UNITS
    if pb.how_long and not units_b:
        units_a = units_a - _TIME_UNITS
    if sorted(pa.quantities) != sorted(pb.quantities) or units_a != units_b:
        return "units"
    if pa.negations != pb.negations or any(
            _OPPOSITE_PARTICLES[w] in pb.particles - pa.particles
            for w in pa.particles - pb.particles):
        return "negation"
    if pa.quoted != pb.quoted:
        return "entities"
    wa, wb = set(pa.words), set(pb.words)
    if any(e not in wb for e in pa.entities) or any(e not in wa for e in pb.entities):
        return "entities"
    ea = [e for e in dict.fromkeys(pa.entities) if e in pb.entities]
    eb = [e for e in dict.fromkeys(pb.entities) if e in pa.entities]
    if ea != eb and _apart(pa, ea) and _apart(pb, eb):
        return "entities"
    qa = {_QUESTION_WORDS[w] for w in pa.words if w in _QUESTION_WORDS}
    qb = {_QUESTION_WORDS[w] for w in pb.words if w in _QUESTION_WORDS}
    if qa and qb and not qa & qb:
        return "question word"
    ca, cb = pa.content, pb.content
    sa, sb = set(ca), set(cb)
    if _opposite_prefix(sa - sb, sb - sa) or _opposite_prefix(wa - wb, wb - wa):
        return "negation"
    if _reversed(pa, pb) or _reversed(pb, pa):
        return "order"
    if _swapped(ca, cb) and not any(_PASSIVE.search(q.lower()) or _NOUN_LINK.search(q.lower())
                                    for q in (a, b)):
        return "roles"
    only_a = {w for w in sa - sb if not _related(w, sb - sa)}
    only_b = {w for w in sb - sa if not _related(w, sa - sb)}
    if only_a and only_b:
        return "replaced word"
    return None


def same_request(a: str, b: str) -> bool:
    """Whether two similar questions ask for the same answer: no
    :func:`disagreement` between them."""
    return disagreement(a, b) is None


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
        agreement: require :func:`disagreement` to find nothing for a
            semantic hit (default); False serves on cosine alone (for
            ``benchmarks/bench_cache.py``'s comparison, never in the app).

    Raises (every method):
        StoreError: the database failed.
    """

    def __init__(self, database: Database, *, ttl_s: float = config.CACHE_TTL_S,
                 threshold: float = config.CACHE_THRESHOLD, embedder: Any = None,
                 agreement: bool = True) -> None:
        self.database = database
        self.agreement = agreement
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
            if not self.agreement or same_request(question, rows[i].question):
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
