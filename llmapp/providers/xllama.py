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
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llmapp import config
from llmapp.cpus import CpuBudget
from llmapp.errors import ProviderError
from llmapp.providers.runtime import Channel, Delta, LocalRuntime, Sampling, run_producer

log = logging.getLogger(__name__)


class XllamaRuntime(LocalRuntime):
    """A GGUF model served by an in-process llama.cpp server (xllamacpp).

    Use :meth:`load`; see :class:`~llmapp.providers.runtime.LocalRuntime`.
    """

    name = "xllamacpp"

    def __init__(self, server: Any, key: str, path: Path, n_ctx: int, threads: CpuBudget,
                 parallel: int) -> None:
        super().__init__(path, n_ctx, threads)
        self._server = server
        self._key = key
        self._url = server.listening_address.rstrip("/")
        self.parallel = parallel

    @classmethod
    def load(cls, path: Path, n_ctx: int, threads: CpuBudget,
             parallel: int = config.LOCAL_PARALLEL,
             adapters: tuple[str, ...] = ()) -> XllamaRuntime:
        """Start the server on ``path``.

        Args:
            n_ctx: each request's context window, in tokens (each slot has a
                KV cache this size).
            threads: decoding threads, and prompt-processing threads.
            parallel: slots: requests decoded at once.
            adapters: GGUF LoRA adapter files, loaded at scale 0: each
                request says which one applies (llama.cpp's per-request
                ``lora`` field); a request that names none gets the base.

        Raises:
            ProviderError: ``model_load`` if llama.cpp cannot load the file.
        """
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx * parallel  # llama.cpp splits it evenly between slots
        params.n_parallel = parallel
        params.kv_unified = False
        params.cache_type_k = xllamacpp.ggml_type.GGML_TYPE_Q8_0  # see config.LOCAL_PARALLEL
        params.cache_ram_mib = 0
        params.lora_adapters = [_adapter(a) for a in adapters]
        params.lora_init_without_apply = True
        params.cpuparams.n_threads = threads.cores
        params.cpuparams_batch.n_threads = threads.batch_cores
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
            log.exception("loading %s failed", path)
            raise ProviderError(f"Could not load the local model from {path.name}: {exc}",
                                kind="model_load") from exc
        log.info("xllamacpp loaded %s (n_ctx=%d, %d slots, %d threads, %d adapters) in %.2f s",
                 path.name, n_ctx, parallel, threads.cores, len(adapters),
                 time.perf_counter() - started)
        runtime = cls(server, key, path, n_ctx, threads, parallel)
        runtime.adapters = tuple(adapters)
        return runtime

    def _post(self, endpoint: str, body: dict) -> dict:
        request = urllib.request.Request(
            self._url + endpoint, data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._key}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
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
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens, "repeat_penalty": sampling.repeat_penalty,
            "dry_multiplier": sampling.dry_multiplier,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if schema is not None:
            body["response_format"] = {"type": "json_object", "schema": schema}
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

            try:
                with self._generating():
                    result = self._server.handle_chat_completions(body, on_event)
            except ValueError as exc:  # a schema llama.cpp cannot turn into a grammar
                raise ProviderError(f"The local model refused the request: {exc}",
                                    kind="bad_request") from exc
            if state["error"] is not None:
                raise state["error"]
            if isinstance(result, dict) and "error" in result:
                raise _error(result["error"])

        return run_producer(produce, "llmapp-xllamacpp-request").read(self.wait_s)

    def close(self) -> None:
        self._server = None  # the Server's destructor stops its loop and frees the model


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
