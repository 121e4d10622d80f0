"""``word_count``: words and characters of a text (the seed's
``get_word_length``, grown up), and its guide.

The guide's grammar lets the model pick the text only among the spans the
question offers: quoted text, what follows a colon, or what follows "the
sentence", "the word" and the like. A 135M model asked to copy a sentence
rewrites it ("the quick brown fox" becomes "The quick brown fox"), and the
count is then of another text.
"""

from __future__ import annotations

import re

from langchain_core.tools import tool

from llmapp.tools.base import ToolGuide, guided


@tool
def word_count(text: str) -> str:
    """Count the words and characters of a text, e.g. to answer "how many
    letters are in 'educa'?"."""
    words = len(text.split())
    return f"{words} words, {len(text)} characters ({len(text.replace(' ', ''))} without spaces)"


_QUOTED = (r'"([^"]+)"', r"“([^”]+)”", r"‘([^’]+)’", r"(?<![A-Za-z])'([^']+)'(?![A-Za-z])")
_LEADS = r"\b(?:sentence|phrase|text|word|words|string|name|line|title|quote)\b\s*:?\s+(.+)"


def text_candidates(question: str) -> list[str]:
    """The spans of ``question`` that may be the text to count: the quoted
    texts if there are any; else what follows a colon; else what follows
    "the sentence", "the word" and the like; else the whole question.
    Never empty, and no candidate is empty."""
    quoted = [q for pattern in _QUOTED for q in re.findall(pattern, question)]
    colon = [question.split(":", 1)[1]] if ":" in question else []
    leads = [m.group(1) for m in re.finditer(_LEADS, question, flags=re.IGNORECASE)]
    for found in (quoted, colon, leads):
        cleaned = [c.strip().rstrip("?").strip() for c in found]
        if any(cleaned):
            return list(dict.fromkeys(c for c in cleaned if c))
    return [question.strip()]


def _phrases(result: str, question: str) -> list[str]:
    """"5 words, 25 characters (21 without spaces)" -> ``["5 words"]`` when the
    question asks for words ("how many words", "word count"),
    ``["25 characters"]`` when it asks for characters or letters (even "in
    the word 'banana'"), both when it asks for both or neither."""
    words, characters = re.findall(r"\d+ words?|\d+ characters?", result)[:2] or (result, result)
    asks = question.lower()
    wants_words = re.search(r"\bwords\b|\bword count", asks) is not None
    wants_characters = re.search(r"charact|letter|\blong\b", asks) is not None
    if wants_words != wants_characters:
        return [words] if wants_words else [characters]
    return [words, characters]


def _narrow(question: str) -> dict[str, dict]:
    return {"text": {"enum": text_candidates(question)}}


guided(word_count, ToolGuide(
    examples=(
        ("How many words are in 'to be or not to be'?", {"text": "to be or not to be"}),
        ("Count the characters in the word 'education'", {"text": "education"}),
        ("How many words does this have: I came, I saw, I conquered",
         {"text": "I came, I saw, I conquered"}),
        ("How long is the phrase \"open source\" in characters?", {"text": "open source"}),
        ("How many letters does 'strawberry' have?", {"text": "strawberry"}),
        ("Word count of the title 'War and Peace'", {"text": "War and Peace"}),
        ("Count the words in this paragraph: We shipped the release on Friday.",
         {"text": "We shipped the release on Friday."}),
        ("How many characters are in the name 'Alexandria'?", {"text": "Alexandria"}),
        ("Tell me the number of words in 'keep calm and carry on'",
         {"text": "keep calm and carry on"}),
    ),
    narrow=_narrow, result_is_answer=True, answer_phrases=_phrases,
    state=lambda args, result: f"\"{args['text']}\" has {result}."))
