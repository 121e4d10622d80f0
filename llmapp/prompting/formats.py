"""Format instructions kept by a grammar, for models too small to keep them.

Asked "Write the names of three planets, each one in bold", the bundled
135M model wrote a paragraph about "the four planets" with no bold at all;
asked for "one word", a sentence. What a request says about its form (a
count of items, bold titles, a numbered or bulleted list, one word, at most
N words, one sentence) is read here from the user's words, and turned into
a GBNF grammar (llama.cpp's grammar format,
https://github.com/ggml-org/llama.cpp/blob/master/grammars/README.md) that
the local runtime decodes under: the model still chooses every word, but
only in that form. The same idea as llmapp's JSON-schema decoding for
structured output, applied to Markdown.

Only explicit instructions are read; a request that states no form gets no
grammar, and a capable model never gets one (:func:`llmapp.chat.start_reply`
applies it to models that cannot pick tools, as RAG's extractive answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9, "ten": 10, "a couple of": 2, "a pair of": 2}
MAX_ITEMS = 10
"""More items than this are not enforced: a grammar for 30 list items would
hold a small model to a form it cannot fill."""
MAX_WORDS = 60
"""Word limits above this are left to the model (and to max tokens)."""
_COUNT = r"(\d{1,2}|two|three|four|five|six|seven|eight|nine|ten|a couple of|a pair of)"
_ITEM_NOUNS = (r"(?:[a-z'-]+\s+){0,3}?(?:ideas?|titles?|headings?|headlines?|names?|items?|"
               r"points?|steps?|tips?|reasons?|ways?|examples?|things?|words?|options?|"
               r"questions?|facts?|benefits?|countries|cities|colou?rs|animals|fruits?|"
               r"vegetables?|planets?|books?|movies?|films?|songs?|foods?|dishes|games?|"
               r"activities|places?|languages?|sports?|tools?|features?|suggestions?|"
               r"slogans?|taglines?|bullet points?|sentences?|lines?|[a-z]+s)")
_CODE = re.compile(r"\b(?:code|function|script|program|class|regex|sql|json|yaml|html)\b|```")
"""Requests for code or data: their form is the language's, not a list's."""


@dataclass(frozen=True)
class FormatRequest:
    """The form a request asks for.

    Attributes:
        kind: ``items`` (a list of ``count`` items), ``words`` (at most
            ``count`` words), ``word`` (one word) or ``sentence`` (one).
        count: items or words; 1 for ``word`` and ``sentence``.
        bold: each item starts with a bold title.
        numbered: items are ``1.``, ``2.``, ...; otherwise ``-`` bullets.
    """

    kind: str
    count: int = 1
    bold: bool = False
    numbered: bool = False

    def describe(self) -> str:
        """What is enforced, in words for the stats line ("3 bold items")."""
        if self.kind == "items":
            style = "numbered" if self.numbered else "bulleted"
            return f"{self.count} {style} items" + (", bold titles" if self.bold else "")
        if self.kind == "words":
            return f"at most {self.count} words"
        return f"one {self.kind}"

    def grammar(self) -> str:
        """The GBNF grammar of this form.

        Items: one item per line, nothing before or after (no newline
        after the last, no space at a line's end); each a bold
        title of 1 to 60 characters then up to two sentences, or (not bold)
        one to two sentences. A sentence is up to 150 characters ending in
        ``.``, ``!`` or ``?`` (or the line's end), so an item never stops
        mid-sentence at a length limit. Words: 1 to ``count`` words with
        their punctuation. One sentence: up to 300 characters ending in
        ``.``, ``!`` or ``?``.
        """
        if self.kind == "items":
            body = "title rest?" if self.bold else "rest"
            lines = [f'"{i}. "' if self.numbered else '"- "' for i in range(1, self.count + 1)]
            items = ' "\\n" '.join(f"{marker} {body}" for marker in lines)
            return (f"root ::= {items}\n"
                    'title ::= "**" [^*\\n]{1,60} "**"\n'
                    "rest ::= part ([.!?] (part [.!?]?)?)?\n"
                    "part ::= [^.!?\\n]{0,149} [^.!?\\n ]\n")
        if self.kind == "sentence":
            return 'root ::= [A-Z0-9"] [^.!?\\n]{0,300} [.!?]\n'
        words = 1 if self.kind == "word" else self.count
        return (f'root ::= word (" " word){{0,{words - 1}}} [.!]?\n'
                f'word ::= [A-Za-z0-9\'’-]{{1,24}} [,;:]?\n')


def _count(text: str) -> int:
    text = text.lower()
    return int(text) if text.isdigit() else COUNT_WORDS[text]


def format_request(request: str) -> FormatRequest | None:
    """The form ``request`` explicitly asks for, or None.

    Reads: a count of items ("three ideas", "5 tips", "a numbered list of
    five steps"), bold ("in bold", "bold titles"), numbered or bulleted
    lists, "one word" / "a single word", word limits ("in no more than 15
    words", "fewer than eight words", "under 20 words") and "one sentence".
    Counts over :data:`MAX_ITEMS` items or :data:`MAX_WORDS` words are left
    to the model.
    """
    text = " ".join(request.lower().split())
    if _CODE.search(text):
        return None
    if re.search(r"\b(?:in |with |using )?(?:one|a single|1) word\b(?! (?:each|per))", text):
        return FormatRequest("word")
    limit = re.search(r"\b(?:no more than|not more than|at most|fewer than|less than|under|"
                      r"maximum of|max(?:imum)?|up to|within|in)\s+" + _COUNT + r"\s+words?\b"
                      r"(?:\s+or\s+(?:less|fewer))?", text)
    if limit:
        words = _count(limit.group(1))
        if re.search(r"\b(?:fewer|less) than\b", limit.group(0)):
            words -= 1
        return FormatRequest("words", words) if 1 <= words <= MAX_WORDS else None
    bold = re.search(r"\bbold(?:ed|face)?\b", text) is not None
    numbered = re.search(r"\bnumbered\b", text) is not None
    listed = re.search(r"\b(?:list|bullet(?:ed|s)?|bullet points?)\b", text) is not None
    count = re.search(rf"\b{_COUNT}\s+{_ITEM_NOUNS}\b", text)
    if count is None and (listed or bold):
        count = re.search(rf"\blist of {_COUNT}\b|\b{_COUNT}\s+(?:bullet|numbered|bold)", text)
    if count is not None and (listed or bold or numbered or _many_things(text, count)):
        items = _count(count.group(1))
        if 2 <= items <= MAX_ITEMS:
            return FormatRequest("items", items, bold=bold, numbered=numbered)
    if re.search(r"\b(?:in |with |using )?(?:one|a single|1)(?: short)? sentence\b", text):
        return FormatRequest("sentence")
    return None


def _many_things(text: str, count: re.Match) -> bool:
    """Whether a count is a request for that many items ("Give me three
    ideas", "Name five fruits", "Write the names of three planets"): a verb
    that asks for them at most three words before it. Not a quantity in a
    question or task ("What is 3 times 4?", "How many legs do two spiders
    have?", "Write a Python function that adds two numbers")."""
    return re.search(r"\b(?:give|list|name|suggest|write|share|tell|provide|brainstorm|"
                     r"come up with|what are)\b(?:\s+\S+){0,3}\s*$",
                     text[:count.start()]) is not None
