"""What ``llmapp serve`` does with a request: the same library calls as the
pages and the CLI, behind OpenAI's request and response shapes.

=============================  ==============================================
model                          answers with
=============================  ==============================================
``llmapp-chat``                :func:`llmapp.chat.start_reply` on the active
                               provider; the history the client sends is
                               fitted to the context window (stage 1)
``llmapp-rag:<collection>``    :func:`llmapp.rag.answer.start_answer`: a cited
                               answer; ``sources`` rides along
``llmapp-agent``               :func:`llmapp.routed.run_with_tools` with the
                               offline tools; ``steps`` ride along
=============================  ==============================================

The safety filter and the response cache wrap every reply as they do on the
pages (``LLMAPP_SAFETY_LEVEL``, ``LLMAPP_CACHE``).

Everything here is synchronous and runs on worker threads; :mod:`llmapp.api.app`
is the asynchronous HTTP side.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from llmapp import config
from llmapp.api.keys import ANONYMOUS
from llmapp.api.schemas import ChatCompletionRequest
from llmapp.chat import ChatMessage, ChatStore, Reply, start_reply
from llmapp.errors import ConfigError, LlmappError, ProviderError
from llmapp.providers import GenerationParams, active_provider
from llmapp.rag import RagError
from llmapp.safety.guard import SafetyError
from llmapp.settings import Settings
from llmapp.storage import StoreError

log = logging.getLogger(__name__)

CHAT_MODEL = "llmapp-chat"
AGENT_MODEL = "llmapp-agent"
RAG_PREFIX = "llmapp-rag:"
AGENT_TOOLS = config.OFFLINE_TOOLS
"""The agent's tools: the ones that run offline, as ``llmapp agent``'s default."""
AGENT_PARAMS = GenerationParams(temperature=0.2, max_tokens=256)
"""The agent's default sampling (``llmapp agent``'s)."""


class APIError(Exception):
    """A request the service cannot answer, as an HTTP status and OpenAI's
    error fields.

    Attributes:
        status: HTTP status code.
        message: what went wrong, in words a client's user can act on.
        code: OpenAI's machine-readable code, e.g. ``model_not_found``.
        param: the request field at fault, if one is.
        retry_after_s: for 429 and 503, seconds to wait before retrying.
    """

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after_s = retry_after_s


PROVIDER_STATUS = {"auth": (502, "upstream_auth"), "not_found": (502, "upstream_model"),
                   "rate_limit": (429, "rate_limit_exceeded"), "busy": (429, "model_busy"),
                   "timeout": (504, "upstream_timeout"), "connection": (503, "upstream_down"),
                   "unavailable": (503, "upstream_down"), "model_load": (503, "model_load"),
                   "context_overflow": (400, "context_length_exceeded"),
                   "bad_request": (400, "invalid_request"), "unknown": (500, "server_error")}
"""HTTP status and code for each :class:`~llmapp.errors.ProviderError` kind.
A key or model the server is configured with is the server's fault, not the
client's: 502, never 401 or 404."""


def api_error(exc: BaseException) -> APIError:
    """Translate a library error into an :class:`APIError`; anything else is
    a 500. Every 500 is logged with its traceback (at ERROR, which ``llmapp
    serve`` shows at every ``--log-level`` but ``critical``); the client sees
    only a message."""
    error = _translate(exc)
    if error.status == 500 and not isinstance(exc, APIError):
        log.error("answering failed (500, %s)", type(exc).__name__, exc_info=exc)
    return error


def _translate(exc: BaseException) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, SafetyError):
        return APIError(400, str(exc), "content_filter", "messages")
    if isinstance(exc, ProviderError):
        status, code = PROVIDER_STATUS.get(exc.kind, (500, "server_error"))
        return APIError(status, str(exc), code,
                        retry_after_s=5.0 if status in (429, 503) else None)
    if isinstance(exc, (ConfigError, RagError)):
        return APIError(400, str(exc), "invalid_request")
    if isinstance(exc, StoreError):
        return APIError(503, str(exc), "storage", retry_after_s=5.0)
    if isinstance(exc, LlmappError):
        return APIError(500, str(exc), "server_error")
    return APIError(500, "The server failed while answering; its log has the details.",
                    "server_error")


