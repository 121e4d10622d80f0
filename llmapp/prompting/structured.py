"""Structured output: the answer as JSON that validates against a schema.

* The bundled local model decodes under a grammar built from the JSON Schema
  (llama.cpp's ``response_format={"type": "json_object", "schema": ...}``),
  so even the 135M model returns JSON of the right shape.
* OpenAI-style models use ``with_structured_output`` (JSON-schema mode).

The result is validated (``jsonschema``). An invalid answer gets one repair
attempt, with the validation error sent back; then a clear error that shows
the raw text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmapp.prompting import PromptError
from llmapp.providers import GenerationParams, active_provider
from llmapp.settings import Settings


class FoodCategory(BaseModel):
    """A food and its category (fruit, vegetable, ...)."""

    item: str = Field(description="the food, as named in the question")
    category: Literal["fruit", "vegetable", "fish", "dairy", "grain", "other"]


class Contact(BaseModel):
    """Contact details found in a text."""

    name: str
    email: str | None = None
    phone: str | None = None
    company: str | None = None


class Summary(BaseModel):
    """A short summary with its key points."""

    title: str
    key_points: list[str] = Field(min_length=1, max_length=5)
    sentiment: Literal["positive", "neutral", "negative"]


BUILT_IN: dict[str, type[BaseModel]] = {"food": FoodCategory, "contact": Contact,
                                        "summary": Summary}


class StructuredOutputError(PromptError):
    """The model's output did not validate, even after one repair attempt.

    Attributes:
        raw: the model's last raw text.
    """

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


@dataclass
class StructuredResult:
    """Validated output.

    Attributes:
        data: the JSON value, validated.
        raw: the model's text it came from.
        attempts: 1, or 2 if a repair was needed.
        prompts: the messages sent on each attempt.
    """

    data: Any
    raw: str
    attempts: int
    prompts: list[list[dict[str, str]]]


def schema_of(spec: str | dict | type[BaseModel]) -> dict:
    """A JSON Schema from a built-in name, a Pydantic model, a dict, or JSON
    text.

    Raises:
        PromptError: unknown name, invalid JSON, or not a valid JSON Schema.
    """
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec.model_json_schema()
    if isinstance(spec, str):
        if spec in BUILT_IN:
            return BUILT_IN[spec].model_json_schema()
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise PromptError(f"The schema is neither a built-in ({', '.join(BUILT_IN)}) nor "
                              f"valid JSON: {exc.msg} at line {exc.lineno}.") from None
    if not isinstance(spec, dict):
        raise PromptError("A JSON Schema must be an object.")
    import jsonschema

    try:
        jsonschema.validators.validator_for(spec).check_schema(spec)
    except jsonschema.SchemaError as exc:
        raise PromptError(f"That is not a valid JSON Schema: {exc.message}.") from None
    if spec.get("type") != "object":
        raise PromptError('The schema\'s top level must be {"type": "object", ...}.')
    return spec


def validate(data: Any, schema: dict) -> str | None:
    """None if ``data`` validates, else the first error in a sentence."""
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(data))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return f"at {where}: {error.message}"


def _call(settings: Settings, params: GenerationParams, schema: dict,
          messages: list[dict[str, str]]) -> str:
    from llmapp.chat import to_langchain

    provider, _ = active_provider(settings)
    model = provider.chat_model(settings, params)
    try:
        if provider.name == "local":
            reply = model.invoke(to_langchain(messages),
                                 response_format={"type": "json_object", "schema": schema})
            return reply.text
        bound = model.with_structured_output(schema, method="json_schema", include_raw=True)
        out = bound.invoke(to_langchain(messages))
        return out["raw"].text if out.get("raw") is not None else json.dumps(out["parsed"])
    except PromptError:
        raise
    except Exception as exc:
        cut = _cut_off_text(exc)
        if cut is not None:  # invalid JSON to repair, not a failed call
            return cut
        raise provider.describe_error(exc, settings) from exc


def _cut_off_text(exc: BaseException) -> str | None:
    """The text of a reply that hit ``max_tokens`` before its JSON was
    complete (the OpenAI SDK raises ``LengthFinishReasonError`` with it), or
    None for any other error."""
    try:
        from openai import LengthFinishReasonError
    except ImportError:  # an SDK without it
        return None
    if not isinstance(exc, LengthFinishReasonError):
        return None
    choices = exc.completion.choices
    return (choices[0].message.content or "") if choices else ""


def structured_output(settings: Settings, messages: list[dict[str, str]],
                      schema: dict, params: GenerationParams | None = None,
                      repair: bool = True) -> StructuredResult:
    """Ask for JSON matching ``schema``, validate it, repair once if needed.

    Args:
        settings: which model to use.
        messages: the prompt (OpenAI-style dicts); the field names are
            appended to the last message. The schema itself goes to the
            decoder (a grammar, or OpenAI's JSON-schema mode): pasted into the
            prompt, the 135M model copies its descriptions as values.
        schema: a JSON Schema object (see :func:`schema_of`).
        params: sampling; default greedy, 512 tokens.
        repair: False to make exactly one model call (an agent counting its
            calls); an invalid answer then raises at once.

    Raises:
        StructuredOutputError: still invalid after the repair attempt; holds
            the raw text.
        ProviderError: the model failed.
    """
    params = params or GenerationParams(temperature=0.0, top_p=1.0, max_tokens=512)
    ask = [dict(m) for m in messages]
    fields = ", ".join(schema.get("properties", {})) or "the schema's fields"
    ask[-1]["content"] += f"\n\nReply with JSON only, with the fields: {fields}."
    prompts = [ask]
    raw = _call(settings, params, schema, ask)
    problem = _check(raw, schema)
    if problem is None:
        return StructuredResult(json.loads(raw), raw, 1, prompts)
    if not repair:
        raise StructuredOutputError(f"The model's JSON is invalid ({problem}).", raw)
    repair = ask + [{"role": "assistant", "content": raw},
                    {"role": "user", "content": f"That JSON is invalid ({problem}). Reply with "
                                                "corrected JSON only."}]
    prompts.append(repair)
    raw2 = _call(settings, dataclasses.replace(params, temperature=0.0), schema, repair)
    problem2 = _check(raw2, schema)
    if problem2 is None:
        return StructuredResult(json.loads(raw2), raw2, 2, prompts)
    raise StructuredOutputError(f"The model could not fill the schema, even after one repair "
                                f"attempt ({problem2}). Its raw output is shown below; a larger "
                                "model, or a simpler schema, may do better.", raw2)


def _check(raw: str, schema: dict) -> str | None:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg}"
    return validate(data, schema)


def classify(settings: Settings, messages: list[dict[str, str]], labels: Sequence[str],
             params: GenerationParams | None = None) -> str:
    """One of ``labels``, as the model answers ``messages``, by constrained
    decoding (a JSON Schema ``enum``; a grammar on the local model): a small
    model cannot wander off the label set. On the bundled model, 6 of 8 dev
    foods against 4 of 8 answered freely at temperature 0.

    Raises:
        StructuredOutputError: no labels, or no valid answer after a repair.
        ProviderError: the model failed.
    """
    if not labels:
        raise StructuredOutputError("There are no labels to choose from.", "")
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": list(labels)}},
              "required": ["answer"], "additionalProperties": False}
    return structured_output(settings, messages, schema, params).data["answer"]
