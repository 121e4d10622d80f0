"""OpenAI's chat completions API, as much of it as llmapp serves: the request
body and the response, chunk and error shapes.

Shapes follow OpenAI's API reference (``POST /v1/chat/completions``,
``GET /v1/models``, the ``chat.completion.chunk`` object and the error
object). Fields OpenAI clients send that llmapp does not use (``user``,
``logprobs``, ...) are accepted and ignored; the ones whose meaning llmapp
cannot honour (``n`` > 1, client-side ``tools``, images) are refused with a
400, never silently dropped.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

INVALID_TEXT = "invalid_text"
"""The validation error type of a string no model can read (see :func:`unreadable_text`)."""


def unreadable_text(value: Any) -> str | None:
    """Where in a decoded JSON value the first string that is not text is: a
    lone surrogate (``"\\ud800"`` is valid JSON, but no UTF-8 text) or a NUL
    character. Keys are checked too. Walks without recursion, so any depth the
    JSON parser took is fine.

    Returns:
        The path, e.g. ``messages[2].content``, or None when all is text.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if not _readable(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and not _readable(key):
                    return f"{where or 'body'} (a key)"
                stack.append((f"{where}.{key}" if where else str(key), inner))
        elif isinstance(item, list):
            stack.extend((f"{where}[{n}]", inner) for n, inner in enumerate(item))
    return None


def _readable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ContentPart(BaseModel):
    """One part of a message's content; only ``text`` parts are served."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class Message(BaseModel):
    """One message of the request. ``developer`` counts as ``system``."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a last chunk with usage."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``.

    Attributes:
        model: ``llmapp-chat``, ``llmapp-rag:<collection>`` or ``llmapp-agent``.
        messages: the conversation, oldest first; the last is the user's.
        max_tokens / max_completion_tokens: completion tokens at most (the
            newer name wins when both are given).
        stop: one string or up to four (:data:`~llmapp.config.API_MAX_STOP`).
        user: the end user's id; with ``LLMAPP_CACHE_SCOPE=session`` it
            keeps each user's cached replies apart, within the principal the
            key names (:mod:`llmapp.api.keys`).

    Every string, keys included, must be text (:func:`unreadable_text`).
    """

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1)
    seed: int | None = None
    tools: list[Any] | None = None
    user: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, data: Any) -> Any:
        where = unreadable_text(data)
        if where is not None:
            raise PydanticCustomError(
                INVALID_TEXT, "{where} is not text: it holds a lone surrogate or a NUL "
                              "character. Send UTF-8 text.", {"where": where[:100]})
        return data

    @property
    def completion_limit(self) -> int | None:
        """Completion tokens at most, or None for llmapp's default."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stops(self) -> tuple[str, ...]:
        """Stop sequences as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


def completion_id() -> str:
    """A new id, ``chatcmpl-`` and 24 hex digits, as OpenAI's look."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int]:
    """OpenAI's usage object (missing counts as 0)."""
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def chunk(cid: str, model: str, created: int, delta: dict[str, Any] | None = None,
          finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice; ``extra`` adds top-level
    fields OpenAI clients ignore (``sources``, ``steps``, ``llmapp``)."""
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason,
                         "logprobs": None}], **extra}


def usage_chunk(cid: str, model: str, created: int, counts: dict[str, int]) -> dict[str, Any]:
    """The last chunk of a stream asked for usage: no choices, only usage."""
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": counts}


def completion(cid: str, model: str, created: int, text: str, finish_reason: str,
               counts: dict[str, int], **extra: Any) -> dict[str, Any]:
    """A whole ``chat.completion`` with one choice."""
    return {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                 "refusal": None},
                         "finish_reason": finish_reason, "logprobs": None}],
            "usage": counts, **extra}


def model_card(name: str, owned_by: str = "llmapp") -> dict[str, Any]:
    """One entry of ``GET /v1/models``."""
    return {"id": name, "object": "model", "created": int(time.time()), "owned_by": owned_by}


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 409: "conflict_error",
               413: "invalid_request_error", 422: "invalid_request_error",
               429: "rate_limit_error", 500: "server_error", 502: "server_error",
               503: "server_error", 504: "server_error"}


def error_body(status: int, message: str, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``;
    the message is scrubbed of configured secrets (:func:`llmapp.secrets.scrub`)."""
    from llmapp.secrets import scrub

    return {"error": {"message": scrub(message), "type": ERROR_TYPES.get(status, "server_error"),
                      "param": param, "code": code}}
