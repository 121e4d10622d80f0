"""The HTTP side of ``llmapp serve``: FastAPI routes in OpenAI's shapes.

- ``POST /v1/chat/completions``: streamed as server-sent events
  (``data: {chunk}`` ... ``data: [DONE]``) or whole;
- ``GET /v1/models`` and ``GET /v1/models/{id}``;
- ``GET /health``: the service's load (no auth, for probes).

Before any of them, :class:`~llmapp.api.gate.Gate` checks the key (each key
a principal, :mod:`llmapp.api.keys`) and caps the body
(``LLMAPP_API_MAX_BODY_BYTES``), before a byte of the body is read. Then a
request is checked against the other limits (``LLMAPP_API_MAX_MESSAGES``,
four stop sequences, text only) before it waits for a slot.

Generation runs on worker threads (:mod:`llmapp.api.service`). At most
``concurrency`` replies generate at once; ``LLMAPP_API_MAX_QUEUE`` more wait,
and beyond that a request gets 429 with ``Retry-After``. A client that goes
away mid-stream cancels its generation: Starlette cancels the response as
soon as the ASGI server reports the disconnect, and the reply's stream is
closed, which frees the local model at the next token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmapp.api import schemas
from llmapp.api.gate import KEY_HELP, Gate
from llmapp.api.keys import KeyRing
from llmapp.api.schemas import ChatCompletionRequest
from llmapp.api.service import APIError, Piece, Run, Service, api_error
from llmapp.settings import Settings, resolve

log = logging.getLogger(__name__)

MEAN_PRIOR_S = 10.0
"""Assumed seconds per request before any has finished (for ``Retry-After``)."""


class Admission:
    """At most ``slots`` requests run at once and ``max_queue`` wait; the
    rest are turned away with 429.

    ``Retry-After`` is the expected wait for one more request: the queue
    ahead of it times the mean request time (an exponentially weighted mean,
    weight 0.2 on the newest), divided by ``slots``; at least 1 s.
    """

    def __init__(self, slots: int, max_queue: int) -> None:
        self.slots = slots
        self.max_queue = max_queue
        self.active = 0
        self.waiting = 0
        self.mean_s = MEAN_PRIOR_S
        self._free = asyncio.Semaphore(slots)

    def retry_after_s(self) -> int:
        """Seconds a turned-away client should wait."""
        return max(1, math.ceil(self.mean_s * (self.waiting + 1) / self.slots))

    async def enter(self) -> Ticket:
        """Wait for a slot.

        Raises:
            APIError: 429 when every slot is busy and the queue is full.
        """
        if self.active + self.waiting >= self.slots + self.max_queue:
            raise APIError(429, f"The server is busy: {self.active} replies are generating "
                                f"and {self.waiting} are waiting. Retry later.",
                           "rate_limit_exceeded", retry_after_s=self.retry_after_s())
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        return Ticket(self)

    def _leave(self, seconds: float) -> None:
        self.active -= 1
        self.mean_s = 0.8 * self.mean_s + 0.2 * seconds
        self._free.release()


class Ticket:
    """One admitted request's slot; :meth:`release` gives it back (once)."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._started = time.monotonic()
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission._leave(time.monotonic() - self._started)


def _error_response(error: APIError) -> JSONResponse:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(schemas.error_body(error.status, error.message, error.code, error.param),
                        status_code=error.status, headers=headers)


