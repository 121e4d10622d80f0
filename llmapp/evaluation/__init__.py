"""Evaluation: how good is a retriever, a prompt, a model? Measured over a
question set, with standard metrics, side by side."""

from llmapp.errors import LlmappError


class EvaluationError(LlmappError):
    """A question set or an evaluation run is unusable; the message says why."""


def read_jsonl(text: str, name: str, required: tuple[str, ...]) -> list[dict]:
    """The objects of a JSON Lines question set; blank lines are skipped.

    Args:
        text: the file's text.
        name: how messages name the set (a path).
        required: keys every line needs as non-empty strings.

    Raises:
        EvaluationError: a line that is not JSON, one that lacks a required
            key, or no lines at all; the message names the line.
    """
    import json

    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{name}, line {number}: not JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or not all(
                isinstance(row.get(k), str) and row[k].strip() for k in required):
            keys = " and ".join(f'"{k}"' for k in required)
            raise EvaluationError(f"{name}, line {number}: needs {keys} as non-empty strings.")
        rows.append(row)
    if not rows:
        raise EvaluationError(f"{name}: no questions in it.")
    return rows
