"""The ONNX embedder against sentence-transformers, the reference it replaces."""

import itertools

import numpy as np
import pytest

from llmapp.rag.embeddings import LocalEmbeddings, local_model_dir
from llmapp.rag.onnx_minilm import GRAPH_FILE, WEIGHTS_MAP

pytestmark = pytest.mark.slow

SUBJECTS = ["The invoice", "Our RAG pipeline", "A small language model", "The river",
            "Chunk overlap", "The Streamlit page", "Mein Hund", "El tokenizador"]
VERBS = ["answers questions about", "was written before", "fails to parse",
         "is cheaper than", "repeats", "depends on"]
OBJECTS = ["the handbook.", "TCP and UDP!", "1,024 tokens (roughly).",
           "\u00e9t\u00e9 \u2014 summer",
           "`print('hi')` in Python", "emoji \U0001F600 and CJK \u65e5\u672c\u8a9e"]


def sentences() -> list[str]:
    """240 varied texts: short and long, punctuation, code, other scripts."""
    base = [" ".join(p) for p in itertools.product(SUBJECTS, VERBS, OBJECTS)][:230]
    return base + ["", "a", "?", "word " * 300, "\n\n".join(base[:20]),
                   "ALL CAPS SHOUTING", "http://example.com/a?b=c", "3.14159 2.71828",
                   "x" * 2000, "Tabs\tand\nnewlines"]


def test_the_repo_carries_the_graph_but_no_weights():
    assert GRAPH_FILE.stat().st_size < 1_000_000  # the weights (~90 MB) are not in it
    assert WEIGHTS_MAP.is_file()


def test_onnx_matches_sentence_transformers_on_240_texts():
    from sentence_transformers import SentenceTransformer

    texts = sentences()
    assert len(texts) == 240
    ours = np.array(LocalEmbeddings().embed_documents(texts))
    reference = SentenceTransformer(str(local_model_dir()), device="cpu").encode(
        texts, batch_size=32, normalize_embeddings=True)
    assert ours.shape == reference.shape == (240, 384)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.999, f"worst cosine {cosines.min():.5f}"
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_order_and_batching_do_not_change_a_vector():
    embedder = LocalEmbeddings()
    texts = ["short", "a much longer text about chunk overlap " * 20, "medium length text"]
    together = np.array(embedder.embed_documents(texts))
    alone = np.array([embedder.embed_query(t) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.embed_documents([]) == []


def test_a_lone_surrogate_is_embedded_not_a_crash():
    """The tokenizer refuses lone surrogates (a TypeError); every caller of the
    embedder (RAG queries, ingest, the safety and topic checkers) gets a vector."""
    [vector] = LocalEmbeddings().embed_documents(["bread \ud800 today"])
    assert len(vector) == 384
