"""Few-shot example selectors: which solved examples go into the prompt.

Examples are dicts with an ``input`` and an ``output`` string.

* :class:`NGramOverlapSelector`: sorted by n-gram overlap with the question
  (sentence BLEU, as LangChain's ``NGramOverlapExampleSelector``): threshold
  -1 keeps every example, sorted; 0 drops examples with no overlap.
* ``semantic`` and ``mmr``: LangChain's ``SemanticSimilarityExampleSelector``
  and ``MaxMarginalRelevanceExampleSelector`` over an in-memory vector store
  and the configured embedder.
* :func:`fit_budget`: drops the examples that would push the prompt past its
  token budget, and says which.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings

from llmapp.prompting import PromptError

Example = dict[str, str]

FOOD_EXAMPLES: list[Example] = [
    {"input": "apple", "output": "fruit"},
    {"input": "banana", "output": "fruit"},
    {"input": "carrot", "output": "vegetable"},
    {"input": "broccoli", "output": "vegetable"},
    {"input": "salmon", "output": "fish"},
    {"input": "tuna steak", "output": "fish"},
    {"input": "cheddar cheese", "output": "dairy"},
    {"input": "greek yogurt", "output": "dairy"},
    {"input": "brown rice", "output": "grain"},
    {"input": "whole wheat bread", "output": "grain"},
]
"""The seed's food -> category example set, extended to five categories."""

MAX_LABELS, MAX_LABEL_WORDS = 20, 4


def label_set(examples: Sequence[Example]) -> list[str]:
    """The examples' outputs as a closed set of labels, in first-seen order,
    when they look like one (at most :data:`MAX_LABELS` distinct outputs of
    at most :data:`MAX_LABEL_WORDS` words); else ``[]``. A classification's
    answer can then be constrained to them."""
    labels = list(dict.fromkeys(e["output"].strip() for e in examples))
    if not labels or len(labels) > MAX_LABELS or \
            any(not label or len(label.split()) > MAX_LABEL_WORDS for label in labels):
        return []
    return labels


def parse_examples(text: str) -> list[Example]:
    """Examples from JSON text: a list of ``{"input": ..., "output": ...}``.

    Raises:
        PromptError: not JSON, not a list of such objects, or empty.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptError(f"The examples are not valid JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}.") from None
    return check_examples(data)


def check_examples(data: object) -> list[Example]:
    """The same checks on already-parsed data.

    Raises:
        PromptError: not a non-empty list of objects with string ``input``
            and ``output``.
    """
    if not isinstance(data, list) or not data:
        raise PromptError("The example set is empty: give at least one "
                          '{"input": ..., "output": ...} example.')
    for i, item in enumerate(data, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("input"), str)
                and isinstance(item.get("output"), str)):
            raise PromptError(f'Example {i} needs a string "input" and a string "output".')
    return [{"input": d["input"], "output": d["output"]} for d in data]


def ngram_overlap_score(question: str, example: str) -> float:
    """Sentence BLEU of ``question`` against ``example``, 0 to 1 (NLTK, method1
    smoothing, auto re-weighting; Papineni et al. 2002), the score LangChain's
    ``NGramOverlapExampleSelector`` uses."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hypothesis = question.lower().split()
    if not hypothesis:
        return 0.0
    return float(sentence_bleu([example.lower().split()], hypothesis,
                               smoothing_function=SmoothingFunction().method1,
                               auto_reweigh=True))


@dataclass
class NGramOverlapSelector:
    """Examples sorted by n-gram overlap with the question.

    Args:
        examples: the example set.
        threshold: stop below this score. -1 keeps all (sorted); 0 drops
            examples with no overlap; above 1 keeps none.
    """

    examples: Sequence[Example]
    threshold: float = -1.0

    def select(self, question: str) -> list[Example]:
        """The examples, best overlap first, with the seed's threshold rule."""
        scored = sorted(((ngram_overlap_score(question, e["input"]), i)
                         for i, e in enumerate(self.examples)), key=lambda s: (-s[0], s[1]))
        return [self.examples[i] for score, i in scored
                if score > self.threshold and abs(score - self.threshold) >= 1e-9]


def _vector_selector(kind: str, examples: Sequence[Example], embedder: Embeddings, k: int,
                     fetch_k: int):
    from langchain_core.example_selectors import (MaxMarginalRelevanceExampleSelector,
                                                  SemanticSimilarityExampleSelector)
    from langchain_core.vectorstores import InMemoryVectorStore

    cls = SemanticSimilarityExampleSelector if kind == "semantic" else \
        MaxMarginalRelevanceExampleSelector
    extra = {} if kind == "semantic" else {"fetch_k": fetch_k}
    return cls.from_examples(list(examples), embedder, InMemoryVectorStore, k=k,
                             input_keys=["input"], **extra)


def select_examples(kind: str, examples: Sequence[Example], question: str, *, k: int = 3,
                    threshold: float = -1.0, embedder: Embeddings | None = None,
                    fetch_k: int = 10) -> list[Example]:
    """Pick few-shot examples for ``question``.

    Args:
        kind: ``ngram``, ``semantic`` or ``mmr``.
        k: how many (semantic and mmr; n-gram keeps all that pass the threshold).
        threshold: the n-gram threshold.
        embedder: needed by ``semantic`` and ``mmr``.
        fetch_k: candidates MMR chooses from.

    Raises:
        PromptError: an unknown kind, no examples, or no embedder where one is needed.
    """
    examples = check_examples(list(examples))
    if kind == "ngram":
        return NGramOverlapSelector(examples, threshold).select(question)
    if kind not in ("semantic", "mmr"):
        raise PromptError(f"Unknown example selector {kind!r}: use ngram, semantic or mmr.")
    if embedder is None:
        raise PromptError(f"The {kind} selector needs an embedder.")
    selector = _vector_selector(kind, examples, embedder, min(k, len(examples)),
                                max(fetch_k, k))
    return [{"input": e["input"], "output": e["output"]}
            for e in selector.select_examples({"input": question})]


@dataclass
class BudgetReport:
    """Which examples fit the token budget.

    Attributes:
        kept: examples that fit, in order.
        dropped: examples left out, in order.
        tokens: tokens of the kept examples, as formatted.
    """

    kept: list[Example]
    dropped: list[Example] = field(default_factory=list)
    tokens: int = 0

    @property
    def notice(self) -> str | None:
        """A sentence for the UI when examples were dropped."""
        if not self.dropped:
            return None
        names = ", ".join(repr(e["input"]) for e in self.dropped)
        return f"Left out {len(self.dropped)} example(s) to stay within the budget: {names}."


def format_example(example: Example) -> str:
    """One example as it appears in the prompt."""
    return f"Input: {example['input']}\nOutput: {example['output']}"


def fit_budget(examples: Sequence[Example], budget: int,
               count: Callable[[str], int]) -> BudgetReport:
    """Keep examples in order while their formatted tokens fit ``budget``.

    Args:
        examples: selected examples, best first.
        budget: tokens allowed for all examples together.
        count: the model's token counter for a string.
    """
    report = BudgetReport(kept=[])
    for example in examples:
        cost = count(format_example(example) + "\n\n")
        if report.tokens + cost <= budget:
            report.kept.append(example)
            report.tokens += cost
        else:
            report.dropped.append(example)
    return report
