"""The one settings resolver.

Every setting has one name, used alike in the sidebar, ``st.secrets``
(``.streamlit/secrets.toml``), the environment and ``.env``. Layers are read in
this order, the first that holds a non-empty value wins:

1. sidebar (values typed in this session),
2. ``st.secrets``,
3. the process environment, then the ``.env`` file (python-dotenv),
4. defaults from :mod:`llmapp.config`.

This module does not import streamlit: :mod:`llmapp.ui` reads the sidebar and
``st.secrets`` and passes them in as plain mappings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotenv import dotenv_values
from pydantic import SecretStr

from llmapp import config
from llmapp.errors import ConfigError
from llmapp.secrets import remember

if TYPE_CHECKING:
    from llmapp.safety.topic import TopicScope

SOURCES = ("sidebar", "secrets", "environment", ".env", "default")


def _text(raw: Any) -> str:
    return str(raw).strip()


def _provider(raw: Any) -> str:
    value = _text(raw).lower()
    if value in ("", "auto"):
        return ""
    if value not in config.PROVIDERS:
        raise ValueError(f"must be one of auto, {', '.join(config.PROVIDERS)}")
    return value


def _choice(raw: Any, options: tuple[str, ...]) -> str:
    value = _text(raw).lower()
    if value not in options:
        raise ValueError(f"must be one of {', '.join(options)}")
    return value


def _url(raw: Any) -> str:
    value = _text(raw).rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def _number(raw: Any, kind: type, low: float, inclusive: bool, wording: str) -> Any:
    try:
        value = kind(str(raw).strip())
    except ValueError:
        raise ValueError(f"must be {wording}") from None
    if value < low or (value == low and not inclusive):
        raise ValueError(f"must be {wording}")
    return value


def _positive_int(raw: Any) -> int:
    return _number(raw, int, 0, False, "a whole number above 0")


def _non_negative_int(raw: Any) -> int:
    return _number(raw, int, 0, True, "a whole number, 0 or more")


def _positive_float(raw: Any) -> float:
    return _number(raw, float, 0, False, "a number above 0")


def _secret(raw: Any) -> SecretStr:
    return raw if isinstance(raw, SecretStr) else SecretStr(_text(raw))


def _api_keys(raw: Any) -> SecretStr:
    """``LLMAPP_API_KEYS``: a JSON object of named keys, kept secret."""
    from llmapp.api.keys import parse_key_table

    value = _secret(raw)
    parse_key_table(value.get_secret_value())  # raises ValueError naming no key
    return value


def _database(raw: Any) -> SecretStr:
    """A database URL, kept secret (it may hold a password)."""
    from llmapp.storage.urls import database_url

    value = _secret(raw)
    database_url(value.get_secret_value())  # raises ValueError naming the scheme only
    return value


def _topic(raw: Any) -> Any:
    """``LLMAPP_TOPIC``: what this assistant is for, a description then a
    few example requests, split by newlines or ``|``, or JSON
    ``{"description": "...", "examples": ["...", ...]}``; ``off`` or
    ``none`` for no topic. Parsed to a
    :class:`~llmapp.safety.topic.TopicScope` (or None)."""
    from llmapp.safety.topic import parse_topic

    return parse_topic(raw)


@dataclass(frozen=True)
class Spec:
    """One setting: the field it fills, how to parse it, its default."""

    field: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    secret: bool = False


SPECS: dict[str, Spec] = {
    "LLMAPP_PROVIDER": Spec("provider", _provider, "",
                            "auto (default), local, openai or openai-compatible"),
    "OPENAI_API_KEY": Spec("openai_api_key", _secret, None, "OpenAI API key", secret=True),
    "OPENAI_MODEL": Spec("openai_model", _text, config.OPENAI_DEFAULT_MODEL, "OpenAI chat model"),
    "OPENAI_COMPATIBLE_BASE_URL": Spec(
        "compatible_base_url", _url, "",
        "base URL of an OpenAI-compatible server, e.g. http://localhost:11434/v1"),
    "OPENAI_COMPATIBLE_MODEL": Spec("compatible_model", _text, config.COMPATIBLE_DEFAULT_MODEL,
                                    "model name on the OpenAI-compatible server"),
    "OPENAI_COMPATIBLE_API_KEY": Spec("compatible_api_key", _secret, None,
                                      "key for the OpenAI-compatible server, if it needs one",
                                      secret=True),
    "OPENAI_COMPATIBLE_CONTEXT_WINDOW": Spec(
        "compatible_context_window", _positive_int, config.COMPATIBLE_DEFAULT_CONTEXT_WINDOW,
        "context window of the OpenAI-compatible model, in tokens"),
    "LLMAPP_LOCAL_MODEL_PATH": Spec("local_model_path", _text, "",
                                    "GGUF file for the local provider (default: bundled SmolLM2)"),
    "LLMAPP_LOCAL_RUNTIME": Spec("local_runtime",
                                 lambda raw: _choice(raw, config.LOCAL_RUNTIMES),
                                 config.LOCAL_RUNTIMES[0],
                                 "what runs the local model: xllamacpp (default) or llama-cpp"),
    "LLMAPP_LOCAL_N_CTX": Spec("local_n_ctx", _positive_int, config.LOCAL_N_CTX,
                               "local model context window, in tokens"),
    "LLMAPP_LOCAL_N_THREADS": Spec("local_n_threads", _non_negative_int, 0,
                                   "CPU threads for the local model (0: the cores it may use)"),
    "LLMAPP_LOCAL_ADAPTER": Spec("local_adapter", _text, "",
                                 "a tuned model (LoRA adapter) to run the bundled model with, "
                                 "by name (stage 7; empty: the base model)"),
    "LLMAPP_MODELS_PATH": Spec("models_path", _text, config.MODELS_PATH,
                               "folder of the tuned models"),
    "LLMAPP_TOOL_CHOICE": Spec("tool_choice", lambda raw: _choice(raw, config.TOOL_CHOICES),
                               config.TOOL_CHOICES[0],
                               "who picks tools: auto (the router for the bundled model, the "
                               "model otherwise), router or model"),
    "LLMAPP_RAG_ANSWER": Spec("rag_answer", lambda raw: _choice(raw, config.RAG_ANSWER_MODES),
                              config.RAG_ANSWER_MODES[0],
                              "grounded answers: auto (quoted from the documents for the bundled "
                              "model, written by any other), extractive or generative"),
    "LLMAPP_DATABASE_URL": Spec("database_url", _database, SecretStr(config.DATABASE_URL),
                                "where conversations persist: sqlite:///path or "
                                "postgresql://user:password@host:5432/dbname", secret=True),
    "LLMAPP_CACHE": Spec("cache_mode", lambda raw: _choice(raw, config.CACHE_MODES),
                         config.CACHE_MODES[0],
                         "response cache: semantic (default), exact or off"),
    "LLMAPP_CACHE_SCOPE": Spec("cache_scope", lambda raw: _choice(raw, config.CACHE_SCOPES),
                               config.CACHE_SCOPES[0],
                               "who is served a cached reply: session (default) or shared"),
    "LLMAPP_CACHE_TTL": Spec("cache_ttl_s", _positive_float, config.CACHE_TTL_S,
                             "seconds a cached reply is served"),
    "LLMAPP_CACHE_THRESHOLD": Spec("cache_threshold", _positive_float, config.CACHE_THRESHOLD,
                                   "least cosine similarity for a semantic cache hit"),
    "LLMAPP_SAFETY_LEVEL": Spec("safety_level", lambda raw: _choice(raw, config.SAFETY_LEVELS),
                                config.SAFETY_LEVELS[0],
                                "safety filter strength: adult (default), teen, child or off"),
    "LLMAPP_GUARD_MODEL": Spec("guard_model", _text, "",
                               "a guard model on the OpenAI-compatible server, e.g. "
                               "llama-guard3, checking beside the offline checker"),
    "LLMAPP_PHRASE_ACTION": Spec("phrase_action", lambda raw: _choice(raw, ("flag", "block")),
                                 "flag", "what a protected phrase in a reply does: flag or "
                                 "block"),
    "LLMAPP_TOPIC": Spec("topic", _topic, None,
                         "what this assistant is for: a description, then example requests "
                         "(newline or | between them), or JSON {\"description\", "
                         "\"examples\"}; requests off the topic are held"),
    "LLMAPP_EMBEDDER": Spec("embedder", lambda raw: _choice(raw, ("local", "openai")), "local",
                            "local (all-MiniLM-L6-v2, offline) or openai"),
    "LLMAPP_CHROMA_PATH": Spec("chroma_path", _text, config.CHROMA_PATH,
                               "folder of the on-disk Chroma store"),
    "CHROMA_HOST": Spec("chroma_host", _text, "", "a Chroma server's host; set to use it"),
    "CHROMA_PORT": Spec("chroma_port", _positive_int, 8000, "the Chroma server's port"),
    "CHROMA_SSL": Spec("chroma_ssl", lambda raw: _choice(raw, ("true", "false")) == "true",
                       False, "true to reach the Chroma server over HTTPS"),
    "CHROMA_HEADERS": Spec("chroma_headers", _secret, None,
                           "JSON object of HTTP headers for the Chroma server, e.g. auth",
                           secret=True),
    "LLMAPP_REQUEST_TIMEOUT": Spec("request_timeout_s", _positive_float, config.REQUEST_TIMEOUT_S,
                                   "seconds to wait for a remote model before retrying"),
    "LLMAPP_API_KEY": Spec("api_key", _secret, None,
                           "bearer token clients of llmapp serve must send (required when "
                           "it listens beyond loopback)", secret=True),
    "LLMAPP_API_CONCURRENCY": Spec("api_concurrency", _non_negative_int, 0,
                                   "replies llmapp serve generates at once (0: the local "
                                   f"model's slots, or {config.API_REMOTE_CONCURRENCY} for a "
                                   "remote model)"),
    "LLMAPP_API_MAX_QUEUE": Spec("api_max_queue", _non_negative_int, config.API_MAX_QUEUE,
                                 "requests llmapp serve keeps waiting; more get 429"),
    "LLMAPP_API_KEYS": Spec("api_keys", _api_keys, None,
                            'named keys for llmapp serve, a JSON object {"name": "key", ...}: '
                            "each name is a principal with cached replies of its own",
                            secret=True),
    "LLMAPP_API_MAX_BODY_BYTES": Spec("api_max_body_bytes", _positive_int,
                                      config.API_MAX_BODY_BYTES,
                                      "largest request body llmapp serve reads, in bytes; "
                                      "larger get 413"),
    "LLMAPP_API_MAX_MESSAGES": Spec("api_max_messages", _positive_int, config.API_MAX_MESSAGES,
                                    "most messages in one request to llmapp serve; more get "
                                    "400"),
    "LLMAPP_MAX_RETRIES": Spec("max_retries", _non_negative_int, config.MAX_RETRIES,
                               "retries with backoff on rate limits, timeouts and 5xx"),
}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Secrets are :class:`pydantic.SecretStr`, so a repr,
    a log line or an export never shows them.

    ``sources`` maps each setting name (e.g. ``"OPENAI_API_KEY"``) to the layer
    it came from: one of :data:`SOURCES`.
    """

    provider: str = ""
    openai_api_key: SecretStr | None = None
    openai_model: str = config.OPENAI_DEFAULT_MODEL
    compatible_base_url: str = ""
    compatible_model: str = config.COMPATIBLE_DEFAULT_MODEL
    compatible_api_key: SecretStr | None = None
    compatible_context_window: int = config.COMPATIBLE_DEFAULT_CONTEXT_WINDOW
    local_model_path: str = ""
    local_runtime: str = config.LOCAL_RUNTIMES[0]
    local_n_ctx: int = config.LOCAL_N_CTX
    local_n_threads: int = 0
    local_adapter: str = ""
    models_path: str = config.MODELS_PATH
    tool_choice: str = config.TOOL_CHOICES[0]
    rag_answer: str = config.RAG_ANSWER_MODES[0]
    database_url: SecretStr = field(default_factory=lambda: SecretStr(config.DATABASE_URL))
    cache_mode: str = config.CACHE_MODES[0]
    cache_scope: str = config.CACHE_SCOPES[0]
    cache_ttl_s: float = config.CACHE_TTL_S
    cache_threshold: float = config.CACHE_THRESHOLD
    safety_level: str = config.SAFETY_LEVELS[0]
    guard_model: str = ""
    phrase_action: str = "flag"
    topic: TopicScope | None = None
    embedder: str = "local"
    chroma_path: str = config.CHROMA_PATH
    chroma_host: str = ""
    chroma_port: int = 8000
    chroma_ssl: bool = False
    chroma_headers: SecretStr | None = None
    request_timeout_s: float = config.REQUEST_TIMEOUT_S
    max_retries: int = config.MAX_RETRIES
    api_key: SecretStr | None = None
    api_concurrency: int = 0
    api_max_queue: int = config.API_MAX_QUEUE
    api_keys: SecretStr | None = None
    api_max_body_bytes: int = config.API_MAX_BODY_BYTES
    api_max_messages: int = config.API_MAX_MESSAGES
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> str:
        """The layer a setting came from, e.g. ``source("OPENAI_API_KEY")``."""
        return self.sources.get(name, "default")

    def provider_choice(self) -> tuple[str, str]:
        """The provider to use and why, as ``(name, reason)``.

        An explicit ``LLMAPP_PROVIDER`` wins. Otherwise: ``openai`` when an
        OpenAI key is set, ``openai-compatible`` when a base URL is set, and
        the bundled ``local`` model when neither is.
        """
        if self.provider:
            return self.provider, f"LLMAPP_PROVIDER is set to {self.provider} ({self.source('LLMAPP_PROVIDER')})"
        if self.openai_api_key is not None:
            return "openai", f"an OpenAI API key was found ({self.source('OPENAI_API_KEY')})"
        if self.compatible_base_url:
            return ("openai-compatible",
                    f"OPENAI_COMPATIBLE_BASE_URL is set ({self.source('OPENAI_COMPATIBLE_BASE_URL')})")
        return "local", "no OpenAI key or OpenAI-compatible server is configured"


