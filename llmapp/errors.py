"""Typed errors that carry a message a user can act on.

llmapp raises these; :mod:`llmapp.ui` turns them into ``st.error`` and the CLI
into one line on stderr with a non-zero exit. Tracebacks go to the log only.
"""

from __future__ import annotations

import logging

from llmapp.secrets import scrub

log = logging.getLogger(__name__)


class LlmappError(Exception):
    """Base class. ``str(err)`` is the user-facing message.

    The message never shows a configured secret: text arguments are scrubbed
    when the error is made and again when it is shown
    (:func:`llmapp.secrets.scrub`), so an upstream error that echoes a key
    reaches no page, terminal or API response.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return scrub(super().__str__())


class ConfigError(LlmappError):
    """A setting is missing or malformed (unknown provider, bad number...)."""


class ProviderError(LlmappError):
    """A chat model could not be built or did not answer.

    Attributes:
        kind: one of ``auth``, ``rate_limit``, ``timeout``, ``connection``,
            ``context_overflow``, ``model_load``, ``not_found``, ``busy``,
            ``bad_request``, ``unavailable``, ``unknown``.
        retryable: whether sending the same request again may succeed.
    """

    RETRYABLE = frozenset({"rate_limit", "timeout", "connection", "busy", "unknown"})

    def __init__(self, message: str, *, kind: str = "unknown") -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = kind in self.RETRYABLE


class ContextOverflowError(ProviderError):
    """The prompt plus ``max_tokens`` cannot fit the model's context window,
    even after dropping all history."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="context_overflow")


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def provider_error_from(exc: BaseException, *, provider: str, where: str = "") -> ProviderError:
    """Translate an exception raised by a provider into a :class:`ProviderError`.

    Handles the ``openai`` SDK's typed errors by class name and HTTP status,
    so the ``openai`` package need not be importable. Any other exception
    becomes ``kind="unknown"`` with its type named; the traceback is logged.

    Args:
        exc: the exception raised while building or calling the model.
        provider: provider name, used in the message.
        where: the server address, for connection messages (no secrets:
            :func:`llmapp.secrets.mask_base_url`).

    The message is scrubbed of every configured secret
    (:func:`llmapp.secrets.scrub`); so is the logged traceback.
    """
    if isinstance(exc, ProviderError):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    name = type(exc).__name__
    status = _status_of(exc)
    text = scrub(str(exc))  # an upstream message may echo the key
    at = f" at {where}" if where else ""
    if "AuthenticationError" in names or status == 401:
        return ProviderError(
            f"The {provider} server{at} rejected the API key (401). Check the key in the "
            "sidebar, .streamlit/secrets.toml or the environment.",
            kind="auth",
        )
    if "PermissionDeniedError" in names or status == 403:
        return ProviderError(
            f"The {provider} server{at} refused access (403): this key may not use the model.",
            kind="auth",
        )
    if "RateLimitError" in names or status == 429:
        quota = "insufficient_quota" in text
        hint = "Your account is out of quota." if quota else "Wait a moment, then retry."
        return ProviderError(
            f"The {provider} server{at} is rate limiting requests (429), even after "
            f"retrying with backoff. {hint}",
            kind="rate_limit",
        )
    if "APITimeoutError" in names or isinstance(exc, TimeoutError):
        return ProviderError(
            f"The {provider} server{at} did not answer in time, even after retrying. "
            "Retry, or raise LLMAPP_REQUEST_TIMEOUT.",
            kind="timeout",
        )
    if "APIConnectionError" in names or isinstance(exc, ConnectionError):
        return ProviderError(
            f"Could not connect to the {provider} server{at}. Is it running, and is the "
            "base URL right?",
            kind="connection",
        )
    if "NotFoundError" in names or status == 404:
        return ProviderError(
            f"The {provider} server{at} does not know this model or endpoint (404). "
            "Check the model name and the base URL (it usually ends in /v1).",
            kind="not_found",
        )
    if "context_length_exceeded" in text or "maximum context length" in text:
        return ProviderError(
            f"The prompt is longer than the model's context window ({provider}). "
            "Clear the chat, shorten the message or lower max tokens.",
            kind="context_overflow",
        )
    if "BadRequestError" in names or status == 400:
        return ProviderError(f"The {provider} server{at} rejected the request (400): {text[:300]}",
                             kind="bad_request")
    log.error("unexpected %s error", provider, exc_info=exc)
    return ProviderError(f"The {provider} model failed ({name}). Details are in the log.",
                         kind="unknown")
