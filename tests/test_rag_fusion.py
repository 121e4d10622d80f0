"""Rank fusion and the section-heading ranking (llmapp.rag.lexical.fuse,
llmapp.rag.sections), on the real embedder."""

import pytest

from llmapp.rag.embeddings import LocalEmbeddings
from llmapp.rag.lexical import RRF_K, fuse, match_expression
from llmapp.rag.sections import SectionIndex, file_heading


def test_rrf_adds_one_over_k_plus_rank_per_ranking():
    fused = fuse(["a", "b"], ["b", "c"])
    scores = {f.id: f.score for f in fused}
    assert scores["b"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert scores["a"] == pytest.approx(1 / (RRF_K + 1))
    assert [f.id for f in fused] == ["b", "a", "c"]
    assert {f.id: f.found_by for f in fused} == {"a": "dense", "b": "both", "c": "lexical"}


def test_a_section_rank_goes_to_its_best_found_chunk_only():
    # "c" ranks below "a"; section 1 holds c and x (x was found by neither ranking)
    fused = fuse(["a", "b", "c"], [], sections=[["x", "c"], ["a", "b"]])
    scores = {f.id: f.score for f in fused}
    assert "x" not in scores  # headings reorder, they add nothing of their own
    assert scores["c"] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert scores["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert scores["b"] == pytest.approx(1 / (RRF_K + 2))  # a took its section's rank
    assert [f.id for f in fused] == ["a", "c", "b"]  # c rose above b
    assert {f.found_by for f in fused} == {"dense"}


def test_stopwords_only_make_no_lexical_query():
    assert match_expression("what is it?") is None
    assert match_expression('Use "click.option" now') == '"use" OR "click" OR "option" OR "now"'


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbeddings()


ROWS = [
    ("c1", "flask/blueprints.html", "Modular Applications with Blueprints > Registering"),
    ("c2", "flask/blueprints.html", "Modular Applications with Blueprints > Registering"),
    ("c3", "flask/logging.html", "Logging > Basic Configuration"),
    ("c4", "flask/testing.html", "Testing Flask Applications > The Test Client"),
    ("c5", "notes/garden_diary.txt", None),
    ("c6", "notes/garden_diary.txt", "  "),
]


def test_sections_rank_by_heading_and_group_their_chunks(embedder):
    index = SectionIndex(ROWS, embedder)
    assert index.size == 4  # chunks without a heading go by their file's name
    question = embedder.embed_query("How do I split my app into reusable modules?")
    assert index.search(question, 10) == [["c1", "c2"]]  # the rest are below the floor
    everything = index.search(question, 10, min_similarity=-1.0)
    assert everything[0] == ["c1", "c2"]
    assert sorted(i for g in everything for i in g) == ["c1", "c2", "c3", "c4", "c5", "c6"]
    garden = embedder.embed_query("What did I plant in the garden?")
    assert index.search(garden, 1) == [["c5", "c6"]]
    logging = embedder.embed_query("Where do my log messages go?")
    assert index.search(logging, 1) == [["c3"]]  # stops once n chunks are in
    only = index.search(question, 10, sources=["flask/testing.html"], min_similarity=-1.0)
    assert only == [["c4"]]


def test_a_file_name_stands_in_for_a_missing_heading():
    assert file_heading("docs/03_rag_in_practice.pdf") == "03 rag in practice"
    assert file_heading("C:\\x\\release-notes.v2.md") == "release notes v2"
    assert file_heading("") == ""


def test_an_empty_collection_ranks_nothing(embedder):
    index = SectionIndex([], embedder)
    assert index.size == 0
    assert index.search(embedder.embed_query("anything"), 5) == []


class CountingEmbeddings(LocalEmbeddings):
    """The real embedder, counting the texts it embeds."""

    def __init__(self):
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return super().embed_documents(texts)


def test_a_rebuilt_index_embeds_only_new_headings():
    counting = CountingEmbeddings()
    first = SectionIndex(ROWS, counting)
    assert len(counting.embedded) == 4
    counting.embedded.clear()
    rows = [*ROWS[:3], ("c7", "flask/cli.html", "Command Line Interface > Custom Commands")]
    second = SectionIndex(rows, counting, previous=first)
    assert counting.embedded == ["Command Line Interface > Custom Commands"]
    assert second.size == 3  # the testing page's and the diary's went with their chunks
    question = counting.embed_query("How do I add my own command to the flask CLI?")
    assert second.search(question, 1) == [["c7"]]
