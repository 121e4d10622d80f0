"""Fine-tuning datasets in OpenAI's chat JSONL, from three sources:

* **feedback**: replies people approved (thumbs up) or corrected on the chat
  pages (:meth:`llmapp.feedback.Feedback.example`: a correction wins);
* **conversations**: the stored conversations (stage 4), each as one
  example ending at its last reply (:func:`llmapp.export.finetune_record`,
  the same record the Memory page's JSONL export writes);
* **distillation**: a teacher (any configured provider, or the local model
  with context retrieved from a collection) answers a question list, the
  judge grades each answer, and only answers at or above a score are kept.
  The student then learns the teacher's answers (Hinton, Vinyals and Dean,
  "Distilling the knowledge in a neural network", 2015, in its common
  sequence-level form: Kim and Rush, "Sequence-level knowledge
  distillation", 2016).

Every row remembers where it came from (:class:`Row`), for the preview; the
JSONL file holds only ``{"messages": [...]}``, as trainers expect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmapp.providers import GenerationParams
from llmapp.settings import Settings

DISTILL_PARAMS = GenerationParams(temperature=0.2, top_p=1.0, max_tokens=256)
"""The teacher's sampling: near-greedy, room for a full answer."""
DISTILL_MIN_SCORE = 2
"""Keep a teacher's answer when the judge scores it at least this (0-3)."""


@dataclass(frozen=True)
class Row:
    """One example and where it came from (``feedback: approved``,
    ``conversation: <title>``, ``distilled: score 3``, ``file``, ...)."""

    example: dict
    source: str

    @property
    def question(self) -> str:
        return next((m["content"] for m in reversed(self.example["messages"])
                     if m["role"] == "user"), "")

    @property
    def answer(self) -> str:
        return self.example["messages"][-1]["content"]


def from_feedback(database) -> list[Row]:
    """Approved and corrected replies from :mod:`llmapp.feedback`, oldest first."""
    from llmapp.feedback import list_feedback

    rows = []
    for item in list_feedback(database):
        example = item.example()
        if example is not None:
            rows.append(Row(example, f"feedback: {'corrected' if item.correction else 'approved'}"
                                     f" ({item.page})"))
    return rows


def from_conversations(store) -> list[Row]:
    """One example per stored conversation with a reply (a
    :class:`~llmapp.conversations.ConversationStore`)."""
    from llmapp.export import finetune_record

    rows = []
    for conversation in store.list():
        messages = [m for m in store.messages(conversation.id) if not m.withheld]
        record = finetune_record(messages)
        if record is not None:
            rows.append(Row(record, f"conversation: {conversation.title}"))
    return rows


def from_file(path: str | Path) -> list[Row]:
    """The examples of a chat JSONL file (lines that are not examples are
    skipped: :func:`llmapp.tuning.validate.validate_file` names them)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            example = json.loads(line)
        except ValueError:
            continue
        if isinstance(example, dict) and isinstance(example.get("messages"), list) and \
                example["messages"] and isinstance(example["messages"][-1], dict):
            rows.append(Row(example, f"file: {Path(path).name}"))
    return rows


def write_jsonl(rows: Sequence[Row], path: str | Path) -> Path:
    """Write the rows' examples as chat JSONL (left alone when the file
    already holds exactly that); return the path."""
    path = Path(path)
    text = "".join(json.dumps(r.example, ensure_ascii=False) + "\n" for r in rows)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def distill(questions: Sequence[str], teacher: Settings, judge: Settings, *,
            kb=None, collection: str | None = None, system_prompt: str = "",
            min_score: int = DISTILL_MIN_SCORE,
            on_row: Callable[[int, Row | None, str], None] | None = None) -> list[Row]:
    """Have ``teacher`` answer each question, grade each answer with
    ``judge`` (relevance to the question, or faithfulness to the retrieved
    context), and keep those scoring ``min_score`` or more.

    With ``kb`` and ``collection``, the teacher answers from the 4 chunks
    retrieved for each question (stage 3's prompt), and the kept example
    holds the question alone: the student learns to answer without them.

    Args:
        on_row: called per question with its index, the kept row (or None)
            and the judge's reason.

    Raises:
        ProviderError: the teacher or the judge failed.
        RagError: the collection is missing or empty.
    """
    from llmapp.evaluation.judge import judge as grade
    from llmapp.providers import active_provider
    from llmapp.rag.answer import format_context, grounded_messages

    provider, _ = active_provider(teacher)
    chat = provider.chat_model(teacher, DISTILL_PARAMS)
    rows = []
    for index, question in enumerate(questions):
        context = ""
        if kb is not None and collection:
            hits = kb.search(collection, question, 4)
            context = format_context(hits)
            prompt = [(m["role"], m["content"]) for m in grounded_messages(question, hits)]
        else:
            prompt = ([("system", system_prompt)] if system_prompt else []) + [("user", question)]
        answer = str(chat.invoke(prompt).content).strip()
        metric = "faithfulness" if context else "relevance"
        judged = grade(judge, metric, answer, question=question, context=context)
        kept = None
        if judged.score is not None and judged.score >= min_score and answer:
            head = [{"role": "system", "content": system_prompt}] if system_prompt else []
            kept = Row({"messages": [*head, {"role": "user", "content": question},
                                     {"role": "assistant", "content": answer}]},
                       f"distilled: {metric} {judged.score}")
            rows.append(kept)
        if on_row is not None:
            on_row(index, kept, judged.reason)
    return rows
