"""Before and after: the base model and a tuned model on the same held-out
examples, side by side.

Each held-out example's conversation (all but its last, reference answer) is
sent to both models, greedy, and each reply is checked against the
reference:

* **form**: the reply opens as the reference does (its first two words, as
  written: ``**In short:**``). Fine-tuning teaches form cheaply (issue 19's
  measurements: 20 of 20 held-out answers in the trained style after 3
  epochs, from 0), so this is the check that shows it.
* **similarity**: cosine similarity of the reply's and the reference's
  all-MiniLM-L6-v2 embeddings, 0 to 1 for text like this: content as well as
  form. A small model's facts barely move with a few epochs; RAG supplies
  facts.

Both models run on the same loaded runtime (the adapter applies per
request), so their tokens/s compare like for like.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from llmapp.providers import GenerationParams, get_provider
from llmapp.settings import Settings
from llmapp.tuning.models import TunedModel

COMPARE_PARAMS = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=128)
"""Greedy, and long enough for a short answer."""


def same_form(reply: str, reference: str, words: int = 2) -> bool:
    """True when ``reply`` opens with the first ``words`` words of ``reference``."""
    opening = reference.split()[:words]
    return bool(opening) and reply.split()[:len(opening)] == opening


@dataclass
class Side:
    """One model's reply to one example, and its checks."""

    reply: str
    form: bool
    similarity: float
    tokens: int
    seconds: float


@dataclass
class Compared:
    """One held-out example: its question, reference, and both sides."""

    question: str
    reference: str
    base: Side
    tuned: Side


@dataclass
class CompareReport:
    """Both models over the examples: per model, the share in the
    reference's form, the mean similarity, and tokens/s (completion tokens
    over the whole call's time)."""

    model: str
    rows: list[Compared] = field(default_factory=list)

    def totals(self) -> dict[str, dict[str, float]]:
        out = {}
        for side in ("base", "tuned"):
            sides = [getattr(r, side) for r in self.rows]
            seconds = sum(s.seconds for s in sides)
            out[side] = {
                "form": sum(s.form for s in sides) / len(sides) if sides else 0.0,
                "similarity": sum(s.similarity for s in sides) / len(sides) if sides else 0.0,
                "tokens_per_s": sum(s.tokens for s in sides) / seconds if seconds else 0.0}
        return out

    def to_dict(self) -> dict:
        return {"model": self.model, "rows": [asdict(r) for r in self.rows],
                "totals": self.totals()}


def base_and_tuned(settings: Settings, model: TunedModel,
                   params: GenerationParams = COMPARE_PARAMS) -> tuple[Any, Any]:
    """Chat models for the bundled base and for ``model`` (the same runtime,
    the adapter applied per request), whatever ``settings`` pick."""
    local = get_provider("local")
    return tuple(local.chat_model(replace(settings, local_adapter=adapter, local_model_path=""),
                                  params) for adapter in ("", model.name))


def compare_models(settings: Settings, model: TunedModel, examples: Sequence[dict], *,
                   on_row: Callable[[int, Compared], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> CompareReport:
    """Run the base and ``model`` on ``examples`` (chat examples, the last
    message the reference answer).

    Raises:
        ProviderError: the local model failed.
    """
    import numpy as np

    from llmapp.rag.embeddings import LocalEmbeddings

    base, tuned = base_and_tuned(settings, model)
    embedder = LocalEmbeddings()
    report = CompareReport(model.name)
    for index, example in enumerate(examples):
        if should_stop is not None and should_stop():
            break
        messages, reference = example["messages"][:-1], example["messages"][-1]["content"]
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        sides = {}
        for name, chat in (("base", base), ("tuned", tuned)):
            started = time.perf_counter()
            reply = chat.invoke([(m["role"], m["content"]) for m in messages])
            seconds = time.perf_counter() - started
            text = str(reply.content)
            usage = reply.usage_metadata or {}
            sides[name] = (text, usage.get("output_tokens", 0), seconds)
        vectors = np.asarray(embedder.embed_documents(
            [reference, sides["base"][0] or " ", sides["tuned"][0] or " "]))
        row = Compared(question, reference, *[
            Side(text, same_form(text, reference), float(vectors[0] @ vectors[i]), tokens,
                 seconds) for i, (text, tokens, seconds) in
            ((1, sides["base"]), (2, sides["tuned"]))])
        report.rows.append(row)
        if on_row is not None:
            on_row(index, row)
    return report
