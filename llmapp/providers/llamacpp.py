"""The opt-in local runtime: ``llama_cpp.Llama`` (llama-cpp-python) on one thread.

``pip install 'llmapp[llama-cpp]'``, then ``LLMAPP_LOCAL_RUNTIME=llama-cpp``.
PyPI has no wheel for llama-cpp-python, so installing it compiles llama.cpp.

A ``Llama`` is not thread-safe, and llama.cpp's OpenMP worker threads
(libgomp) decode at ~40% speed when successive generations come from
different threads (measured: 87-94 tokens/s from one thread, 31-33 from a
fresh thread each time). Streamlit runs every rerun on a new thread. So every
call of this runtime goes to **one long-lived worker thread**, which runs them
one at a time, in arrival order; the callers read their tokens from a queue.
Rendering the template and counting tokens read only the vocabulary: they run
on the caller's thread under a small lock of their own, so a token count
never waits for someone else's whole reply.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llmapp.cpus import CpuBudget
from llmapp.errors import ProviderError
from llmapp.providers.runtime import Channel, Delta, LocalRuntime, Sampling, busy_error

log = logging.getLogger(__name__)


class LlamaCppRuntime(LocalRuntime):
    """A GGUF model in ``llama_cpp.Llama``, used only from its worker thread.

    Use :meth:`load`; see :class:`~llmapp.providers.runtime.LocalRuntime`.
    """

    name = "llama-cpp"

    def __init__(self, path: Path, n_ctx: int, threads: CpuBudget) -> None:
        super().__init__(path, n_ctx, threads)
        self._jobs: queue.Queue = queue.Queue()
        self._llama: Any = None
        self._formatter: Any = None
        self._vocab_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="llmapp-llama-cpp", daemon=True)
        self._worker.start()

    @classmethod
    def load(cls, path: Path, n_ctx: int, threads: CpuBudget) -> LlamaCppRuntime:
        """Load ``path`` on a new worker thread.

        Raises:
            ProviderError: ``model_load`` if llama.cpp cannot load the file.
        """
        runtime = cls(path, n_ctx, threads)
        try:
            runtime._call(runtime._open)
        except ProviderError:
            runtime.close()
            raise
        return runtime

    # --- the worker thread ------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the worker thread and return its result (re-raising)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                box["error"] = exc
            done.set()

        self._jobs.put(job)
        if not done.wait(self.wait_s):
            raise busy_error()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _open(self) -> None:
        from llama_cpp import Llama

        started = time.perf_counter()
        try:
            self._llama = Llama(model_path=str(self.path), n_ctx=self.n_ctx,
                                n_threads=self.threads.cores,
                                n_threads_batch=self.threads.batch_cores, verbose=False)
        except Exception as exc:  # llama.cpp reports a bad file as ValueError
            log.exception("loading %s failed", self.path)
            raise ProviderError(f"Could not load the local model from {self.path.name}: {exc}",
                                kind="model_load") from exc
        log.info("llama-cpp loaded %s (n_ctx=%d, %d threads) in %.2f s", self.path.name,
                 self.n_ctx, self.threads.cores, time.perf_counter() - started)

    # --- the interface ----------------------------------------------------

    def _render(self, messages: Sequence[dict[str, str]]) -> tuple[str, bool]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        with self._vocab_lock:
            if self._formatter is None:
                template = self._llama.metadata.get("tokenizer.chat_template")
                if not template:
                    raise ProviderError("The local model has no chat template.",
                                        kind="model_load")
                vocab = self._llama._model
                self._formatter = Jinja2ChatFormatter(
                    template=template, eos_token=vocab.token_get_text(vocab.token_eos()),
                    bos_token=vocab.token_get_text(vocab.token_bos()))
            result = self._formatter(messages=list(messages))
        return result.prompt, result.added_special

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self._render(messages)[0]

    def _tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        with self._vocab_lock:
            return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def tokenize(self, text: str) -> list[int]:
        return self._tokenize(text)

    def count_messages(self, messages: Sequence[dict[str, str]]) -> int:
        prompt, added_special = self._render(messages)
        return len(self._tokenize(prompt, add_bos=not added_special))

    def stream(self, messages: Sequence[dict[str, str]], sampling: Sampling,
               schema: dict | None = None) -> Iterator[Delta]:
        if sampling.adapter is not None:
            raise ProviderError("Tuned models (LoRA adapters) run on the xllamacpp runtime: set "
                                "LLMAPP_LOCAL_RUNTIME=xllamacpp.", kind="unavailable")
        channel = Channel()
        dicts = list(messages)

        def job() -> None:
            if channel.cancelled.is_set():  # the reader gave up while queued
                return
            channel.admit()
            try:
                with self._generating():
                    self._generate(dicts, sampling, schema, channel)
            except BaseException as exc:  # noqa: BLE001 - forwarded to the reader
                channel.fail(exc)
            else:
                channel.end()

        self._jobs.put(job)
        return channel.read(self.wait_s)

    def _generate(self, messages: list[dict[str, str]], sampling: Sampling,
                  schema: dict | None, channel: Channel) -> None:
        prompt_tokens = self.count_messages(messages)
        if prompt_tokens >= self.n_ctx:
            raise ProviderError(
                f"The prompt ({prompt_tokens} tokens) does not fit the local model's "
                f"{self.n_ctx}-token context window.", kind="context_overflow")
        args: dict[str, Any] = {
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens, "stop": list(sampling.stop) or None,
            "repeat_penalty": sampling.repeat_penalty}
        if sampling.seed is not None:
            args["seed"] = sampling.seed
        if schema is not None:
            args["response_format"] = {"type": "json_object", "schema": schema}
        elif sampling.grammar:
            from llama_cpp import LlamaGrammar

            args["grammar"] = LlamaGrammar.from_string(sampling.grammar, verbose=False)
        parts: list[str] = []
        finish = None
        events = self._llama.create_chat_completion(messages=messages, stream=True, **args)
        try:
            for event in events:
                choice = event["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice.get("delta", {}).get("content")
                if text:
                    parts.append(text)
                    if not channel.put(Delta(text=text)):
                        return  # the reader has gone: stop decoding
        except ValueError as exc:
            raise ProviderError(f"The local model refused the request: {exc}",
                                kind="context_overflow" if "context" in str(exc)
                                else "bad_request") from exc
        finally:
            events.close()
        completion = len(self._tokenize("".join(parts))) if parts else 0
        channel.put(Delta(finish_reason=finish, prompt_tokens=prompt_tokens,
                          completion_tokens=completion))

    def close(self) -> None:
        def free() -> None:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
        if self._worker.is_alive():
            self._jobs.put(free)
            self._jobs.put(None)
            self._worker.join(timeout=30)
