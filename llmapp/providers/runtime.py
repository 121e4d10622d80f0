"""The local model's runtime: one small interface, two implementations.

=================  ==============================================  ===========================
``LLMAPP_LOCAL_    what runs the GGUF                              install
RUNTIME``
=================  ==============================================  ===========================
``xllamacpp``      llama.cpp's own server, in-process, one per     a binary wheel (default)
(default)          core on demand (:mod:`llmapp.providers.xllama`)
``llama-cpp``      ``llama_cpp.Llama`` on one dedicated thread     ``pip install
                   (:mod:`llmapp.providers.llamacpp`)              llmapp[llama-cpp]``, compiles
=================  ==============================================  ===========================

A runtime loads one GGUF file, renders its chat template, counts tokens with
its vocabulary, and streams a reply, optionally constrained to a JSON Schema.
Closing the stream cancels the generation and frees the model. Nothing above
:mod:`llmapp.providers.local` knows which runtime runs.

One runtime lives in each process, shared by every Streamlit session, the CLI
and the tests; it alone decides how many llama.cpp instances run (xllamacpp
starts one per decoding core on demand, see :func:`capacity`).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmapp import config
from llmapp.cpus import CpuBudget, default_threads
from llmapp.errors import ProviderError

log = logging.getLogger(__name__)

RUNTIMES = config.LOCAL_RUNTIMES
"""Runtime names, default first (the setting ``LLMAPP_LOCAL_RUNTIME``)."""
RUNTIME_PACKAGES = {"xllamacpp": "xllamacpp", "llama-cpp": "llama_cpp"}
RUNTIME_INSTALL = {"xllamacpp": "pip install xllamacpp",
                   "llama-cpp": "pip install 'llmapp[llama-cpp]' (compiles llama.cpp)"}


@dataclass(frozen=True)
class Sampling:
    """Decoding settings for one generation.

    Attributes:
        temperature: 0 to 2; 0 is greedy.
        top_p: nucleus mass, 0 < top_p <= 1.
        max_tokens: completion tokens at most.
        stop: strings that end the reply (not included in it).
        repeat_penalty: divides the logits of the last 64 tokens; 1.0 is off
            (llama.cpp's ``--repeat-penalty``).
        dry_multiplier: strength of the DRY sampler ("Don't Repeat Yourself",
            p-e-w, llama.cpp ``--dry-multiplier``), which penalizes a token
            that would extend a sequence already seen; 0 is off. llama.cpp's
            server applies it; llama-cpp-python has no DRY and ignores it.
        dry_penalty_last_n: how many of the last tokens (the prompt's too) DRY
            looks back over (llama.cpp's server takes 0 and up, not -1).
        dry_sequence_breakers: strings at which DRY stops matching a repeated
            sequence (llama.cpp ``--dry-sequence-breaker``).
        seed: fixed sampling seed, or None.
        adapter: a LoRA adapter file the runtime loaded (one of its
            ``adapters``) to apply to this generation, or None for the base
            model (stage 7's tuned models).
        grammar: a GBNF grammar (llama.cpp's format) the reply must match,
            e.g. three bold list items (:mod:`llmapp.prompting.formats`);
            ignored when a JSON Schema is given.
    """

    temperature: float = config.DEFAULT_TEMPERATURE
    top_p: float = config.DEFAULT_TOP_P
    max_tokens: int = config.DEFAULT_MAX_TOKENS
    stop: tuple[str, ...] = ()
    repeat_penalty: float = config.LOCAL_REPEAT_PENALTY
    dry_multiplier: float = config.LOCAL_DRY_MULTIPLIER
    dry_penalty_last_n: int = config.LOCAL_DRY_PENALTY_LAST_N
    dry_sequence_breakers: tuple[str, ...] = config.LOCAL_DRY_SEQUENCE_BREAKERS
    seed: int | None = None
    adapter: str | None = None
    grammar: str | None = None


@dataclass
class Delta:
    """One piece of a streamed reply.

    Attributes:
        text: new text (may be empty on the last piece).
        finish_reason: ``"stop"`` or ``"length"`` on the last piece.
        prompt_tokens / completion_tokens: exact counts, on the last piece.
        prompt_progress: ``(processed, total)`` prompt tokens while the
            prompt is read, before any text (runtimes that report it).
    """

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_progress: tuple[int, int] | None = None


@dataclass
class Completion:
    """A whole reply: its text, why it ended, and exact token counts."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class LocalRuntime(ABC):
    """A loaded GGUF model that streams chat replies. Thread-safe: any thread
    may call any method; the runtime serializes or batches as it can.

    Attributes:
        name: the runtime's name (one of :data:`RUNTIMES`).
        path: the GGUF file.
        n_ctx: context window in tokens, per request.
        threads: CPU threads it decodes with, and where that number came from.
        parallel: requests it decodes at once (others wait their turn).
        wait_s: how long a request waits for its turn before failing as
            ``busy``.
        adapters: LoRA adapter files loaded beside the model, which a
            request may apply (:attr:`Sampling.adapter`); empty on a runtime
            that cannot.
    """

    name: str = ""

    def __init__(self, path: Path, n_ctx: int, threads: CpuBudget) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.threads = threads
        self.adapters: tuple[str, ...] = ()
        self.parallel = 1
        self.wait_s = config.LOCAL_LOCK_TIMEOUT_S
        self._in_flight = 0
        self._count_lock = threading.Lock()

    def in_flight(self) -> int:
        """Generations the model is running now (a closed stream stops
        counting once its generation has really stopped)."""
        return self._in_flight

    @contextmanager
    def _generating(self) -> Iterator[None]:
        with self._count_lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._in_flight -= 1

    @abstractmethod
    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The exact prompt text the model's own chat template makes, with the
        assistant turn opened."""

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens parsed, no BOS added)."""

    def count_messages(self, messages: Sequence[dict[str, str]]) -> int:
        """Prompt tokens for ``messages``, as the runtime counts them before
        generating: template rendered, then tokenized."""
        return len(self.tokenize(self.render(messages)))

    @abstractmethod
    def stream(self, messages: Sequence[dict[str, str]], sampling: Sampling,
               schema: dict | None = None) -> Iterator[Delta]:
        """Stream a reply to OpenAI-style ``messages`` (``{"role", "content"}``).

        ``schema``: a JSON Schema the reply must match, enforced by a grammar
        while decoding. The last :class:`Delta` carries the finish reason and
        exact token counts. Closing the iterator early cancels the generation
        and frees the model within one token.

        Raises:
            ProviderError: ``context_overflow`` (prompt too long), ``busy``
                (waited too long for the model), ``bad_request``.
        """

    def complete(self, messages: Sequence[dict[str, str]], sampling: Sampling,
                 schema: dict | None = None) -> Completion:
        """The whole reply at once (same errors as :meth:`stream`)."""
        parts: list[str] = []
        last = Delta()
        for delta in self.stream(messages, sampling, schema):
            parts.append(delta.text)
            last = delta
        return Completion("".join(parts), last.finish_reason, last.prompt_tokens or 0,
                          last.completion_tokens or 0)

    @abstractmethod
    def close(self) -> None:
        """Free the model. The runtime is unusable afterwards."""


def busy_error() -> ProviderError:
    """The error for a request that waited too long for the model."""
    return ProviderError("The local model is busy with other sessions. Retry in a moment.",
                         kind="busy")


@dataclass
class Channel:
    """A producer thread's events, read as an iterator by the consumer.

    The producer calls :meth:`admit` once it holds the model, :meth:`put`
    (returns False once the consumer has gone away, so generation can stop)
    and :meth:`end`; :meth:`fail` forwards an exception to the consumer.
    """

    items: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    admitted: threading.Event = field(default_factory=threading.Event)

    _END = object()

    def admit(self) -> None:
        """Say the producer holds the model: from now on the reader waits for
        the first token however long the prompt takes to read."""
        self.admitted.set()

    def put(self, delta: Delta) -> bool:
        """Queue ``delta`` for the reader; False once the reader has gone."""
        if self.cancelled.is_set():
            return False
        self.items.put(delta)
        return True

    def fail(self, exc: BaseException) -> None:
        """End the stream with ``exc``, raised in the reader."""
        self.items.put(exc)

    def end(self) -> None:
        """End the stream normally."""
        self.items.put(self._END)

    def read(self, admit_timeout_s: float | None = None) -> Iterator[Delta]:
        """Yield the producer's deltas; re-raise its exception. Leaving the
        loop early (``close()``) sets :attr:`cancelled`.

        Args:
            admit_timeout_s: how long to wait, in seconds, for the producer
                to get the model (:meth:`admit`) or send something; None
                waits for ever. Once admitted, the first token has no limit:
                a long prompt on a slow, shared CPU may take a while to read
                (found: with the limit also applied to the first token, a
                1-thread server under CI load timed out as "busy").

        Raises:
            ProviderError: ``busy`` when the producer neither got the model
                nor sent anything within ``admit_timeout_s``.
        """
        first = True
        try:
            while True:
                waiting = first and not self.admitted.is_set()
                try:
                    item = self.items.get(timeout=admit_timeout_s if waiting else None)
                except queue.Empty:
                    if self.admitted.is_set():
                        continue
                    raise busy_error() from None
                first = False
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancelled.set()


_PRODUCERS: dict[threading.Thread, Channel] = {}
EXIT_WAIT_S = 5.0
"""At exit, how long to wait for a generation still in flight, in seconds."""


def run_producer(target: Callable[[Channel], None], name: str) -> Channel:
    """Start ``target(channel)`` on a daemon thread; the returned channel is
    ended (or failed) when it returns. At interpreter exit, generations still
    in flight are cancelled and awaited (:func:`drain_producers`)."""
    channel = Channel()

    def body() -> None:
        try:
            target(channel)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the reader
            channel.fail(exc)
        else:
            channel.end()
        finally:
            _PRODUCERS.pop(threading.current_thread(), None)

    thread = threading.Thread(target=body, name=name, daemon=True)
    _PRODUCERS[thread] = channel
    thread.start()
    return channel


def drain_producers(timeout_s: float = EXIT_WAIT_S) -> None:
    """Cancel every generation in flight and wait for its thread to return.

    Registered with :mod:`atexit`. A reader that stops early (the loop guard,
    a withdrawn reply) leaves llama.cpp finishing its step on the producer
    thread; if the process exits then, the runtime kills that thread inside
    C++ code and glibc aborts ("FATAL: exception not rethrown": seen with
    ``llmapp chat`` after the loop guard stopped a reply).
    """
    deadline = time.monotonic() + timeout_s
    for thread, channel in list(_PRODUCERS.items()):
        channel.cancelled.set()
        thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(drain_producers)


def runtime_available(name: str) -> str | None:
    """None when runtime ``name`` can load here; else what to install."""
    if name not in RUNTIMES:
        return f"unknown runtime {name!r}: use one of {', '.join(RUNTIMES)}"
    if importlib.util.find_spec(RUNTIME_PACKAGES[name]) is None:
        return f"{RUNTIME_PACKAGES[name]} is not installed: {RUNTIME_INSTALL[name]}"
    return None


_CURRENT: dict[str, Any] = {"key": None, "runtime": None}
_LOCK = threading.Lock()


def get_runtime(name: str, path: Path, n_ctx: int, n_threads: int,
                adapters: tuple[str, ...] = ()) -> LocalRuntime:
    """The process's runtime for this model, loading it on first use.

    One runtime lives per process: asking for another model, window, thread
    count, runtime or set of adapters closes the current one first.

    Args:
        name: one of :data:`RUNTIMES`.
        path: the GGUF file.
        n_ctx: context window in tokens.
        n_threads: CPU threads; 0 means the cores this process may use
            (:func:`llmapp.cpus.available_cpus`, which reads the cgroup quota).
        adapters: LoRA adapter files to load beside the model (xllamacpp
            only; llama-cpp-python loads none).

    Raises:
        ProviderError: ``unavailable`` if the runtime's package is missing;
            ``model_load`` if the file does not exist or does not load.
    """
    missing = runtime_available(name)
    if missing:
        raise ProviderError(f"The local runtime cannot run: {missing}.", kind="unavailable")
    if not path.is_file():
        raise ProviderError(f"The local model file does not exist: {path}", kind="model_load")
    threads = default_threads(n_threads)
    adapters = tuple(adapters) if name == "xllamacpp" else ()
    key = (name, str(path), n_ctx, threads.cores, adapters)
    with _LOCK:
        if _CURRENT["key"] == key:
            return _CURRENT["runtime"]
        if _CURRENT["runtime"] is not None:
            log.info("replacing the local runtime %s", _CURRENT["key"])
            _CURRENT["runtime"].close()
            _CURRENT.update(key=None, runtime=None)
        runtime = _load(name, path, n_ctx, threads, adapters)
        _CURRENT.update(key=key, runtime=runtime)
        return runtime


def _load(name: str, path: Path, n_ctx: int, threads: CpuBudget,
          adapters: tuple[str, ...]) -> LocalRuntime:
    if name == "xllamacpp":
        from llmapp.providers.xllama import XllamaRuntime

        return XllamaRuntime.load(path, n_ctx, threads, adapters=adapters)
    from llmapp.providers.llamacpp import LlamaCppRuntime

    return LlamaCppRuntime.load(path, n_ctx, threads)


def capacity(name: str, n_threads: int) -> int:
    """Requests runtime ``name`` decodes at once with the thread setting
    ``n_threads`` (0: the default), without loading it: llama-cpp-python runs
    one at a time; xllamacpp runs servers x slots (:func:`~llmapp.providers.
    xllama.pool_plan`; whether memory allows every server is known only as
    they start)."""
    if name != "xllamacpp":
        return 1
    from llmapp.providers.xllama import pool_plan

    servers, slots = pool_plan(default_threads(n_threads))
    return servers * slots


def loaded_runtime() -> LocalRuntime | None:
    """The runtime loaded in this process, if any (for status pages)."""
    return _CURRENT["runtime"]


@atexit.register
def close_runtime() -> None:
    """Free the loaded runtime (also run at interpreter exit, before the
    bindings are torn down)."""
    with _LOCK:
        if _CURRENT["runtime"] is not None:
            _CURRENT["runtime"].close()
        _CURRENT.update(key=None, runtime=None)
