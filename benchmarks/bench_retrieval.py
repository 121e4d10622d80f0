"""Retrieval quality on real documentation: llmapp's settings against a
plain pipeline, in one run, on the same questions and the same embedder.

* ``plain``: BeautifulSoup ``get_text()``, LangChain
  ``RecursiveCharacterTextSplitter(1000, 150)``, all-MiniLM-L6-v2, Chroma,
  top k by cosine similarity (the baseline of issue 10).
* ``llmapp <chunking> / <retriever>``: ``KnowledgeBase.ingest`` with each
  chunking, then each retriever of ``llmapp eval retrieval``.

Prints hit@k, MRR@k and nDCG@k for each, and the default's MRR over the
plain pipeline's. Targets (issue 10): MRR@5 >= 0.95, hit@5 >= 98%, and the
plain pipeline beaten by >= 0.03 MRR.

The corpus is Click's and Flask's HTML docs (``scripts/build_docs_corpus.py``
writes it to ``benchmarks/corpus``); the questions are
``tests/data/retrieval_questions.jsonl``.

    python benchmarks/bench_retrieval.py [--corpus benchmarks/corpus]
        [--questions tests/data/retrieval_questions.jsonl] [--k 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_file import save  # noqa: E402

from llmapp.evaluation.command import RETRIEVAL_PRESETS  # noqa: E402
from llmapp.evaluation.retrieval import evaluate, load_questions  # noqa: E402
from llmapp.rag.chunking import ChunkSettings  # noqa: E402
from llmapp.rag.embeddings import LocalEmbeddings  # noqa: E402
from llmapp.rag.store import KnowledgeBase, make_client  # noqa: E402
from llmapp.settings import resolve  # noqa: E402

CHUNKINGS = ("markdown", "recursive")
SHOWN = ("dense", "hybrid", "hybrid-cap1", "hybrid-cap2", "hybrid-mmr")
DEFAULT = ("markdown", "hybrid")


def pages(corpus: Path) -> list[tuple[str, bytes]]:
    """``(source, bytes)`` of every HTML page, sources relative to ``corpus``."""
    return [(str(p.relative_to(corpus)), p.read_bytes()) for p in sorted(corpus.rglob("*.html"))]


def plain_pipeline(docs, folder: Path, embedder):
    """The baseline, built with chromadb and LangChain directly; returns a
    search function (question -> top sources) and chunk counts per source."""
    import chromadb
    from bs4 import BeautifulSoup
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)
    col = chromadb.PersistentClient(str(folder)).create_collection(
        "plain", embedding_function=None, metadata={"hnsw:space": "cosine"})
    counts = {}
    for source, data in docs:
        text = BeautifulSoup(data.decode("utf-8", "replace"), "html.parser").get_text()
        chunks = splitter.split_text(text)
        counts[source] = len(chunks)
        for start in range(0, len(chunks), 256):
            batch = chunks[start:start + 256]
            col.add(ids=[f"{source}-{start + i}" for i in range(len(batch))],
                    embeddings=embedder.embed_documents(batch), documents=batch,
                    metadatas=[{"source": source}] * len(batch))

    def search(question: str, k: int) -> list[str]:
        found = col.query(query_embeddings=[embedder.embed_query(question)], n_results=k,
                          include=["metadatas"])
        return [m["source"] for m in found["metadatas"][0]]

    return search, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "benchmarks" / "corpus")
    parser.add_argument("--questions", type=Path,
                        default=ROOT / "tests" / "data" / "retrieval_questions.jsonl")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    docs = pages(args.corpus)
    if not docs:
        raise SystemExit(f"No HTML pages in {args.corpus}: run scripts/build_docs_corpus.py.")
    questions = load_questions(args.questions)
    embedder = LocalEmbeddings()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        search, counts = plain_pipeline(docs, Path(tmp) / "plain", embedder)
        plain = evaluate(questions, lambda q: search(q, args.k), args.k, counts, "plain")
        rows.append(("plain", "", plain, time.perf_counter() - started))
        kb = KnowledgeBase(make_client(resolve(environ={"LLMAPP_CHROMA_PATH": f"{tmp}/llmapp"},
                                               env_file={})), embedder)
        for chunking in CHUNKINGS:
            started = time.perf_counter()
            for source, data in docs:
                kb.ingest(chunking, data, source, ChunkSettings(chunking))
            seconds = time.perf_counter() - started
            counts = kb.documents(chunking)
            for name in SHOWN:
                options = RETRIEVAL_PRESETS[name]

                def run(q, options=options, collection=chunking):
                    return [h.source for h in kb.search(collection, q, args.k, **options)]

                rows.append((chunking, name, evaluate(questions, run, args.k, counts, name),
                             seconds))
    k = args.k
    print(f"{len(questions)} questions over {len(docs)} pages, k={k}")
    print(f"{'pipeline':<34} {'hit@' + str(k):>7} {'MRR@' + str(k):>7} {'nDCG@' + str(k):>7} "
          f"{'p50 ms':>7}")
    for chunking, name, r, _ in rows:
        label = "plain (get_text, 1000/150, dense)" if chunking == "plain" else \
            f"llmapp {chunking} / {name}"
        print(f"{label:<34} {r.hit:>7.3f} {r.mrr:>7.3f} {r.ndcg:>7.3f} {r.p50_ms:>7.1f}")
    default = next(r for c, n, r, _ in rows if (c, n) == DEFAULT)
    print(f"\ndefault ({' / '.join(DEFAULT)}) MRR {default.mrr:.3f} vs plain {plain.mrr:.3f}: "
          f"{default.mrr - plain.mrr:+.3f} (target >= +0.03; MRR >= 0.95, hit >= 0.98)")
    save("retrieval.json", {"k": k, "questions": len(questions), "pages": len(docs),
                            "results": [{"chunking": c, "retriever": n, **r.to_dict(),
                                         "ingest_s": round(s, 1)} for c, n, r, s in rows]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
