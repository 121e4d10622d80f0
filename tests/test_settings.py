from pydantic import SecretStr
import pytest

from llmapp import config
from llmapp.errors import ConfigError
from llmapp.settings import SPECS, read_env_file, resolve


def test_defaults_when_nothing_is_set():
    s = resolve(environ={}, env_file={})
    assert s.openai_model == config.OPENAI_DEFAULT_MODEL
    assert s.local_n_ctx == config.LOCAL_N_CTX
    assert s.openai_api_key is None
    assert s.source("OPENAI_MODEL") == "default"
    assert s.provider_choice()[0] == "local"


def test_layer_order_sidebar_secrets_env_dotenv_default():
    name = "OPENAI_MODEL"
    layers = dict(sidebar={name: "a"}, secrets={name: "b"}, environ={name: "c"},
                  env_file={name: "d"})
    assert resolve(**layers).openai_model == "a"
    assert resolve(**layers).source(name) == "sidebar"
    layers["sidebar"] = {}
    assert (resolve(**layers).openai_model, resolve(**layers).source(name)) == ("b", "secrets")
    layers["secrets"] = None  # what the UI passes when there is no secrets file
    assert (resolve(**layers).openai_model, resolve(**layers).source(name)) == ("c", "environment")
    layers["environ"] = {}
    assert (resolve(**layers).openai_model, resolve(**layers).source(name)) == ("d", ".env")
    layers["env_file"] = {}
    assert resolve(**layers).openai_model == config.OPENAI_DEFAULT_MODEL


def test_blank_values_fall_through_to_the_next_layer():
    s = resolve(sidebar={"OPENAI_MODEL": "  "}, environ={"OPENAI_MODEL": "gpt-4o"}, env_file={})
    assert s.openai_model == "gpt-4o"


def test_env_file_is_read_without_touching_os_environ(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("OPENAI_MODEL=gpt-4.1-nano\nLLMAPP_LOCAL_N_CTX=1024\n")
    monkeypatch.setenv("LLMAPP_ENV_FILE", str(env))
    assert read_env_file() == {"OPENAI_MODEL": "gpt-4.1-nano", "LLMAPP_LOCAL_N_CTX": "1024"}
    s = resolve(environ={})
    assert (s.openai_model, s.local_n_ctx, s.source("LLMAPP_LOCAL_N_CTX")) == (
        "gpt-4.1-nano", 1024, ".env")
    import os
    assert "LLMAPP_LOCAL_N_CTX" not in os.environ


def test_keys_are_secret_and_never_in_repr_or_errors():
    s = resolve(environ={"OPENAI_API_KEY": "sk-live-abc123"}, env_file={})
    assert isinstance(s.openai_api_key, SecretStr)
    assert s.openai_api_key.get_secret_value() == "sk-live-abc123"
    assert "sk-live-abc123" not in repr(s) and "sk-live-abc123" not in str(s)


@pytest.mark.parametrize("name,value,words", [
    ("LLMAPP_LOCAL_N_CTX", "lots", "whole number above 0"),
    ("LLMAPP_LOCAL_N_CTX", "0", "whole number above 0"),
    ("LLMAPP_MAX_RETRIES", "-1", "0 or more"),
    ("LLMAPP_REQUEST_TIMEOUT", "soon", "number above 0"),
    ("LLMAPP_PROVIDER", "anthropic", "must be one of"),
    ("OPENAI_COMPATIBLE_BASE_URL", "file:///etc/passwd", "http:// or https://"),
])
def test_malformed_values_name_the_setting_and_layer(name, value, words):
    with pytest.raises(ConfigError) as err:
        resolve(secrets={name: value}, environ={}, env_file={})
    assert name in str(err.value) and "secrets" in str(err.value) and words in str(err.value)


def test_provider_choice_and_reason():
    key = {"OPENAI_API_KEY": "sk-x"}
    url = {"OPENAI_COMPATIBLE_BASE_URL": "http://localhost:11434/v1"}
    assert resolve(environ=key, env_file={}).provider_choice() == (
        "openai", "an OpenAI API key was found (environment)")
    assert resolve(environ=url, env_file={}).provider_choice()[0] == "openai-compatible"
    name, reason = resolve(sidebar={"LLMAPP_PROVIDER": "local"}, environ={**key, **url},
                           env_file={}).provider_choice()
    assert name == "local" and "sidebar" in reason
    assert resolve(environ={"LLMAPP_PROVIDER": "auto", **url},
                   env_file={}).provider_choice()[0] == "openai-compatible"


def test_every_setting_is_documented_in_the_secrets_example():
    from pathlib import Path
    example = (Path(__file__).parents[1] / ".streamlit" / "secrets.toml.example").read_text()
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in SPECS:
        assert name in readme, f"{name} is missing from the README"
    for name in ("OPENAI_API_KEY", "OPENAI_COMPATIBLE_BASE_URL", "LLMAPP_PROVIDER"):
        assert name in example
