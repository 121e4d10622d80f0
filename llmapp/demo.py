"""What a demo asks each page, and how to tell a right answer from a wrong one.

Each page offers example prompts (:data:`EXAMPLES`); each carries an automatic
check (:class:`Check`) so ``benchmarks/bench_demo.py`` can say how often the
bundled model gets it right, on the examples and on held-out questions
(``benchmarks/data/demo_questions.jsonl``) that were not used to pick them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+\S", re.MULTILINE)
REFUSALS = ("do not say", "don't say", "does not say", "doesn't say", "not covered",
            "do not contain", "don't contain", "does not contain", "doesn't contain")
"""Phrases that say the documents hold no answer (lowercase)."""


@dataclass(frozen=True)
class Check:
    """How to tell whether a reply is right.

    Attributes:
        expect_any: a right reply contains one of these (case-insensitive).
        refusal: a right reply says the documents do not hold the answer.
        rule: ``bold_titles:N`` (at least N bold spans), ``list_items:N``
            (at least N Markdown list items), ``max_words:N`` (not empty, at
            most N words) or ``contains:WORD``.
    """

    expect_any: tuple[str, ...] = ()
    refusal: bool = False
    rule: str = ""

    def passes(self, reply: str) -> bool:
        """Whether ``reply`` (Markdown) meets every part of this check.

        Raises:
            ValueError: an unknown rule.
        """
        text = reply.lower()
        if self.expect_any and not any(e.lower() in text for e in self.expect_any):
            return False
        if self.refusal and not any(r in text for r in REFUSALS):
            return False
        if self.rule:
            kind, _, arg = self.rule.partition(":")
            if kind == "bold_titles":
                return len(_BOLD.findall(reply)) >= int(arg)
            if kind == "list_items":
                return len(_LIST_ITEM.findall(reply)) >= int(arg)
            if kind == "max_words":
                return 0 < len(reply.split()) <= int(arg)
            if kind == "contains":
                return arg.lower() in text
            raise ValueError(f"unknown check rule {self.rule!r}")
        return True

    @classmethod
    def from_dict(cls, data: dict) -> Check:
        """The check of one line of ``demo_questions.jsonl``: its
        ``expect_any``, ``expect_refusal`` and ``check`` fields."""
        return cls(tuple(data.get("expect_any", ())), bool(data.get("expect_refusal")),
                   data.get("check", ""))


@dataclass(frozen=True)
class Example:
    """One example of a page: the user's turns (the last is the question)
    and the check of the reply to the last."""

    page: str
    turns: tuple[str, ...]
    check: Check = field(default_factory=Check)

    @property
    def prompt(self) -> str:
        """The last turn: what a one-click button sends."""
        return self.turns[-1]


EXAMPLES: tuple[Example, ...] = (
    Example("simple", ("What is the capital of Japan?",), Check(expect_any=("Tokyo",))),
    Example("simple", ("Give me three ideas for a rainy day, with a bold title for each.",),
            Check(rule="bold_titles:3")),
    Example("rag", ("How many dimensions do all-MiniLM-L6-v2 vectors have?",),
            Check(expect_any=("384",))),
    Example("rag", ("What is chunk overlap?",), Check(expect_any=("10 to 20",))),
    Example("rag", ("What is the capital of France?",), Check(refusal=True)),
    Example("memory", ("Hi! My name is Priya and I live in Lisbon.", "What is my name?"),
            Check(expect_any=("Priya",))),
    Example("memory", ("Hi! My name is Priya and I live in Lisbon.", "Where do I live?"),
            Check(expect_any=("Lisbon",))),
    Example("tools", ("How many words are in 'the quick brown fox jumps'?",),
            Check(expect_any=("5", "five"))),
    Example("tools", ("What is 23*19?",), Check(expect_any=("437",))),
    Example("agent", ("What is 23*19?",), Check(expect_any=("437",))),
    Example("agent", ("How many words are in 'the quick brown fox jumps'?",),
            Check(expect_any=("5", "five"))),
)
"""Each page's example prompts, as the page shows them, chosen because the
bundled model gets them right. The Simple Prompt page's "Give me three ideas
for a rainy day, with a bold title for each" gave three bold titles in 0 of
8 samples until its form was kept by a grammar
(:mod:`llmapp.prompting.formats`); then 9 of 9. "Write a Python function that
adds two numbers, in a code block", its replacement meanwhile, went from 5
of 6 right to 1 of 3 at stop 37's run (``return (num1 + num2) * 0.5``)."""


def examples(page: str) -> list[Example]:
    """The examples of one page (``simple``, ``rag``, ``memory``, ``tools``,
    ``agent``)."""
    return [e for e in EXAMPLES if e.page == page]


def prompts(page: str) -> list[str]:
    """What a page offers to send in one click: each turn of its examples,
    in order, once ("Hi! My name is Priya...", then "What is my name?")."""
    return list(dict.fromkeys(turn for e in examples(page) for turn in e.turns))
