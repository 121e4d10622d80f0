"""Which language a text is in, so the filter can say when it cannot read it.

The offline checker's embedder (all-MiniLM-L6-v2) was trained on English:
a request in Spanish, German or Russian scores 0.00 in every category
(issue 28). Rather than pass what it cannot read, the guard holds such
text at the ``child`` and ``teen`` levels, with that reason
(:data:`HOLD_LEVELS`), unless a checker that reads other languages (OpenAI
moderation, a guard model) scored it too.

Detection is py3langid's (a maintained port of langid.py: Lui and Baldwin,
"langid.py: An Off-the-shelf Language Identification Tool", ACL 2012), a
naive Bayes model over byte n-grams shipped in its wheel; about 0.1 ms a
text. On the 651 English texts of the safety sets it named another language
5 times, each with a probability under 0.5; :data:`MIN_PROBABILITY` keeps
those English.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from llmapp.safety.normalise import undisguise

READS = frozenset({"en"})
"""Languages the offline checker reads (ISO 639-1)."""
HOLD_LEVELS = ("child", "teen")
"""Levels at which text in another language is held."""
MIN_PROBABILITY = 0.9
"""Least normalised probability of another language to hold a text."""
MIN_LETTERS = 8
"""Texts with fewer letters ("ok", "Hola!") are too short to tell."""
NAMES = {"ar": "Arabic", "de": "German", "es": "Spanish", "fr": "French", "hi": "Hindi",
         "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
         "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sv": "Swedish", "tr": "Turkish",
         "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese"}
"""ISO 639-1 code -> English name, for the languages people most often
write in; others are shown by code."""


@dataclass(frozen=True)
class Language:
    """A detected language: ``code`` (ISO 639-1), ``probability`` in [0, 1]."""

    code: str
    probability: float

    @property
    def name(self) -> str:
        """The language's English name, or ``language "<code>"``."""
        return NAMES.get(self.code, f'language "{self.code}"')


@cache
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect(text: str) -> Language:
    """The most likely language of ``text`` (its disguises undone first:
    leetspeak reads as no language at all)."""
    code, probability = _identifier().classify(undisguise(text))
    return Language(code, float(probability))


def unreadable(text: str) -> Language | None:
    """The language of ``text`` when the offline checker cannot read it:
    another language than :data:`READS`, detected with at least
    :data:`MIN_PROBABILITY`, in a text of at least :data:`MIN_LETTERS`
    letters. Else None."""
    if sum(c.isalpha() for c in text) < MIN_LETTERS:
        return None
    found = detect(text)
    if found.code in READS or found.probability < MIN_PROBABILITY:
        return None
    return found
