"""The knowledge base on real Chroma (on disk and as a server) with the real
all-MiniLM-L6-v2 embedder."""

import subprocess
import sys

import pytest

from helpers import ROOT, chroma_settings, free_port, wait_for_http
from llmapp.rag import IngestError, RagError
from llmapp.rag.chunking import ChunkSettings
from llmapp.rag.embeddings import EmbedderInfo, LocalEmbeddings
from llmapp.rag.store import KnowledgeBase, check_name, knowledge_base, make_client

pytestmark = pytest.mark.slow
HANDBOOK = ROOT / "data" / "handbook"
DOC = b"# Cats\n\nCats purr when content.\n\n# Dogs\n\nDogs bark at strangers.\n"


@pytest.fixture
def kb(tmp_path):
    return knowledge_base(chroma_settings(tmp_path / "chroma"))


def small():
    return ChunkSettings("markdown", 100, 10)


def test_ingest_is_idempotent_and_replaces_changed_files(kb):
    first = kb.ingest("pets", DOC, "pets.md", small())
    assert (first.status, first.chunks) == ("added", 2)
    again = kb.ingest("pets", DOC, "pets.md", small())
    assert again.status == "unchanged"
    assert kb.collections()[0].chunks == 2
    changed = kb.ingest("pets", DOC + b"\n# Fish\n\nFish swim.\n", "pets.md", small())
    assert (changed.status, changed.chunks) == ("replaced", 3)
    [info] = kb.collections()
    assert (info.name, info.documents, info.chunks) == ("pets", 1, 3)
    assert info.embedder == "local:all-MiniLM-L6-v2" and info.dimension == 384
    assert [h.text.splitlines()[-1] for h in kb.search("pets", "swimming animals", 1)] == [
        "Fish swim."]


def test_rechunking_the_same_file_replaces_it(kb):
    kb.ingest("pets", DOC, "pets.md", small())
    result = kb.ingest("pets", DOC, "pets.md", ChunkSettings("sentence"))
    assert result.status == "replaced" and kb.documents("pets") == {"pets.md": result.chunks}


def test_delete_document_and_reset(kb):
    kb.ingest("pets", DOC, "a.md", small())
    kb.ingest("pets", b"Birds sing at dawn.", "b.txt", small())
    assert kb.documents("pets") == {"a.md": 2, "b.txt": 1}
    assert kb.delete_document("pets", "a.md") == 2
    assert kb.documents("pets") == {"b.txt": 1}
    with pytest.raises(RagError, match="'a.md' is not in collection 'pets'"):
        kb.delete_document("pets", "a.md")
    kb.reset("pets")
    assert kb.collections() == []
    with pytest.raises(RagError, match="There is no collection 'pets'"):
        kb.search("pets", "birds")


def test_a_bad_file_leaves_nothing_and_others_still_ingest(kb):
    with pytest.raises(IngestError):
        kb.ingest("pets", b"\0\0binary", "bad.txt", small())
    kb.ingest("pets", DOC, "good.md", small())
    assert kb.documents("pets") == {"good.md": 2}


def test_a_failed_write_keeps_none_of_the_document(tmp_path):
    class FailingSecondWrite(KnowledgeBase):
        """Chroma fails on the second batch of a write (disk full, say)."""

        writes = 0

        def _write(self, col, ids, *args):
            type(self).writes += 1
            if self.writes == 2:
                raise OSError("disk full")
            super()._write(col, ids, *args)

    settings = chroma_settings(tmp_path / "chroma")
    kb = FailingSecondWrite(make_client(settings), LocalEmbeddings(), batch_size=1)
    FailingSecondWrite.writes = -10  # let the first document through
    kb.ingest("pets", DOC, "old.md", small())
    FailingSecondWrite.writes = 0
    with pytest.raises(RagError, match="nothing of it was kept"):
        kb.ingest("pets", DOC + b"\n# Fish\n\nFish swim.\n", "new.md", small())
    assert kb.documents("pets") == {"old.md": 2}


def test_a_query_with_another_embedder_is_refused(kb, tmp_path):
    kb.ingest("pets", DOC, "pets.md", small())

    class OtherEmbeddings(LocalEmbeddings):
        info = EmbedderInfo("openai:text-embedding-3-small", 1536)

    other = KnowledgeBase(kb.client, OtherEmbeddings())
    with pytest.raises(RagError) as err:
        other.search("pets", "cats")
    assert "built with local:all-MiniLM-L6-v2 (384 dimensions)" in str(err.value)
    assert "openai:text-embedding-3-small (1536)" in str(err.value)
    with pytest.raises(RagError, match="was built with"):
        other.ingest("pets", b"More text.", "more.txt", small())


