"""Checks a fine-tuning dataset (OpenAI chat JSONL) before anything trains.

One example per line: ``{"messages": [{"role": ..., "content": ...}, ...]}``.
The format checks are those of OpenAI's cookbook *Data preparation and
analysis for chat model fine-tuning*, with its error names:

=====================================  =========================================
``data_type``                          the line is not a JSON object
``missing_messages_list``              no ``messages`` list, or an empty one
``message_missing_key``                a message without ``role`` or ``content``
``message_unrecognized_key``           a key other than role, content, name,
                                       function_call, weight
``unrecognized_role``                  a role other than system, user,
                                       assistant, function
``missing_content``                    a message with no text (and no
                                       function call)
``example_missing_assistant_message``  nothing for the model to learn
=====================================  =========================================

Added by llmapp: ``invalid_json`` (the line does not parse), ``duplicate``
(the same messages as an earlier line), ``too_long`` (more tokens than the
model's context window: training would cut it), and ``too_few_examples``
(under :data:`MIN_EXAMPLES`, OpenAI's fine-tuning guide's minimum).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

MIN_EXAMPLES = 10
"""Fewest examples worth training on (OpenAI's fine-tuning guide: "at least
10 examples")."""
KNOWN_KEYS = frozenset({"role", "content", "name", "function_call", "weight"})
ROLES = frozenset({"system", "user", "assistant", "function"})
KINDS = ("invalid_json", "data_type", "missing_messages_list", "message_missing_key",
         "message_unrecognized_key", "unrecognized_role", "missing_content",
         "example_missing_assistant_message", "duplicate", "too_long", "too_few_examples")


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is.

    Attributes:
        line: 1-based line number in the file (0 for the whole file).
        kind: one of :data:`KINDS`.
        message: what is wrong, for people.
    """

    line: int
    kind: str
    message: str


@dataclass
class ValidationReport:
    """What :func:`validate` found.

    Attributes:
        examples: non-blank lines read.
        problems: every problem, in file order (the file-wide one last).
        tokens: prompt + completion tokens of each well-formed example, as the
            model's chat template and tokenizer count them.
        assistant_tokens: tokens of the assistant messages of each (what the
            loss falls on).
        window: the context window the lengths were checked against, or
            None when not counted.
    """

    examples: int = 0
    problems: list[Problem] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    assistant_tokens: list[int] = field(default_factory=list)
    window: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Problems per kind, in :data:`KINDS` order."""
        found = Counter(p.kind for p in self.problems)
        return {k: found[k] for k in KINDS if found[k]}

    def to_dict(self) -> dict:
        """Plain JSON-ready dict, with ``ok`` and ``counts``."""
        return {**asdict(self), "ok": self.ok, "counts": self.counts()}


def _message_problems(n: int, messages: Sequence) -> list[Problem]:
    problems = []
    for i, message in enumerate(messages):
        where = f"message {i + 1}"
        if not isinstance(message, dict):
            problems.append(Problem(n, "message_missing_key", f"{where} is not an object."))
            continue
        if "role" not in message or "content" not in message:
            problems.append(Problem(n, "message_missing_key",
                                    f"{where} needs both a role and a content."))
        unknown = sorted(set(message) - KNOWN_KEYS)
        if unknown:
            problems.append(Problem(n, "message_unrecognized_key",
                                    f"{where} has unknown key(s): {', '.join(unknown)}."))
        if message.get("role") not in ROLES:
            problems.append(Problem(n, "unrecognized_role",
                                    f"{where} has role {message.get('role')!r}: use system, "
                                    "user or assistant."))
        content = message.get("content")
        if (not content and not message.get("function_call")) or \
                (content is not None and not isinstance(content, str)):
            problems.append(Problem(n, "missing_content", f"{where} has no text."))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append(Problem(n, "example_missing_assistant_message",
                                "no assistant message: nothing to learn from."))
    return problems


def validate(lines: Iterable[str], count_messages: Callable[[list[dict]], int] | None = None,
             window: int | None = None, min_examples: int = MIN_EXAMPLES) -> ValidationReport:
    """Check a dataset's lines.

    Args:
        lines: the JSONL file's lines.
        count_messages: tokens of a message list as the model sees it (e.g.
            the local provider's ``token_counter(...).count_messages``); with
            ``window``, examples longer than it are ``too_long``. None skips
            token counts.
        window: the model's context window, in tokens.
        min_examples: fewer well-formed examples than this is
            ``too_few_examples``.
    """
    report = ValidationReport(window=window if count_messages else None)
    seen: dict[str, int] = {}
    good = 0
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        report.examples += 1
        try:
            example = json.loads(raw)
        except ValueError as exc:
            report.problems.append(Problem(n, "invalid_json", f"not JSON: {exc.msg}."))
            continue
        if not isinstance(example, dict):
            report.problems.append(Problem(n, "data_type", "the line is not a JSON object."))
            continue
        messages = example.get("messages")
        if not messages or not isinstance(messages, list):
            report.problems.append(Problem(n, "missing_messages_list",
                                           "no \"messages\" list, or an empty one."))
            continue
        problems = _message_problems(n, messages)
        report.problems += problems
        if problems:
            continue
        key = json.dumps([[m["role"], m["content"]] for m in messages], ensure_ascii=False)
        if key in seen:
            report.problems.append(Problem(n, "duplicate", f"the same messages as line "
                                                          f"{seen[key]}."))
            continue
        seen[key] = n
        good += 1
        if count_messages is not None:
            plain = [{"role": m["role"], "content": m["content"]} for m in messages]
            total = count_messages(plain)
            report.tokens.append(total)
            report.assistant_tokens.append(sum(
                count_messages([m]) for m in plain if m["role"] == "assistant"))
            if window is not None and total > window:
                report.problems.append(Problem(n, "too_long", f"{total} tokens: over the "
                                                             f"{window}-token window."))
    if good < min_examples:
        report.problems.append(Problem(0, "too_few_examples",
                                       f"{good} usable examples: train on at least "
                                       f"{min_examples}."))
    return report


def validate_file(path: str | Path, **kwargs) -> ValidationReport:
    """:func:`validate` on a file (UTF-8).

    Raises:
        OSError: it cannot be read.
        UnicodeDecodeError: it is not UTF-8.
    """
    with Path(path).open(encoding="utf-8") as f:
        return validate(f, **kwargs)
