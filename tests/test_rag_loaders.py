"""Loaders and chunkers on real files the tests make."""

import pytest

from helpers import encrypt_pdf as encrypt
from helpers import make_pdf
from llmapp.errors import ConfigError
from llmapp.rag import IngestError
from llmapp.rag.chunking import ChunkSettings, chunk
from llmapp.rag.loaders import MAX_FILE_BYTES, Section, drop_running_lines, load


def test_pdf_pages_keep_their_numbers():
    sections = load(make_pdf(["Alpha page.", "Beta page.", "Gamma page."]), "three.pdf")
    assert [s.page for s in sections] == [1, 2, 3]
    assert "Beta" in sections[1].text and "Beta" not in sections[0].text


def test_running_headers_and_footers_leave_pdf_pages():
    bodies = ["Owls hunt at night.", "Bats sleep by day.", "Moths follow the moon.",
              "Foxes walk at dusk."]
    pages = [f"Field guide - page {n}\n{body}\n{n} / 4" for n, body in enumerate(bodies, 1)]
    sections = load(make_pdf(pages), "guide.pdf")
    assert [" ".join(s.text.split()) for s in sections] == bodies
    kept = drop_running_lines(["Intro\nOwls.", "Intro\nBats."])  # two pages: too few to tell
    assert kept == ["Intro\nOwls.", "Intro\nBats."]


def test_text_markdown_and_html():
    assert load("héllo wörld".encode(), "a.txt") == [Section("héllo wörld")]
    assert load(b"# Title\n\nBody", "a.md")[0].text.startswith("# Title")
    html = b"<html><head><style>p{}</style><script>x()</script></head><body><h1>Hi</h1>" \
           b"<p>There</p></body></html>"
    text = load(html, "page.html")[0].text
    assert "Hi" in text and "There" in text and "x()" not in text and "p{}" not in text
    assert load("\ufeffbom".encode(), "b.txt")[0].text == "bom"
    assert load("utf16".encode("utf-16"), "c.txt")[0].text == "utf16"


@pytest.mark.parametrize("data,name,words", [
    (b"", "empty.txt", "is empty"),
    (b"   \n\t ", "blank.md", "is empty"),
    (b"\x89PNG\r\n\x1a\n\0\0\0IHDR", "image.txt", "binary"),
    (b"%PDF-1.7\nthis is not really a pdf", "broken.pdf", "damaged"),
    (b"PK\x03\x04 zip", "report.docx", ".docx is not supported"),
    (b"data", "noext", "without an extension"),
])
def test_bad_files_get_a_clear_message(data, name, words):
    with pytest.raises(IngestError) as err:
        load(data, name)
    assert name in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_text_in_other_encodings_is_read_and_says_so(encoding):
    text = ("Le café coûte trois euros à Montréal, où l'été est très court. Ça déçoit "
            "les élèves qui préfèrent la fraîcheur des forêts.\n") * 3
    section = load(text.encode(encoding), "notes.txt")[0]
    assert section.text == text and section.encoding != "utf-8"


def test_cyrillic_cp1251_is_read_as_cp1251():
    text = "Привет, как дела? Это тест кодировки windows. Ещё немного текста здесь. " * 3
    section = load(text.encode("cp1251"), "privet.txt")[0]
    assert section.text == text and section.encoding == "cp1251"


def test_real_html_docs_become_clean_markdown():
    from helpers import ROOT

    html = (ROOT / "tests" / "data" / "html" / "click-options.html").read_bytes()
    section = load(html, "options.html")[0]
    assert section.title == "Options — Click Documentation (8.1.x)"
    text = section.text
    assert text.startswith("# Options\n") and "\n## Name Your Options\n" in text
    # inline code stays inside its sentence; permalinks and navigation are gone
    assert "by the `option()`\ndecorator" in text
    assert "¶" not in text and "Navigation" not in text and "previous" not in text.lower()
    assert "```\n@click.command()\n@click.option('-s', '--string-to-echo')" in text
    assert "- `\"-x\"`, the name is `x`" in text
    chunks = chunk([section], ChunkSettings("markdown"))
    named = [c for c in chunks if c.headers and c.headers.endswith("Name Your Options")]
    assert named and named[0].section == ("Options — Click Documentation (8.1.x) > "
                                          "Name Your Options")
    assert named[0].embed_text.startswith(named[0].section + "\n\n")
    assert not named[0].text.startswith("Options —")  # shown text stays clean


