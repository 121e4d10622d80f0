"""Evaluation: how good is a retriever, a prompt, a model? Measured over a
question set, with standard metrics, side by side."""

from llmapp.errors import LlmappError


class EvaluationError(LlmappError):
    """A question set or an evaluation run is unusable; the message says why."""