@dataclass
class Piece:
    """One piece of a reply as it streams: text, or an agent's step."""

    text: str = ""
    step: dict[str, Any] | None = None


@dataclass
class Outcome:
    """How a finished reply ends.

    Attributes:
        text: the reply's whole text ("" when the safety filter withdrew it).
        finish_reason: ``stop``, ``length`` (``max_tokens`` reached) or
            ``content_filter`` (withdrawn by the safety filter).
        prompt_tokens, completion_tokens: usage.
        extra: top-level fields OpenAI clients ignore: ``sources`` (RAG),
            ``steps`` (agent), ``llmapp`` (stats, notices).
    """

    text: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    extra: dict[str, Any] = field(default_factory=dict)


class Run:
    """A reply in flight: iterate it for :class:`Piece` s, then call
    :meth:`outcome`; :meth:`close` stops it early and frees the model."""

    def __iter__(self) -> Iterator[Piece]:
        raise NotImplementedError

    def outcome(self) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _finish_reason(message: ChatMessage, max_tokens: int) -> str:
    if message.withheld:
        return "content_filter"
    stats = message.stats
    if stats is not None and (stats.completion_tokens or 0) >= max_tokens:
        return "length"
    return "stop"


def _llmapp_fields(message: ChatMessage) -> dict[str, Any]:
    return {"stats": message.stats.to_dict() if message.stats else None,
            "notices": message.notices}


class ReplyRun(Run):
    """A chat reply or a grounded answer (anything with ``stream`` and ``message()``)."""

    def __init__(self, reply: Any, max_tokens: int) -> None:
        self._reply = reply
        self._max_tokens = max_tokens

    def __iter__(self) -> Iterator[Piece]:
        for text in self._reply.stream:
            yield Piece(text=text)

    def outcome(self) -> Outcome:
        message = self._reply.message()
        extra = {"llmapp": _llmapp_fields(message)}
        if not isinstance(self._reply, Reply):
            extra["sources"] = message.sources
        stats = message.stats
        return Outcome(message.content, _finish_reason(message, self._max_tokens),
                       stats.prompt_tokens if stats else None,
                       stats.completion_tokens if stats else None, extra)

    def close(self) -> None:
        self._reply.stream.close()


class AgentRun(Run):
    """An agent's run: its steps as they happen, then its answer."""

    def __init__(self, events: Iterator, counter: Any, prompt: list[dict[str, str]]) -> None:
        self._events = events
        self._counter = counter
        self._prompt = prompt
        self._steps: list[dict[str, Any]] = []
        self._answer = ""
        self._withdrawn = ""

    def __iter__(self) -> Iterator[Piece]:
        streamed = False
        for event in self._events:
            if event.kind == "token":
                streamed = True
                yield Piece(text=event.text)
            elif event.kind == "answer":
                self._answer = event.text
                if not streamed and event.text:
                    yield Piece(text=event.text)
            elif event.kind == "withdrawn":
                self._withdrawn = event.text
            else:
                step = event.to_dict()
                self._steps.append(step)
                yield Piece(step=step)

    def outcome(self) -> Outcome:
        notices = [self._withdrawn] if self._withdrawn else []
        text = "" if self._withdrawn else self._answer
        return Outcome(text, "content_filter" if self._withdrawn else "stop",
                       self._counter.count_messages(self._prompt),
                       self._counter.count_text(self._answer),
                       {"steps": self._steps, "llmapp": {"stats": None, "notices": notices}})

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