def test_encrypted_pdf_is_refused():
    with pytest.raises(IngestError, match="encrypted"):
        load(encrypt(make_pdf(["Top secret."])), "locked.pdf")


def test_oversized_file_is_refused_before_parsing():
    with pytest.raises(IngestError, match="over the 20 MiB limit"):
        load(b"a" * (MAX_FILE_BYTES + 1), "big.txt")
    with pytest.raises(IngestError, match="50 MiB is over"):
        load(b"a" * (50 * 2**20), "fifty.txt")


def test_recursive_chunks_respect_size_and_overlap():
    text = " ".join(f"word{i}" for i in range(600))
    chunks = chunk([Section(text)], ChunkSettings("recursive", 200, 50))
    assert all(len(c.text) <= 200 for c in chunks) and len(chunks) > 10
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for a, b in zip(chunks, chunks[1:], strict=False):
        tail = a.text[-40:].split()[-1]
        assert tail in b.text[:60]  # neighbours share words: the overlap


def test_sentence_chunks_are_sentences():
    chunks = chunk([Section("Dr. Smith went home. He slept well! Did he? Yes.")],
                   ChunkSettings("sentence"))
    assert [c.text for c in chunks] == ["Dr. Smith went home.", "He slept well!", "Did he?",
                                        "Yes."]


def test_hard_wrapped_lines_are_one_sentence_but_lists_and_headings_stay_apart():
    from llmapp.rag.chunking import sentences

    pdf = "A chunk size of 500 to 1,000 characters works\nfor prose. An overlap of 10 to\n20 percent."
    assert sentences(pdf) == ["A chunk size of 500 to 1,000 characters works for prose.",
                              "An overlap of 10 to 20 percent."]
    markdown = "## Stage 5\nTools run\n- a calculator\n- a search that\n  reads the web\n1. one"
    assert sentences(markdown) == ["## Stage 5", "Tools run", "- a calculator",
                                   "- a search that reads the web", "1. one"]


def test_parent_child_maps_each_child_to_its_parent():
    paragraphs = [f"Paragraph {i}. " + "filler text " * 40 for i in range(4)]
    chunks = chunk([Section("\n\n".join(paragraphs))],
                   ChunkSettings("parent-child", chunk_size=150, chunk_overlap=20, parent_size=600))
    parents = {c.parent for c in chunks}
    assert 1 < len(parents) < len(chunks)
    for c in chunks:
        assert c.text in c.parent and len(c.text) <= 150 and len(c.parent) <= 600
        assert c.context == c.parent


def test_markdown_chunks_keep_their_header_path():
    text = "# Guide\n\nIntro.\n\n## Setup\n\nInstall it.\n\n### Linux\n\nUse apt.\n\n## Use\n\nRun it."
    chunks = chunk([Section(text)], ChunkSettings("markdown", 200, 20))
    by_text = {c.text.splitlines()[-1]: c.headers for c in chunks}
    assert by_text["Install it."] == "Guide > Setup"
    assert by_text["Use apt."] == "Guide > Setup > Linux"
    assert by_text["Run it."] == "Guide > Use"


def test_chunks_never_span_pages():
    chunks = chunk(load(make_pdf(["One. " * 50, "Two. " * 50]), "p.pdf"),
                   ChunkSettings("recursive", 100, 10))
    assert {c.page for c in chunks} == {1, 2}
    assert all(("One" in c.text) != ("Two" in c.text) for c in chunks)


@pytest.mark.parametrize("kwargs,words", [
    (dict(strategy="semantic"), "Unknown chunking"),
    (dict(chunk_size=10), "chunk_size must be 50 to 20,000"),
    (dict(chunk_size=100, chunk_overlap=100), "chunk_overlap must be"),
    (dict(strategy="parent-child", chunk_size=500, parent_size=400), "parent_size must be larger"),
])
def test_bad_chunk_settings(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        ChunkSettings(**kwargs)
