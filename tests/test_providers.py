import pytest
from pydantic import SecretStr

from llmapp.errors import ConfigError, ProviderError, provider_error_from
from llmapp.providers import (PROVIDERS, GenerationParams, active_provider, get_provider,
                              probe_server)
from llmapp.settings import resolve
from helpers import free_port


def settings(**values):
    return resolve(environ=values, env_file={})


def test_registry_and_unknown_names():
    assert list(PROVIDERS) == ["local", "openai", "openai-compatible"]
    with pytest.raises(ConfigError, match="Unknown provider 'claude'"):
        get_provider("claude")


def test_local_is_the_default_and_can_run():
    provider, reason = active_provider(settings())
    assert provider.name == "local" and "no OpenAI key" in reason
    status = provider.status(settings())
    assert status.ok and "no key or network" in status.reason


def test_local_status_says_how_many_replies_run_at_once():
    from llmapp.cpus import available_cpus

    cores = available_cpus().cores
    status = get_provider("local").status(settings(LLMAPP_LOCAL_N_THREADS="1"))
    # xllamacpp: a 1-thread server per core, 1 slot each; 2 slots when one core
    assert f"up to {cores if cores > 1 else 2} replies at once" in status.reason
    status = get_provider("local").status(settings(LLMAPP_LOCAL_N_THREADS=str(cores)))
    assert "up to 2 replies at once" in status.reason  # one server, two slots
    status = get_provider("local").status(settings(LLMAPP_LOCAL_RUNTIME="llama-cpp"))
    assert "up to 1 reply at once" in status.reason  # one worker thread


def test_local_status_names_a_missing_file():
    status = get_provider("local").status(settings(LLMAPP_LOCAL_MODEL_PATH="/nope/model.gguf"))
    assert not status.ok and "/nope/model.gguf" in status.reason


def test_openai_needs_a_key():
    openai = get_provider("openai")
    status = openai.status(settings())
    assert not status.ok and "OPENAI_API_KEY" in status.reason
    with pytest.raises(ProviderError) as err:
        openai.chat_model(settings(LLMAPP_PROVIDER="openai"), GenerationParams())
    assert err.value.kind == "auth"
    assert openai.status(settings(OPENAI_API_KEY="sk-x")).ok


def test_openai_model_gets_the_settings_and_params():
    s = settings(OPENAI_API_KEY="sk-test", OPENAI_MODEL="gpt-4o-mini", LLMAPP_MAX_RETRIES="4",
                 LLMAPP_REQUEST_TIMEOUT="12.5")
    model = get_provider("openai").chat_model(
        s, GenerationParams(temperature=0.2, top_p=0.5, max_tokens=77, stop=("END",)))
    assert (model.model_name, model.temperature, model.top_p, model.max_tokens) == (
        "gpt-4o-mini", 0.2, 0.5, 77)
    assert (model.max_retries, model.request_timeout, model.stop) == (4, 12.5, ["END"])
    assert model.openai_api_key.get_secret_value() == "sk-test" and model.openai_api_base is None
    assert model.stream_usage is True


def test_reasoning_models_get_no_sampling_params():
    model = get_provider("openai").chat_model(
        settings(OPENAI_API_KEY="sk-x", OPENAI_MODEL="gpt-5-mini"), GenerationParams(temperature=0.2))
    assert model.temperature is None and model.top_p is None


def test_openai_window_and_prices_come_from_config():
    openai = get_provider("openai")
    s = settings(OPENAI_API_KEY="sk-x")
    assert openai.context_window(s) == 400_000  # the default, gpt-5.4-mini
    assert openai.model_info(s).usd_per_1m_input == 0.75
    old = settings(OPENAI_API_KEY="sk-x", OPENAI_MODEL="gpt-4.1-mini")
    assert openai.context_window(old) == 1_047_576


def test_compatible_needs_a_base_url_and_reports_unreachable():
    compat = get_provider("openai-compatible")
    assert not compat.status(settings()).ok
    with pytest.raises(ProviderError, match="OPENAI_COMPATIBLE_BASE_URL"):
        compat.chat_model(settings(), GenerationParams())
    url = f"http://127.0.0.1:{free_port()}/v1"
    status = compat.status(settings(OPENAI_COMPATIBLE_BASE_URL=url))
    assert not status.ok and "unreachable" in status.reason and url in status.reason


def test_compatible_model_points_at_the_server():
    s = settings(OPENAI_COMPATIBLE_BASE_URL="http://localhost:11434/v1/",
                 OPENAI_COMPATIBLE_MODEL="qwen3", OPENAI_COMPATIBLE_CONTEXT_WINDOW="32768")
    compat = get_provider("openai-compatible")
    model = compat.chat_model(s, GenerationParams())
    assert model.openai_api_base == "http://localhost:11434/v1" and model.model_name == "qwen3"
    assert compat.context_window(s) == 32768 and compat.model_info(s) is None
    assert compat.token_counter(s).exact is False


def test_generation_params_are_checked():
    for bad in (dict(temperature=3), dict(top_p=0), dict(max_tokens=0)):
        with pytest.raises(ConfigError):
            GenerationParams(**bad)


def test_errors_are_translated_without_leaking_details():
    class AuthenticationError(Exception):
        status_code = 401

    err = provider_error_from(AuthenticationError("Incorrect API key provided: sk-abc***xyz"),
                              provider="OpenAI")
    assert err.kind == "auth" and "sk-abc" not in str(err) and not err.retryable
    err = provider_error_from(RuntimeError("boom"), provider="OpenAI")
    assert err.kind == "unknown" and "RuntimeError" in str(err)
    err = provider_error_from(ValueError("This model's maximum context length is 8192 tokens"),
                              provider="x")
    assert err.kind == "context_overflow"


def test_probe_sends_the_key_only_as_a_header():
    status = probe_server(f"http://127.0.0.1:{free_port()}/v1", SecretStr("sk-hidden"),
                          timeout_s=0.5)
    assert not status.ok and "sk-hidden" not in status.reason