def _advance(it: Iterator[Piece]) -> Piece | None:
    try:
        return next(it)
    except StopIteration:
        return None


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class EventStream(StreamingResponse):
    """A streaming response that always ends its reply: after the body is
    sent, after a disconnect, and also when the body never started (a client
    gone before the first byte), ``on_close`` runs once the body is closed."""

    def __init__(self, content: AsyncIterator[str], on_close, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()
            self._on_close()


async def _events(run: Run, it: Iterator[Piece], first: Piece | None,
                  request: ChatCompletionRequest) -> AsyncIterator[str]:
    """The reply as server-sent events: a first chunk with the role, one per
    piece, the last with the finish reason (and ``sources``, ``steps``,
    ``llmapp``), the usage when asked, then ``[DONE]``. An error mid-stream
    is sent as OpenAI's error object, and the stream ends there."""
    cid, created, model = schemas.completion_id(), int(time.time()), request.model
    yield _sse(schemas.chunk(cid, model, created, {"role": "assistant", "content": ""}))
    try:
        piece = first
        while piece is not None:
            extra = {"step": piece.step} if piece.step is not None else {}
            delta = {"content": piece.text} if piece.text else {}
            yield _sse(schemas.chunk(cid, model, created, delta, **extra))
            piece = await anyio.to_thread.run_sync(_advance, it)
        outcome = await anyio.to_thread.run_sync(run.outcome)
    except Exception as exc:  # noqa: BLE001 - reported to the client in the stream
        error = api_error(exc)
        yield _sse(schemas.error_body(error.status, error.message, error.code))
        return
    yield _sse(schemas.chunk(cid, model, created, {}, outcome.finish_reason, **outcome.extra))
    if request.stream_options is not None and request.stream_options.include_usage:
        yield _sse(schemas.usage_chunk(cid, model, created, schemas.usage(
            outcome.prompt_tokens, outcome.completion_tokens)))
    yield "data: [DONE]\n\n"


def _collect(run: Run, it: Iterator[Piece], first: Piece | None, gone: threading.Event):
    """Read the rest of a run (for a non-streamed reply) and return its
    :class:`~llmapp.api.service.Outcome`; stop early once ``gone`` is set
    (the client has gone)."""
    piece = first
    while piece is not None and not gone.is_set():
        piece = _advance(it)
    return run.outcome()


async def _watch_disconnect(http: Request, gone: threading.Event) -> None:
    while not await http.is_disconnected():
        await asyncio.sleep(0.25)
    gone.set()


async def _whole(run: Run, it: Iterator[Piece], first: Piece | None, ticket: Ticket,
                 request: ChatCompletionRequest, http: Request) -> JSONResponse:
    """The reply as one ``chat.completion``; a client that goes away stops it."""
    gone = threading.Event()
    watcher = asyncio.ensure_future(_watch_disconnect(http, gone))
    try:
        outcome = await anyio.to_thread.run_sync(_collect, run, it, first, gone)
    except Exception as exc:  # noqa: BLE001 - answered as an error body
        return _error_response(api_error(exc))
    finally:
        watcher.cancel()
        run.close()
        ticket.release()
    body = schemas.completion(schemas.completion_id(), request.model, int(time.time()),
                              outcome.text, outcome.finish_reason,
                              schemas.usage(outcome.prompt_tokens, outcome.completion_tokens),
                              **outcome.extra)
    return JSONResponse(body)


def _validation_error(exc: RequestValidationError) -> APIError:
    """A validation error as OpenAI's error: invalid JSON and text that is
    not text get 400, a field out of range 422."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return APIError(400, "The request body is not valid JSON.", "invalid_request")
    text = next((e for e in errors if e.get("type") == schemas.INVALID_TEXT), None)
    if text is not None:
        return APIError(400, text["msg"], schemas.INVALID_TEXT,
                        (text.get("ctx") or {}).get("where"))
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")[:100]
    return APIError(422, f"{where or 'body'}: {first.get('msg', 'invalid value')}.",
                    "invalid_request", where or None)


BEARER = HTTPBearer(auto_error=False, description="A key of LLMAPP_API_KEYS or LLMAPP_API_KEY.")
"""Declares the bearer key in the OpenAPI schema (``/docs``); the check
itself is :class:`~llmapp.api.gate.Gate`'s, before the body is read."""


def principal_of(request: Request,
                 _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> str:
    """The principal :class:`~llmapp.api.gate.Gate` found for this request.

    Raises:
        APIError: 401 when there is none (the app runs without its gate).
    """
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise APIError(401, KEY_HELP, "invalid_api_key")
    return principal


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application (``uvicorn --factory llmapp.api.app:create_app``).

    Args:
        settings: default :func:`llmapp.settings.resolve` (environment,
            ``.env``, defaults).

    Raises:
        ConfigError: a setting cannot be parsed.
    """
    settings = settings or resolve()
    keys = KeyRing.from_settings(settings)
    service = Service(settings)
    admission = Admission(service.concurrency, settings.api_max_queue)
    app = FastAPI(title="llmapp", summary="OpenAI-compatible chat completions over llmapp",
                  docs_url="/docs", redoc_url=None)
    app.state.service, app.state.admission = service, admission
    app.add_middleware(Gate, keys=keys, max_body_bytes=settings.api_max_body_bytes)

    @app.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "No such route." if exc.status_code == 404 else str(exc.detail)
        return _error_response(APIError(exc.status_code, message))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(api_error(exc))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        from llmapp.providers import active_provider
        from llmapp.providers.runtime import loaded_runtime

        provider, _ = active_provider(settings)
        runtime = loaded_runtime()
        return {"status": "ok", "provider": provider.name,
                "model": provider.model_name(settings), "active": admission.active,
                "queued": admission.waiting, "slots": admission.slots,
                "model_in_flight": runtime.in_flight() if runtime is not None else 0}

    @app.get("/v1/models", dependencies=[Depends(principal_of)])
    async def models() -> dict[str, Any]:
        names = await anyio.to_thread.run_sync(_model_names, service)
        return {"object": "list", "data": [schemas.model_card(n) for n in names]}

    @app.get("/v1/models/{model_id:path}", dependencies=[Depends(principal_of)])
    async def model(model_id: str) -> dict[str, Any]:
        await anyio.to_thread.run_sync(service.check_model, model_id)
        return schemas.model_card(model_id)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, http: Request,
                               principal: Annotated[str, Depends(principal_of)]):
        service.check_request(body)
        ticket = await admission.enter()
        run = None
        try:
            run = await anyio.to_thread.run_sync(service.start, body, principal)
            it = iter(run)
            first = await anyio.to_thread.run_sync(_advance, it)
        except BaseException as exc:
            if run is not None:
                run.close()
            ticket.release()
            if isinstance(exc, Exception):
                raise api_error(exc) from exc
            raise
        if body.stream:
            def close() -> None:
                run.close()
                ticket.release()

            return EventStream(_events(run, it, first, body), close,
                               media_type="text/event-stream",
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await _whole(run, it, first, ticket, body, http)

    return app


def _model_names(service: Service) -> list[str]:
    from llmapp.api.service import AGENT_MODEL, CHAT_MODEL
    from llmapp.errors import LlmappError

    try:
        return service.models()
    except LlmappError as exc:
        log.warning("collections not listed: %s", exc)
        return [CHAT_MODEL, AGENT_MODEL]