def _is_set(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value().strip())
    return bool(str(value).strip())


def read_env_file(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Values of a ``.env`` file, without touching ``os.environ``.

    Args:
        path: the file; default ``$LLMAPP_ENV_FILE`` or ``./.env``. A missing
            file gives ``{}``.
    """
    path = Path(path or os.environ.get("LLMAPP_ENV_FILE") or config.ENV_FILE)
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def resolve(
    sidebar: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Mapping[str, str] | None = None,
    overrides_label: str = "sidebar",
) -> Settings:
    """Resolve every setting through the layers, first non-empty value wins.

    Args:
        sidebar: values typed in the UI this session (or given on the command
            line), by setting name.
        secrets: ``st.secrets`` as a plain mapping; ``None`` or ``{}`` when no
            secrets file exists, which is normal.
        environ: default ``os.environ``.
        env_file: values of the ``.env`` file; default :func:`read_env_file`.
        overrides_label: how ``sources`` names the first layer, e.g.
            ``"command line"`` for the CLI.

    Raises:
        ConfigError: a value could not be parsed; the message names the
            setting and the layer it came from, never a secret's value.
    """
    layers = (
        (overrides_label, sidebar or {}),
        ("secrets", secrets or {}),
        ("environment", os.environ if environ is None else environ),
        (".env", read_env_file() if env_file is None else env_file),
    )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, spec in SPECS.items():
        for layer, mapping in layers:
            raw = mapping.get(name)
            if not _is_set(raw):
                continue
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as exc:
                shown = "the value" if spec.secret else repr(raw)
                raise ConfigError(f"{name} (from {layer}): {shown} {exc}.") from None
            sources[name] = layer
            break
    settings = Settings(**values, sources=sources)
    remember(settings)  # its secrets are scrubbed from errors and logs from now on
    return settings


def resolve_choices(provider: str | None = None, model: str | None = None,
                    base_url: str | None = None, tool_choice: str | None = None,
                    label: str = "command line") -> Settings:
    """:func:`resolve`, with the choices a command or a notebook makes as
    its first layer (named ``label`` in ``sources``): a provider, its model
    (under the provider's own model setting), an OpenAI-compatible base URL
    (which implies that provider) and who picks tools.

    Raises:
        ConfigError: as :func:`resolve`; also an unknown provider.
    """
    overrides: dict[str, str] = {}
    if base_url:
        overrides["OPENAI_COMPATIBLE_BASE_URL"] = base_url
        provider = provider or "openai-compatible"
    if provider:
        overrides["LLMAPP_PROVIDER"] = provider
    if tool_choice:
        overrides["LLMAPP_TOOL_CHOICE"] = tool_choice
    settings = resolve(sidebar=overrides, overrides_label=label)
    if model:
        from llmapp.providers import get_provider

        setting = get_provider(settings.provider_choice()[0]).model_setting
        settings = resolve(sidebar={**overrides, setting: model}, overrides_label=label)
    return settings