def _text_of(message, n: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise APIError(400, f"messages[{n}] has a {part.type!r} part: llmapp serves text "
                                "only.", "unsupported_content", f"messages[{n}].content")
        parts.append(part.text)
    return "".join(parts)


def conversation(request: ChatCompletionRequest) -> tuple[str, list[dict[str, str]]]:
    """The request's messages as ``(system_prompt, history)``: system and
    developer messages joined into one system prompt, the rest in order.

    Raises:
        APIError: a ``tool`` message, a non-text part, or a last message that
            is not the user's (400).
    """
    system, history = [], []
    for n, message in enumerate(request.messages):
        text = _text_of(message, n)
        if message.role in ("system", "developer"):
            system.append(text)
        elif message.role == "tool":
            raise APIError(400, "Tool messages are not served: llmapp-agent runs its own "
                                "tools.", "unsupported_role", f"messages[{n}].role")
        else:
            history.append({"role": message.role, "content": text})
    if not history or history[-1]["role"] != "user" or not history[-1]["content"].strip():
        raise APIError(400, "The last message must be the user's, and not empty.",
                       "invalid_messages", "messages")
    return "\n\n".join(s for s in system if s.strip()), history


class Service:
    """The service behind the HTTP API: one per process, shared by every
    request (thread-safe).

    Args:
        settings: the resolved settings (:func:`llmapp.settings.resolve`).
    """

    def __init__(self, settings: Settings) -> None:
        from llmapp.cache import open_cache
        from llmapp.safety import load_guard

        self.settings = settings
        self.guard, note = load_guard(settings)
        if note:
            log.warning("%s", note)
        self._cache_use, note = open_cache(settings, "api")
        if note:
            log.warning("%s", note)
        self._kb = None
        self._kb_lock = threading.Lock()

    @property
    def concurrency(self) -> int:
        """Replies generated at once: ``LLMAPP_API_CONCURRENCY``, else what the
        local runtime decodes at once (:func:`~llmapp.providers.runtime.capacity`),
        else :data:`~llmapp.config.API_REMOTE_CONCURRENCY`."""
        if self.settings.api_concurrency:
            return self.settings.api_concurrency
        provider, _ = active_provider(self.settings)
        if provider.name != "local":
            return config.API_REMOTE_CONCURRENCY
        from llmapp.providers.runtime import capacity

        return capacity(self.settings.local_runtime, self.settings.local_n_threads)

    def knowledge_base(self):
        """The process's :class:`~llmapp.rag.store.KnowledgeBase`, opened once."""
        with self._kb_lock:
            if self._kb is None:
                from llmapp.rag.store import knowledge_base

                self._kb = knowledge_base(self.settings)
            return self._kb

    def models(self) -> list[str]:
        """Model ids to list: chat, agent, and RAG over each collection.

        Raises:
            RagError: the Chroma store cannot be opened.
        """
        names = [c.name for c in self.knowledge_base().collections()]
        return [CHAT_MODEL, AGENT_MODEL, *(RAG_PREFIX + name for name in names)]

    def check_model(self, model: str) -> None:
        """Raise a 404 :class:`APIError` unless ``model`` is served."""
        if model in (CHAT_MODEL, AGENT_MODEL):
            return
        if model.startswith(RAG_PREFIX):
            collection = model.removeprefix(RAG_PREFIX)
            names = [c.name for c in self.knowledge_base().collections()]
            if collection in names:
                return
            raise APIError(404, f"No collection named {collection!r}: ingest documents first "
                                f"(llmapp ingest PATH --collection {collection}); "
                                f"collections: {', '.join(names) or 'none'}.",
                           "model_not_found", "model")
        raise APIError(404, f"The model {model!r} does not exist: use {CHAT_MODEL}, "
                            f"{AGENT_MODEL} or {RAG_PREFIX}<collection> (GET /v1/models).",
                       "model_not_found", "model")

    def _params(self, request: ChatCompletionRequest, default: GenerationParams
                ) -> GenerationParams:
        return GenerationParams(
            temperature=default.temperature if request.temperature is None
            else request.temperature,
            top_p=default.top_p if request.top_p is None else request.top_p,
            max_tokens=request.completion_limit or default.max_tokens,
            stop=request.stops or default.stop)

    def _cache(self, request: ChatCompletionRequest, principal: str):
        """The process's cache (opened once), scoped to the principal the key
        names: ``api:<principal>``, narrowed to ``api:<principal>:<h>`` when
        the request names its ``user`` (``h``: the SHA-256 hex of ``user``, so
        any length fits the scope's index and no end user's id is stored).
        With ``LLMAPP_CACHE_SCOPE=shared`` a principal's users share its
        entries; principals never do."""
        cache = self._cache_use
        if cache is None:
            return None
        scope = f"api:{principal}"
        if self.settings.cache_scope != "shared" and request.user:
            scope += ":" + hashlib.sha256(request.user.encode()).hexdigest()
        return replace(cache, scope=scope)

    def check_request(self, request: ChatCompletionRequest) -> None:
        """Refuse, before the request waits for a slot, what will not be served:
        more than ``LLMAPP_API_MAX_MESSAGES`` messages, more than
        :data:`~llmapp.config.API_MAX_STOP` stop sequences, ``n`` > 1,
        client-side tools.

        Raises:
            APIError: 400, naming the field.
        """
        limit = self.settings.api_max_messages
        if len(request.messages) > limit:
            raise APIError(400, f"The request has {len(request.messages):,} messages; this "
                                f"server takes at most {limit:,} (LLMAPP_API_MAX_MESSAGES).",
                           "too_many_messages", "messages")
        if len(request.stops) > config.API_MAX_STOP:
            raise APIError(400, f"stop has {len(request.stops)} sequences; at most "
                                f"{config.API_MAX_STOP} are served.", "invalid_request", "stop")
        if request.n not in (None, 1):
            raise APIError(400, "Only n=1 is served.", "unsupported_parameter", "n")
        if request.tools:
            raise APIError(400, "Client-side tools are not served: use llmapp-agent, which "
                                "runs its own tools.", "unsupported_parameter", "tools")

    def start(self, request: ChatCompletionRequest, principal: str = ANONYMOUS) -> Run:
        """Start the reply to ``request``; nothing streams until the run is
        iterated (but the question is checked, and for RAG retrieved, now).

        Args:
            request: the parsed body.
            principal: who asks (:mod:`llmapp.api.keys`); it scopes the
                response cache.

        Raises:
            APIError: the request cannot be served as asked (400, 404), or a
                library error, translated by :func:`api_error`.
        """
        self.check_request(request)
        self.check_model(request.model)
        system, history = conversation(request)
        try:
            if request.model == AGENT_MODEL:
                return self._agent(request, history)
            if request.model.startswith(RAG_PREFIX):
                return self._rag(request, history, principal)
            return self._chat(request, system, history, principal)
        except Exception as exc:
            raise api_error(exc) from exc

    @staticmethod
    def _store(history: list[dict[str, str]]) -> ChatStore:
        store = ChatStore()
        store.messages = [ChatMessage(m["role"], m["content"]) for m in history]
        return store

    def _chat(self, request: ChatCompletionRequest, system: str,
              history: list[dict[str, str]], principal: str) -> Run:
        params = self._params(request, GenerationParams())
        reply = start_reply(self._store(history), self.settings, params,
                            system if system else config.DEFAULT_SYSTEM_PROMPT,
                            cache=self._cache(request, principal), guard=self.guard)
        return ReplyRun(reply, params.max_tokens)

    def _rag(self, request: ChatCompletionRequest, history: list[dict[str, str]],
             principal: str) -> Run:
        from llmapp.rag.answer import ANSWER_PARAMS, start_answer

        params = self._params(request, ANSWER_PARAMS)
        rag = start_answer(self.knowledge_base(), request.model.removeprefix(RAG_PREFIX),
                           self._store(history), self.settings, params,
                           cache=self._cache(request, principal), guard=self.guard)
        return ReplyRun(rag, params.max_tokens)

    def _agent(self, request: ChatCompletionRequest, history: list[dict[str, str]]) -> Run:
        from llmapp.routed import run_with_tools
        from llmapp.tools import available_tools

        params = self._params(request, AGENT_PARAMS)
        tools = available_tools()
        question = history[-1]["content"]
        events = run_with_tools(self.settings, {t: tools[t] for t in AGENT_TOOLS}, question,
                                params=params, history=history[:-1], guard=self.guard)
        provider, _ = active_provider(self.settings)
        counter = provider.token_counter(self.settings)
        return AgentRun(events, counter, history)
