import pytest

from helpers import encrypt_pdf, make_pdf, texts

PAGE = "pages/3_RAG.py"
pytestmark = pytest.mark.slow


@pytest.fixture
def rag_page(app, tmp_path):
    return lambda **secrets: app(PAGE, LLMAPP_CHROMA_PATH=str(tmp_path / "chroma"), **secrets)


@pytest.fixture
def empty_rag_page(tmp_path):
    """The page on an empty store, with the first-visit sample load already done."""
    from streamlit.testing.v1 import AppTest

    from helpers import ROOT

    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
    at.secrets["LLMAPP_CHROMA_PATH"] = str(tmp_path / "chroma")
    at.session_state["_rag_cold_start_done"] = True
    return at.run()


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_a_fresh_store_loads_the_sample_on_first_visit_and_answers_with_sources(rag_page):
    at = rag_page()  # as on Community Cloud after a sleep: the disk is empty
    assert not at.exception
    assert any("No collection yet" in i.value for i in at.info)
    assert any("Answers are **quoted**" in i.value for i in at.info)  # the bundled model's mode
    results = [s.value for s in at.success]
    assert len(results) == 3 and all(": added, " in r for r in results)
    assert not at.chat_input[0].disabled
    assert "wipes that disk" in texts(at)  # where the documents live, and what that means
    at.chat_input[0].set_value("How many dimensions does all-MiniLM-L6-v2 produce?").run()
    assert not at.exception
    reply = at.chat_message[1]
    assert "384-dimensional vectors" in reply.markdown[0].value  # quoted, so it is right
    labels = [e.label for e in reply.expander]
    assert len(labels) == 4 and labels[0].startswith("[1] 03_rag_in_practice.pdf, page 2")
    assert "📌 quoted" in labels[0] and all("not used" in label for label in labels[1:])
    assert any("TTFT" in c.value for c in reply.caption)
    # sources survive a rerun
    at.run()
    assert [e.label for e in at.chat_message[1].expander] == labels
    assert len(at.feedback) == 1  # the answer can be rated


def test_nothing_to_ask_until_something_is_ingested(empty_rag_page):
    at = empty_rag_page
    assert at.chat_input[0].disabled
    button(at, "Ingest the sample handbook").click().run()
    assert not at.exception and not at.chat_input[0].disabled
    assert len([s for s in at.success if ": added, " in s.value]) == 3


def test_upload_reports_each_file_and_the_others_still_ingest(empty_rag_page):
    at = empty_rag_page
    at.file_uploader[0].set_value([
        ("notes.md", b"# Launch\n\nThe launch code is 4242.\n", "text/markdown"),
        ("empty.txt", b"", "text/plain"),
        ("latin.txt", ("Le caf\xe9 cr\xe8me co\xfbte trois euros \xe0 Montr\xe9al, o\xf9 "
                       "l'\xe9t\xe9 est tr\xe8s court. ") .encode("latin-1") * 3, "text/plain"),
        ("locked.pdf", encrypt_pdf(make_pdf(["secret"])), "application/pdf"),
    ]).run()
    button(at, "Ingest uploads").click().run()
    assert not at.exception
    [ok] = [s.value for s in at.success]
    assert ok.startswith("notes.md: added, 1 chunks")
    errors = " ".join(e.value for e in at.error)
    assert "empty.txt: the file is empty" in errors
    [notice] = [w.value for w in at.warning if w.value.startswith("latin.txt")]
    assert notice.startswith("latin.txt: added, 1 chunks") and "read as cp1252" in notice
    assert "locked.pdf: the PDF is encrypted" in errors
    assert at.selectbox(key="rag_collection").value == "handbook"
    at.chat_input[0].set_value("What is the launch code?").run()
    assert not at.exception
    labels = [e.label for e in at.chat_message[1].expander]
    assert labels[0].startswith("[1] notes.md, chunk 0 · similarity ")
    assert "· found by both ·" in labels[0]  # "launch code" is in its words and its meaning


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


def test_uploads_that_break_parsers_fail_alone_with_escaped_names(empty_rag_page):
    """Issue 28: a deep HTML page (RecursionError in markdownify) and a PDF
    past pypdf's limits (LimitReachedError) used to end the page's run with a
    traceback; a newline in a name split the message."""
    from test_rag_ingest import DEEP_HTML, inflating_pdf

    at = empty_rag_page
    at.file_uploader[0].set_value([
        ("notes.md", b"# Launch\n\nThe launch code is 4242.\n", "text/markdown"),
        ("deep.html", DEEP_HTML, "text/html"),
        ("bomb.pdf", inflating_pdf(80_000_000), "application/pdf"),
        ("two\nlines.md", b"A name with a newline.", "text/markdown"),
    ]).run()
    button(at, "Ingest uploads").click().run()
    assert not at.exception
    successes = [s.value for s in at.success]
    assert any(s.startswith("notes.md: added, 1 chunks") for s in successes)
    assert any(s.startswith("deep.html: added, ") for s in successes)
    assert any(s.startswith("two\\nlines.md: added, 1 chunks") for s in successes)
    [error] = [e.value for e in at.error]
    assert error.startswith("bomb.pdf: the PDF is over a safety limit") and "\n" not in error