def test_the_store_persists_across_a_process_restart(tmp_path):
    path = tmp_path / "chroma"
    code = ("import sys; from helpers import chroma_settings; "
            "from llmapp.rag.store import knowledge_base; "
            "from llmapp.rag.chunking import ChunkSettings; "
            "kb = knowledge_base(chroma_settings(sys.argv[1])); "
            "print(kb.ingest('pets', b'Cats purr. Dogs bark.', 'p.txt', ChunkSettings()).status)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         cwd=ROOT / "tests", check=True)
    assert out.stdout.strip() == "added"
    kb = knowledge_base(chroma_settings(path))
    assert kb.documents("pets") == {"p.txt": 1}
    assert kb.ingest("pets", b"Cats purr. Dogs bark.", "p.txt", ChunkSettings()).status == \
        "unchanged"


def test_search_options(kb):
    for path in sorted(HANDBOOK.iterdir()):
        kb.ingest("handbook", path.read_bytes(), path.name, ChunkSettings("recursive", 300, 50))
    plain = kb.search("handbook", "chunk size and overlap", 4, retriever="dense")
    assert [h.score for h in plain] == sorted((h.score for h in plain), reverse=True)
    assert {h.found_by for h in plain} == {"dense"}
    assert all(-1 <= h.score <= 1 for h in plain)
    only = kb.search("handbook", "chunk size and overlap", 4, sources=["02_prompting.txt"])
    assert {h.source for h in only} == {"02_prompting.txt"}
    high = kb.search("handbook", "chunk size and overlap", 10, score_threshold=0.4)
    assert high and all(h.score >= 0.4 for h in high)
    mmr = kb.search("handbook", "chunk size and overlap", 4, mmr=True, fetch_k=20,
                    retriever="dense")
    assert len(mmr) == 4 and mmr[0].id == plain[0].id
    hybrid = kb.search("handbook", "chunk size and overlap", 4)
    assert len(hybrid) == 4 and {h.found_by for h in hybrid} <= {"dense", "lexical", "both"}
    assert "both" in {h.found_by for h in hybrid}
    capped = kb.search("handbook", "chunk size and overlap", 4, max_per_source=1)
    assert len({h.source for h in capped}) == len(capped) == 3  # three documents
    with pytest.raises(RagError, match="Unknown retriever 'bm99'"):
        kb.search("handbook", "x", 1, retriever="bm99")
    pdf = [h for h in kb.search("handbook", "cosine similarity of vectors", 3)
           if h.source.endswith(".pdf")]
    assert pdf and pdf[0].page == 2 and pdf[0].cite().startswith("03_rag_in_practice.pdf, page 2")


def test_hybrid_finds_an_exact_name_that_embeddings_miss(kb):
    for path in sorted(HANDBOOK.iterdir()):
        kb.ingest("handbook", path.read_bytes(), path.name, ChunkSettings("recursive", 300, 50))
    kb.ingest("handbook", b"The flag --xq-frobnicate turns the turbo encabulator on.", "flags.txt",
              ChunkSettings("recursive", 300, 50))
    lexical = kb.search("handbook", "xq-frobnicate", 3, retriever="lexical")
    assert lexical[0].source == "flags.txt" and lexical[0].found_by == "lexical"
    assert -1 <= lexical[0].score <= 1  # a cosine similarity, computed for it
    hybrid = kb.search("handbook", "what does xq-frobnicate do?", 3)
    assert "flags.txt" in [h.source for h in hybrid]


WRITER = """
import sys
from llmapp.rag.chunking import ChunkSettings
from llmapp.rag.store import knowledge_base
from llmapp.settings import resolve
kb = knowledge_base(resolve())
action, source, text = sys.argv[1:4]
if action == "ingest":
    kb.ingest("notes", text.encode(), source, ChunkSettings("recursive", 300, 50))
else:
    kb.delete_document("notes", source)
"""


@pytest.mark.parametrize("place", ["disk", "server"])
def test_the_lexical_index_follows_chroma_across_app_instances(place, tmp_path, request):
    """Another app instance adds, replaces and deletes; this one's BM25
    follows. On disk the other instance is another session of this process
    (Chroma's on-disk client is not for several processes); with a server it
    is another process."""
    env = {"LLMAPP_CHROMA_PATH": str(tmp_path / "chroma")}
    if place == "server":
        env = {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(request.getfixturevalue(
            "chroma_server")), "LLMAPP_CHROMA_PATH": str(tmp_path / "unused")}
    settings = chroma_settings(env["LLMAPP_CHROMA_PATH"], **{
        k: v for k, v in env.items() if k != "LLMAPP_CHROMA_PATH"})
    reader = knowledge_base(settings)
    writer = knowledge_base(settings)

    def other_instance(action, source, text):
        if place == "server":
            subprocess.run([sys.executable, "-c", WRITER, action, source, text], check=True,
                           cwd=ROOT, env={**__import__("os").environ, **env},
                           capture_output=True)
        elif action == "ingest":
            writer.ingest("notes", text.encode(), source, ChunkSettings("recursive", 300, 50))
        else:
            writer.delete_document("notes", source)

    def lexical(word):
        return [h.source for h in reader.search("notes", word, 3, retriever="lexical")]

    other_instance("ingest", "keep.md", "Ordinary words about gardens and rain.")
    other_instance("ingest", "a.md", "The zebrafinch sings at dawn.")
    assert lexical("zebrafinch") == ["a.md"]
    other_instance("ingest", "a.md", "The quokka smiles at noon.")  # replaced
    assert lexical("zebrafinch") == [] and lexical("quokka") == ["a.md"]
    other_instance("delete", "a.md", "")
    assert lexical("quokka") == [] and lexical("gardens") == ["keep.md"]


def test_empty_and_missing_collections_and_bad_names(kb):
    with pytest.raises(RagError, match="There is no collection 'nothing'"):
        kb.search("nothing", "hello")
    kb.ingest("pets", DOC, "pets.md", small())
    kb.delete_document("pets", "pets.md")
    with pytest.raises(RagError, match="is empty"):
        kb.search("pets", "hello")
    with pytest.raises(RagError, match="Type a question"):
        kb.search("pets", "  ")
    for bad in ("a", "my docs", "-x-", "ü" * 5):
        with pytest.raises(RagError, match="not a valid collection name"):
            check_name(bad)


def test_parent_child_returns_the_parent(kb):
    text = "\n\n".join(f"Section {i}. " + "This sentence is filler text. " * 12 +
                       f"The secret code of section {i} is {i * 111}." for i in range(3))
    kb.ingest("parents", text.encode(), "pc.txt",
              ChunkSettings("parent-child", chunk_size=120, chunk_overlap=20, parent_size=500))
    [hit] = kb.search("parents", "What is the secret code of section 2?", 1)
    assert "222" in hit.context and len(hit.context) > len(hit.text)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    port = free_port()
    path = tmp_path_factory.mktemp("chroma_server")
    chroma = [p for p in (sys.prefix + "/bin/chroma",) if __import__("os").path.exists(p)]
    log = (path / "server.log").open("w")
    proc = subprocess.Popen([chroma[0], "run", "--path", str(path / "data"), "--host",
                             "127.0.0.1", "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", 60, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_server_mode_with_http_client(chroma_server, tmp_path):
    settings = chroma_settings(tmp_path / "unused", CHROMA_HOST="127.0.0.1",
                               CHROMA_PORT=str(chroma_server))
    kb = knowledge_base(settings)
    assert type(kb.client).__name__ != "PersistentClient"
    assert kb.ingest("pets", DOC, "pets.md", small()).status == "added"
    assert kb.ingest("pets", DOC, "pets.md", small()).status == "unchanged"
    assert "Dogs bark" in kb.search("pets", "barking", 1)[0].text
    # a second client (another app instance) sees the same collection
    other = knowledge_base(settings)
    assert other.documents("pets") == {"pets.md": 2}
    assert not (tmp_path / "unused").exists()


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    settings = chroma_settings(tmp_path, CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(free_port()))
    with pytest.raises(RagError, match="Cannot reach the Chroma server at http://127.0.0.1:"):
        make_client(settings)
    with pytest.raises(RagError, match="CHROMA_HEADERS must be a JSON object"):
        make_client(chroma_settings(tmp_path, CHROMA_HOST="127.0.0.1",
                                    CHROMA_HEADERS="Bearer x"))
