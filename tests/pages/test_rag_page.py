import pytest

from helpers import texts

PAGE = "pages/3_RAG.py"
pytestmark = pytest.mark.slow


@pytest.fixture
def rag_page(app, tmp_path):
    return lambda **secrets: app(PAGE, LLMAPP_CHROMA_PATH=str(tmp_path / "chroma"), **secrets)


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_ingest_the_sample_and_ask_with_sources(rag_page):
    at = rag_page()
    assert not at.exception
    assert at.chat_input[0].disabled  # nothing to ask yet
    button(at, "Ingest the sample handbook").click().run()
    assert not at.exception
    results = [s.value for s in at.success]
    assert len(results) == 3 and all(": added, " in r for r in results)
    at.chat_input[0].set_value("How many dimensions does all-MiniLM-L6-v2 produce?").run()
    assert not at.exception
    reply = at.chat_message[1]
    assert reply.markdown[0].value.strip()
    labels = [e.label for e in reply.expander]
    assert len(labels) == 4 and labels[0].startswith("[1] 03_rag_in_practice.pdf, page 2")
    assert any("TTFT" in c.value for c in reply.caption)
    # sources survive a rerun
    at.run()
    assert [e.label for e in at.chat_message[1].expander] == labels


def test_reingesting_adds_nothing_and_reset_empties(rag_page):
    at = rag_page()
    button(at, "Ingest the sample handbook").click().run()
    button(at, "Ingest the sample handbook").click().run()
    assert all("unchanged, nothing added" in s.value for s in at.success)
    shown = texts(at)
    assert "**handbook** · 3 documents" in shown
    next(c for c in at.checkbox if c.label.startswith("Yes, delete all of")).check().run()
    button(at, "Reset collection").click().run()
    assert not at.exception
    assert "**handbook** ·" not in texts(at)


def test_a_bad_chroma_server_is_a_message(rag_page):
    at = rag_page(CHROMA_HOST="127.0.0.1", CHROMA_PORT="9")
    assert not at.exception
    assert "Cannot reach the Chroma server" in at.error[0].value
