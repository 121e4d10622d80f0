import pytest

from helpers import encrypt_pdf, make_pdf, texts

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


def test_upload_reports_each_file_and_the_others_still_ingest(rag_page):
    at = rag_page()
    at.file_uploader[0].set_value([
        ("notes.md", b"# Launch\n\nThe launch code is 4242.\n", "text/markdown"),
        ("empty.txt", b"", "text/plain"),
        ("latin.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "text/plain"),
        ("locked.pdf", encrypt_pdf(make_pdf(["secret"])), "application/pdf"),
    ]).run()
    button(at, "Ingest uploads").click().run()
    assert not at.exception
    [ok] = [s.value for s in at.success]
    assert ok.startswith("notes.md: added, 1 chunks")
    errors = " ".join(e.value for e in at.error)
    assert "empty.txt: the file is empty" in errors
    assert "latin.txt: the text is not UTF-8" in errors
    assert "locked.pdf: the PDF is encrypted" in errors
    assert at.selectbox(key="rag_collection").value == "handbook"
    at.chat_input[0].set_value("What is the launch code?").run()
    assert not at.exception
    labels = [e.label for e in at.chat_message[1].expander]
    assert labels == ["[1] notes.md, chunk 0 · similarity " + labels[0].split("similarity ")[1]]


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
