"""The notebooks in ``notebooks/``, executed in a real Jupyter kernel
(nbclient + ipykernel) on the bundled model, offline; and
:class:`llmapp.notebook.Chatbot` outside Jupyter."""

from __future__ import annotations

import json

import nbformat
import pytest
from helpers import ROOT, compatible_settings
from nbclient import NotebookClient

from llmapp.errors import ConfigError
from llmapp.notebook import Chatbot

NOTEBOOK = ROOT / "notebooks" / "01_chatbot.ipynb"


def test_notebooks_are_committed_without_outputs():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path


@pytest.mark.slow
def test_the_chatbot_notebook_runs_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMAPP_CHROMA_PATH", str(tmp_path / "chroma"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [[o for o in cell.get("outputs", [])] for cell in nb.cells]

    def markdown(cell: int) -> list[str]:
        return [o["data"]["text/markdown"] for o in outputs[cell]
                if o["output_type"] in ("display_data", "update_display_data")
                and "text/markdown" in o.get("data", {})]

    def text(cell: int) -> str:
        return "".join(o.get("text", "") for o in outputs[cell] if o["output_type"] == "stream")

    asked = [i for i, c in enumerate(nb.cells) if "answer = bot.ask" in c.source][0]
    answer, footer = markdown(asked)
    assert answer.strip() and "tokens/s" in footer and "SmolLM2" in footer
    memory = [i for i, c in enumerate(nb.cells) if "What is my name?" in c.source][0]
    shown = markdown(memory)
    assert len(shown) == 6  # three answers, each with its stats line
    assert "2 older messages were not sent" in shown[-1] and "prompt tokens sent" in text(memory)
    saved = [i for i, c in enumerate(nb.cells) if "bot.save(" in c.source][0]
    assert "6 messages loaded" in text(saved)
    assert outputs[saved][-1]["data"]["text/plain"] == "0"
    ingest = [i for i, c in enumerate(nb.cells) if "ingest_many" in c.source][0]
    assert text(ingest).count(": added (") == 3
    sources = text([i for i, c in enumerate(nb.cells) if "docs.last.sources" in c.source][0])
    assert sources.startswith("[1] handbook/") and "found by" in sources
    assert not any(o["output_type"] == "error" for cell in outputs for o in cell)


@pytest.mark.slow
def test_the_chatbot_prints_outside_jupyter_and_trims_its_history(capsys, tmp_path):
    bot = Chatbot(max_tokens=24, memory="token-budget", temperature=0)
    assert not bot.live
    first = bot.ask("Say hello to Ada.")
    out = capsys.readouterr()
    assert first.strip() and first in out.out and "tokens/s" in out.err
    for n in range(3):
        bot.ask(f"Tell me fact number {n} about the sea.")
    assert len(bot.history) == 8 and bot.store.last_budget.strategy == "token_budget"
    assert bot.memory.cache.counted <= len(bot.history)  # each message counted once

    path = bot.save(tmp_path / "chat.json")
    data = json.loads(path.read_text())
    assert data["version"] == 1 and len(data["messages"]) == 8
    again = Chatbot().load(path)
    assert again.history == bot.history and again.last.stats.completion_tokens > 0
    bot.reset()
    assert bot.history == []


def test_bad_input_is_a_message_not_a_traceback(capsys, tmp_path):
    bot = Chatbot()
    assert bot.ask("   ") == ""
    assert "the question is empty" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "messages": [{"role": "user"}]}')
    with pytest.raises(ConfigError, match="cannot be loaded"):
        bot.load(broken)
    with pytest.raises(ConfigError, match="Unknown memory strategy"):
        Chatbot(memory="forever")


@pytest.mark.slow
def test_a_failed_reply_keeps_the_question(capsys):
    bot = Chatbot(max_tokens=64)
    assert bot.ask("word " * 3000) == ""
    err = capsys.readouterr().err
    assert err.startswith("llmapp: The message is too long")
    assert bot.store.messages[0].content.startswith("word word")
    assert bot.store.messages[-1].error and bot.history[-1]["role"] == "user"


@pytest.mark.slow
def test_the_chatbot_talks_to_an_openai_compatible_server(llama_server, capsys):
    # the transport is under test, not the filter (its own tests are in test_safety.py)
    settings = compatible_settings(llama_server, LLMAPP_SAFETY_LEVEL="off")
    bot = Chatbot(settings=settings, max_tokens=24)
    answer = bot.ask("Say hello in one short sentence.")
    assert answer.strip() and bot.last.stats.provider == "openai-compatible"
    assert bot.last.stats.usage_source == "reported"
    assert llama_server.key not in capsys.readouterr().err
