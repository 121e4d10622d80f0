"""RAG: ingest throughput against raw chromadb, and query latency at 10,000 chunks.

1. Ingest: the same synthetic documents, embedded with the same local
   all-MiniLM-L6-v2, go into Chroma two ways in one run:
   * ``raw``: the chunk texts (made beforehand, untimed) are embedded and
     written with ``collection.add`` in batches;
   * ``llmapp``: ``KnowledgeBase.ingest_many`` over the files: load, chunk,
     hash, check for an older version, embed (files grouped), write.
   Prints chunks/s for both, their ratio (target >= 0.9) and the embedder's
   share of llmapp's time.
2. Query: a collection of ``--chunks`` chunks (20 per document, 4 per
   section heading); ``--queries`` searches through ``KnowledgeBase.search``,
   hybrid (query embedding included, no LLM). Prints p50 and p95 (target p50
   <= 50 ms), and the first query's time, which builds the BM25 and
   section-heading indexes.

    python benchmarks/bench_rag.py [--docs 60] [--chunks 10000] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from llmapp.rag.chunking import ChunkSettings, chunk
from llmapp.rag.embeddings import LocalEmbeddings
from llmapp.rag.loaders import load
from llmapp.rag.store import KnowledgeBase, make_client
from llmapp.settings import resolve

WORDS = ("retrieval chunk embedding vector store query answer source page model token "
         "window prompt context cosine similarity overlap parent child header collection "
         "document ingest search latency throughput batch server client disk").split()


def documents(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        paragraphs = []
        for _ in range(8):
            sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))).capitalize()
                         + "." for _ in range(5)]
            paragraphs.append(" ".join(sentences))
        docs.append((f"doc{i:04d}.txt", f"Document {i}\n\n".encode()
                     + "\n\n".join(paragraphs).encode()))
    return docs


def bench_ingest(n_docs: int) -> dict:
    settings = ChunkSettings()
    embedder = LocalEmbeddings()
    embedder.embed_documents(["warm up"])
    docs = documents(n_docs)
    texts = [c.text for name, data in docs for c in chunk(load(data, name), settings)]
    with tempfile.TemporaryDirectory() as tmp:
        client = make_client(resolve(environ={"LLMAPP_CHROMA_PATH": tmp}, env_file={}))
        col = client.get_or_create_collection("raw", embedding_function=None,
                                              metadata={"hnsw:space": "cosine"})
        start = time.perf_counter()
        for i in range(0, len(texts), 256):
            batch = texts[i:i + 256]
            col.add(ids=[f"r{i + j}" for j in range(len(batch))],
                    embeddings=embedder.embed_documents(batch), documents=batch)
        raw_s = time.perf_counter() - start
        kb = KnowledgeBase(client, embedder)
        start = time.perf_counter()
        embed_s = 0.0
        for _, result in kb.ingest_many("llmapp", docs, settings):
            embed_s += result.embed_seconds
        ours_s = time.perf_counter() - start
    return {"chunks": len(texts), "raw_chunks_per_s": len(texts) / raw_s,
            "llmapp_chunks_per_s": len(texts) / ours_s,
            "ratio": raw_s / ours_s, "embedder_share": embed_s / ours_s}


def bench_query(n_chunks: int, n_queries: int) -> dict:
    rng = random.Random(1)
    embedder = LocalEmbeddings()
    with tempfile.TemporaryDirectory() as tmp:
        client = make_client(resolve(environ={"LLMAPP_CHROMA_PATH": tmp}, env_file={}))
        kb = KnowledgeBase(client, embedder)
        col = client.get_or_create_collection(
            "big", embedding_function=None,
            metadata={"hnsw:space": "cosine", "embedder": kb.info.id,
                      "dimension": kb.info.dimension})
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
                 for _ in range(n_chunks)]
        # 20 chunks per document, 4 per section: 2,500 section paths at 10k chunks
        titles = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(n_chunks // 20 + 1)]
        heads = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(n_chunks // 4 + 1)]
        for i in range(0, n_chunks, 512):
            batch = texts[i:i + 512]
            col.add(ids=[f"c{i + j}" for j in range(len(batch))],
                    embeddings=embedder.embed_documents(batch), documents=batch,
                    metadatas=[{"source": f"doc{(i + j) // 20}.txt", "index": (i + j) % 20,
                                "section": f"{titles[(i + j) // 20]} > {heads[(i + j) // 4]}"}
                               for j in range(len(batch))])
        queries = [" ".join(rng.choice(WORDS) for _ in range(8)) + "?" for _ in range(n_queries)]
        start = time.perf_counter()
        kb.search("big", "warm up", 4)  # builds the BM25 and section-heading indexes
        first_ms = (time.perf_counter() - start) * 1000
        times = []
        for q in queries:
            start = time.perf_counter()
            kb.search("big", q, 4)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"chunks": n_chunks, "queries": n_queries, "first_query_ms": first_ms,
            "p50_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * (len(times) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    ingest = bench_ingest(args.docs)
    print(f"ingest, {ingest['chunks']} chunks: raw chromadb {ingest['raw_chunks_per_s']:.0f} "
          f"chunks/s, llmapp {ingest['llmapp_chunks_per_s']:.0f} chunks/s, ratio "
          f"{ingest['ratio']:.2f} (target >= 0.9: {'met' if ingest['ratio'] >= 0.9 else 'MISSED'})"
          f"; the embedder takes {ingest['embedder_share']:.0%} of llmapp's time")
    query = bench_query(args.chunks, args.queries)
    print(f"query at {query['chunks']} chunks: p50 {query['p50_ms']:.1f} ms, p95 "
          f"{query['p95_ms']:.1f} ms (target p50 <= 50 ms: "
          f"{'met' if query['p50_ms'] <= 50 else 'MISSED'}); the first query, which builds "
          f"the indexes: {query['first_query_ms']:.0f} ms")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "rag.json").write_text(json.dumps({"ingest": ingest, "query": query}, indent=2))


if __name__ == "__main__":
    main()
