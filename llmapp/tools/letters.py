"""``letter_count``: how many times a letter occurs in a word or text ("How
many r's are in strawberry?", the classic question language models get
wrong because they see tokens, not letters), and its guide.

The guide's grammar lets the model pick the text among the spans the
question offers (quoted text, or the word after "in") and the letter among
the letters it names ("the letter s", "r's"), so the count is of what was
asked. Found on held-out demo questions: asked "How many times does the
letter s appear in 'Mississippi'?", the word counter answered "1 words, 11
characters".
"""

from __future__ import annotations

import re

from langchain_core.tools import tool

from llmapp.tools.base import ToolError, ToolGuide, guided
from llmapp.tools.text import text_candidates

_LETTER = re.compile(r"\bletters?\s+['\"“‘]?([a-z])\b['\"”’]?|\b([a-z])['’]s\b|"
                     r"['\"“‘]([a-z])['\"”’]\s", re.I)
"""A letter as questions name it: "the letter s", "r's", "'e' ", "“a” "."""
_IN_WORD = re.compile(r"\b(?:in|of)\s+(?:the\s+(?:word|name)\s+)?([A-Za-z][A-Za-z'’-]*)\s*\??$",
                      re.I)


@tool
def letter_count(text: str, letter: str) -> str:
    """Count how many times a letter occurs in a word or text, ignoring
    case, e.g. the r's in "strawberry"."""
    letter = letter.strip()
    if len(letter) != 1 or not letter.isalpha():
        raise ToolError(f"{letter!r} is not one letter.")
    count = text.lower().count(letter.lower())
    return f"{count} × \"{letter.lower()}\" in \"{text}\""


def letter_candidates(question: str) -> list[str]:
    """The letters ``question`` names, lowercased, in order, each once;
    every letter of the alphabet when it names none."""
    found = [next(g for g in m.groups() if g).lower() for m in _LETTER.finditer(question)]
    return list(dict.fromkeys(found)) or list("abcdefghijklmnopqrstuvwxyz")


def letter_text_candidates(question: str) -> list[str]:
    """The texts to count in: the quoted spans, else the word after "in"
    at the end of the question ("...in strawberry?"), else what
    :func:`~llmapp.tools.text.text_candidates` offers."""
    quoted = text_candidates(question)
    if any(q != question.strip() for q in quoted):
        return quoted
    word = _IN_WORD.search(question.strip())
    return [word.group(1)] if word else quoted


def _narrow(question: str) -> dict[str, dict]:
    return {"text": {"enum": letter_text_candidates(question)},
            "letter": {"enum": letter_candidates(question)}}


def _phrases(result: str, question: str) -> list[str]:
    """The count as the result writes it ("3")."""
    return [result.split(" ", 1)[0]]


guided(letter_count, ToolGuide(
    examples=(
        ("How many r's are in strawberry?", {"text": "strawberry", "letter": "r"}),
        ("How many times does the letter l appear in 'parallel'?",
         {"text": "parallel", "letter": "l"}),
        ("Count the letter e in 'excellence'", {"text": "excellence", "letter": "e"}),
        ("How many a's does the word banana have?", {"text": "banana", "letter": "a"}),
        ("How often does the letter o occur in 'voodoo'?", {"text": "voodoo", "letter": "o"}),
        ("Number of t's in 'attention'", {"text": "attention", "letter": "t"}),
    ),
    narrow=_narrow, result_is_answer=True, answer_phrases=_phrases,
    state=lambda args, result: f"\"{args['text']}\" has {result.split(' ', 1)[0]} "
                               f"\"{str(args['letter']).lower()}\"."))
