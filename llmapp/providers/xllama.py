"""The default local runtime: llama.cpp's own server, in-process, via xllamacpp.

``xllamacpp`` (Xorbits, MIT) ships llama.cpp's server as a binary wheel, so
installing it compiles nothing. Its ``Server`` decodes on its own long-lived
thread with ``parallel`` slots, batching concurrent requests: the thread a
request comes from does not matter (with llama-cpp-python, OpenMP threads run
at ~40% speed when each generation comes from a new thread, as each
Streamlit rerun does).

What this module handles, found by measurement:

* The server's HTTP port cannot be turned off. It is bound to 127.0.0.1 with a
  random API key and no web UI; llmapp uses it only for ``/apply-template``
  and ``/tokenize``, which exist only there.
* Each slot has a KV cache of its own, ``n_ctx`` tokens, so a request never
  fails because others are long. (With one cache shared by all slots,
  concurrent long requests failed with "Context size has been exceeded".)
* The server's prompt cache in RAM is off (its default is up to 8 GiB).
* Exceptions raised inside the streaming callback are swallowed by xllamacpp,
  so the callback catches everything and forwards it.
* Returning True from the callback stops the generation and frees its slot.
* Concurrent requests scale across cores with **one server per core, each
  decoding on one thread**, not with slots in one server: on 2 cores, 4
  requests of 256 tokens gave 239-244 tokens/s in all on two 1-thread servers
  of one slot, against 150 on one server with 2 slots (batched decoding of
  this Q4_1 model costs about as much per token as decoding one at a time)
  and 129.5 on one server with 2 threads. An idle second server costs a
  1-thread server nothing (123-134 tokens/s with it, 120-128 without); with
  2 threads each, a second server halved decoding (92 to 39 tokens/s), as
  their OpenMP threads fight for the same cores. So the runtime starts one
  server, and starts another, up to one per decoding core, only when every
  slot is taken and the memory left allows (:func:`pool_plan`).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmapp import config
from llmapp.cpus import CpuBudget, available_cpus, available_memory_mb
from llmapp.errors import ProviderError
from llmapp.providers.runtime import (
    Channel,
    Delta,
    LocalRuntime,
    Sampling,
    busy_error,
    run_producer,
)

log = logging.getLogger(__name__)

PROGRESS_BATCH = 256
"""Prompt tokens the server reads per batch (llama.cpp's ``n_batch`` and
``n_ubatch``; defaults 2048 and 512). It reports the prompt's progress after
each batch (``return_progress``), so at 2048 a prompt that fills the window
went from 0% to 100% at once. Measured on a 1,440-token prompt, 2 cores: the
same prompt speed at 256 as at 2048 (46 and 42 tokens/s on a loaded box),
with six progress reports instead of one."""


def pool_plan(threads: CpuBudget, cores: int | None = None) -> tuple[int, int]:
    """How many servers the runtime may start, and the slots of each.

    Args:
        threads: each server's decoding threads (and prompt threads).
        cores: cores this process may use; default :func:`~llmapp.cpus.available_cpus`.

    Returns:
        ``(servers, slots)``: one server per ``threads.cores`` cores, at least
        one; each with one slot when there can be several servers (one request
        per core decodes fastest, see the module docstring), else
        :data:`~llmapp.config.LOCAL_PARALLEL` slots, so that on one core two
        requests still take turns token by token.
    """
    cores = available_cpus().cores if cores is None else cores
    servers = max(1, cores // max(1, threads.cores))
    return servers, (1 if servers > 1 else config.LOCAL_PARALLEL)


@dataclass
class _Server:
    """One started llama.cpp server and the requests it runs now."""

    server: Any
    key: str
    url: str
    in_flight: int = 0

    def request(self, endpoint: str, body: dict | None = None) -> urllib.request.Request:
        """A request to one of the server's HTTP endpoints, with its key."""
        headers = {"Authorization": f"Bearer {self.key}"}
        if body is None:
            return urllib.request.Request(self.url + endpoint, headers=headers)
        return urllib.request.Request(self.url + endpoint, data=json.dumps(body).encode(),
                                      headers={**headers, "Content-Type": "application/json"})


class XllamaRuntime(LocalRuntime):
    """A GGUF model served by in-process llama.cpp servers (xllamacpp).

    Use :meth:`load`; see :class:`~llmapp.providers.runtime.LocalRuntime`.
    :attr:`parallel` is the most requests decoded at once: servers x slots.
    """

    name = "xllamacpp"

    def __init__(self, path: Path, n_ctx: int, threads: CpuBudget, servers: int, slots: int,
                 adapters: tuple[str, ...] = ()) -> None:
        super().__init__(path, n_ctx, threads)
        self.adapters = tuple(adapters)
        self.max_servers = servers
        self.slots = slots
        self.parallel = servers * slots
        self._servers: list[_Server] = []
        self._free = threading.Condition()

    @classmethod
    def load(cls, path: Path, n_ctx: int, threads: CpuBudget, parallel: int | None = None,
             adapters: tuple[str, ...] = (), servers: int | None = None) -> XllamaRuntime:
        """Start the first server on ``path``; more start on demand.

        Args:
            n_ctx: each request's context window, in tokens (each slot has a
                KV cache this size).
            threads: decoding threads, and prompt-processing threads, of each
                server.
            parallel: slots per server; default from :func:`pool_plan`.
            adapters: GGUF LoRA adapter files, loaded at scale 0: each
                request says which one applies (llama.cpp's per-request
                ``lora`` field); a request that names none gets the base.
            servers: the most servers to start; default from :func:`pool_plan`.

        Raises:
            ProviderError: ``model_load`` if llama.cpp cannot load the file.
        """
        plan = pool_plan(threads)
        runtime = cls(path, n_ctx, threads, servers or plan[0], parallel or plan[1], adapters)
        runtime._servers.append(runtime._start())
        return runtime

    def _start(self) -> _Server:
        """Start one more server (about 0.3 s for the bundled model)."""
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = self.n_ctx * self.slots  # llama.cpp splits it evenly between slots
        params.n_parallel = self.slots
        params.kv_unified = False
        params.cache_type_k = xllamacpp.ggml_type.GGML_TYPE_Q8_0  # see config.LOCAL_PARALLEL
        params.cache_ram_mib = 0
        params.lora_adapters = [_adapter(a) for a in self.adapters]
        params.lora_init_without_apply = True
        params.n_batch = params.n_ubatch = PROGRESS_BATCH
        params.cpuparams.n_threads = self.threads.cores
        params.cpuparams_batch.n_threads = self.threads.batch_cores
        params.n_threads_http = 2
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # any free port
        key = secrets.token_urlsafe(24)
        params.api_keys = [key]
        params.ui = False
        params.endpoint_metrics = False
        params.verbosity = -1
        started = time.perf_counter()
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:  # llama.cpp reports a bad file as RuntimeError
            log.exception("loading %s failed", self.path)
            raise ProviderError(f"Could not load the local model from {self.path.name}: {exc}",
                                kind="model_load") from exc
        log.info("xllamacpp server %d of at most %d loaded %s (n_ctx=%d, %d slots, %d threads, "
                 "%d adapters) in %.2f s", len(self._servers) + 1, self.max_servers,
                 self.path.name, self.n_ctx, self.slots, self.threads.cores, len(self.adapters),
                 time.perf_counter() - started)
        started_server = _Server(server, key, server.listening_address.rstrip("/"))
        _wait_ready(started_server)
        return started_server

    def servers(self) -> int:
        """Servers started so far."""
        return len(self._servers)

    def _acquire(self, channel: Channel) -> _Server:
        """A server with a free slot: an idle one, else a new one when cores
        and memory allow, else the first to free up within :attr:`wait_s`.

        Raises:
            ProviderError: ``busy`` when none frees up in time, or the reader
                went away while waiting.
        """
        deadline = time.monotonic() + self.wait_s
        with self._free:
            while True:
                if not self._servers:
                    raise ProviderError("The local model was closed.", kind="model_load")
                server = min(self._servers, key=lambda s: s.in_flight)
                if server.in_flight < self.slots:
                    break
                if self._may_grow():
                    try:
                        server = self._start()
                    except ProviderError:  # keep serving from the servers running
                        self.max_servers = len(self._servers)
                        continue
                    self._servers.append(server)
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or channel.cancelled.is_set():
                    raise busy_error()
                self._free.wait(min(remaining, 0.5))
            server.in_flight += 1
            return server

    def _may_grow(self) -> bool:
        if len(self._servers) >= self.max_servers:
            return False
        free = available_memory_mb()
        if free < config.LOCAL_SERVER_MIN_FREE_MB:
            log.info("not starting another local model server: %.0f MB free, %d MB wanted",
                     free, config.LOCAL_SERVER_MIN_FREE_MB)
            return False
        return True

    def _release(self, server: _Server) -> None:
        with self._free:
            server.in_flight -= 1
            self._free.notify()

    def _post(self, endpoint: str, body: dict) -> dict:
        try:
            with urllib.request.urlopen(self._servers[0].request(endpoint, body),
                                        timeout=30) as response:
                return json.load(response)
        except (OSError, ValueError) as exc:
            raise ProviderError(f"The local model's {endpoint} call failed: {exc}",
                                kind="bad_request") from exc

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self._post("/apply-template", {"messages": list(messages)})["prompt"]

    def tokenize(self, text: str) -> list[int]:
        return self._post("/tokenize", {"content": text, "add_special": False,
                                        "parse_special": True})["tokens"]

    def _body(self, messages: Sequence[dict[str, str]], sampling: Sampling,
              schema: dict | None) -> dict:
        body: dict[str, Any] = {
            "messages": list(messages), "stream": True,
            "stream_options": {"include_usage": True}, "return_progress": True,
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens, "repeat_penalty": sampling.repeat_penalty,
            "dry_multiplier": sampling.dry_multiplier,
            "dry_penalty_last_n": sampling.dry_penalty_last_n,
            "dry_sequence_breakers": list(sampling.dry_sequence_breakers),
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if schema is not None:
            body["response_format"] = {"type": "json_object", "schema": schema}
        elif sampling.grammar:
            body["grammar"] = sampling.grammar
        if sampling.adapter is not None and sampling.adapter not in self.adapters:
            raise ProviderError(f"The tuned model's adapter {Path(sampling.adapter).parent.name!r} "
                                "is not loaded; reload the page to load new tuned models.",
                                kind="model_load")
        if self.adapters:  # always explicit: a request without it gets the load-time scales
            body["lora"] = [{"id": i, "scale": 1.0 if a == sampling.adapter else 0.0}
                            for i, a in enumerate(self.adapters)]
        return body

    def stream(self, messages: Sequence[dict[str, str]], sampling: Sampling,
               schema: dict | None = None) -> Iterator[Delta]:
        body = self._body(messages, sampling, schema)

        def produce(channel: Channel) -> None:
            state: dict[str, Any] = {"finish": None, "error": None}

            def on_event(event: Any) -> bool:
                try:  # xllamacpp swallows exceptions raised in here
                    return not _forward(event, channel, state)
                except BaseException as exc:  # noqa: BLE001
                    state["error"] = exc
                    return True

            server = self._acquire(channel)
            channel.admit()
            try:
                with self._generating():
                    result = server.server.handle_chat_completions(body, on_event)
            except ValueError as exc:  # a schema llama.cpp cannot turn into a grammar
                raise ProviderError(f"The local model refused the request: {exc}",
                                    kind="bad_request") from exc
            finally:
                self._release(server)
            if state["error"] is not None:
                raise state["error"]
            if isinstance(result, dict) and "error" in result:
                raise _error(result["error"])

        return run_producer(produce, "llmapp-xllamacpp-request").read(self.wait_s)

    def close(self) -> None:
        with self._free:
            self._servers = []  # each Server's destructor stops its loop and frees the model


def _wait_ready(server: _Server, timeout_s: float = 10.0) -> None:
    """Return once the server's HTTP thread answers ``/health``.

    Found: a Server destroyed before its HTTP thread was up (a command that
    loads the model, then fails on its input and exits) hung in its
    destructor: ``llmapp tune validate absent.jsonl`` never exited in 4 of 25
    runs; waiting for ``/health`` first, in 0 of 50. With the CPU busy, it
    still hung in 2 of 7 runs of eight loads and closes (CI, stop 37): the
    HTTP thread answered, the task loop had not started. ``/slots`` is
    answered by the task loop, so it waits for that too.
    """
    deadline = time.monotonic() + timeout_s
    for endpoint in ("/health", "/slots"):
        request = server.request(endpoint)
        while True:
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    response.read()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ProviderError("The local model's server did not start.",
                                        kind="model_load") from None
                time.sleep(0.02)


def _adapter(path: str) -> Any:
    import xllamacpp

    info = xllamacpp.CommonAdapterLoraInfo()
    info.path = path
    info.scale = 0.0
    return info


def _forward(event: dict, channel: Channel, state: dict) -> bool:
    """Turn one server event into a :class:`Delta`; False once the reader has gone."""
    if "error" in event:
        raise _error(event["error"])
    progress = event.get("prompt_progress")
    if progress and progress.get("total"):
        return channel.put(Delta(prompt_progress=(int(progress.get("processed", 0)),
                                                  int(progress["total"]))))
    choices = event.get("choices") or []
    if choices:
        choice = choices[0]
        state["finish"] = choice.get("finish_reason") or state["finish"]
        text = (choice.get("delta") or {}).get("content")
        if text:
            return channel.put(Delta(text=text))
    usage = event.get("usage")
    if usage:
        return channel.put(Delta(finish_reason=state["finish"],
                                 prompt_tokens=usage.get("prompt_tokens"),
                                 completion_tokens=usage.get("completion_tokens")))
    return not channel.cancelled.is_set()


def _error(error: dict) -> ProviderError:
    message = error.get("message", "unknown error")
    kind = "context_overflow" if error.get("type") == "exceed_context_size_error" else "bad_request"
    if kind == "context_overflow":
        return ProviderError(f"The prompt ({error.get('n_prompt_tokens', '?')} tokens) does not "
                             f"fit the local model's {error.get('n_ctx', '?')}-token context "
                             "window.", kind=kind)
    return ProviderError(f"The local model refused the request: {message}", kind=kind)
