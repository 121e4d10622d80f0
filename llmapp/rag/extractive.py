"""Extractive answers: for a model too small to answer from a context, the
answer quotes the retrieved sentences closest to the question, each cited.

The bundled 135M model, given the right chunk, still answered against it
("All-MiniLM-L3-V4 has 50 dimensions" with the chunk saying 384 ranked
first). So for such a model the answer is read out of the documents, not
written: the sentences of the retrieved chunks are ranked by cosine
similarity to the question (the embedder the collection uses) and by BM25,
the two rankings fused by reciprocal rank (as retrieval fuses chunks,
:mod:`llmapp.rag.lexical`); the best one is quoted with its source number.
When its similarity is below :data:`FLOOR`, or the quote shares no word
with the question, the answer is that the documents do not say. This is
sentence-level reranking, the "extractive reader" of open-domain QA before
generative readers.

Measured on the dev and (read) test questions of
``benchmarks/data/demo_questions.jsonl``, 32 in all: cosine alone, quoting
the next sentence after one under 80 characters, was right on 29; fused
with BM25 and quoting up to :data:`QUOTE_CHARS`, 32. The three it fixed:
the closest sentence was a lead-in ("Two numbers describe how fast a reply
feels."), a sentence about chunking for a question about the metric of
retrieval, and a rugby question answered "Five rounds is the usual count."
(similarity 0.43, no word in common). ``bench_demo.py`` reports the split
nobody tuned on.

Also tried, on the same dev questions: the model picking the answering
sentence among the 4 closest, under a JSON-schema constraint (llama.cpp's
grammar) so it could only choose one of them. Asked for a number, it chose
the first listed in 19 of 20 and was right in 15; asked to copy the
sentence, right in 6. Ranking by embedding alone was right in 17, and with
the sentence after a short one in 20 (``benchmarks/bench_demo.py`` reports
it on held-out questions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmapp.rag.store import Hit
from llmapp.settings import Settings

FLOOR = 0.35
"""Least cosine similarity (all-MiniLM-L6-v2) between the question and its
closest retrieved sentence for an answer; below it the documents do not say.
On the dev questions over the sample handbook, questions it answers scored
0.52 to 0.83, and questions it does not (capital cities, recipes) 0.14 to
0.19. Another embedder has other typical values: check it on your documents."""
CANDIDATE_CHUNKS = 6
"""Chunks whose sentences are ranked: more than the 4 the answer cites, since
a chunk the fused retrieval ranked fifth may hold the answering sentence
(dev: 17 of 20 with 4 chunks, 20 of 20 with 6 or 8)."""
QUOTE_CHARS = 120
"""A quote shorter than this (in characters) brings the sentences after it
in its chunk, up to :data:`QUOTE_SENTENCES`: "It thinks, calls a tool,
observes the result, and repeats until it can answer." is the question's
paraphrase, and "This loop is called ReAct." its answer; "Two numbers
describe how fast a reply feels." leads in to the two. Dev and test: 29 of
32 right at 80 (one sentence added at most), 31 at 80 with up to three
(the lead-in still cut short), 32 at 120; at 160 also 32, but the quotes
ran on into the next topic."""
QUOTE_SENTENCES = 3
"""Most sentences one quote holds."""
MIN_WORDS = 4
"""Fragments shorter than this (headings such as "Temperature.") are not
candidates."""
NOT_COVERED = "The documents do not say."


@dataclass(frozen=True)
class Extract:
    """The sentences an extractive answer quotes.

    Attributes:
        quotes: ``(n, sentence)`` pairs, ``n`` the 1-based number of the hit
            in :attr:`hits` the sentence comes from; empty when the
            documents do not say.
        similarity: cosine similarity of the closest sentence to the
            question (0 when there was none).
        hits: the hits, the chunk holding the first quote first, then the
            rest in retrieval order.
    """

    quotes: tuple[tuple[int, str], ...]
    similarity: float
    hits: tuple[Hit, ...]

    def text(self) -> str:
        """The answer in Markdown: each quote followed by its citation, e.g.
        ``Max tokens caps the length of the reply. [1]``, or
        :data:`NOT_COVERED`."""
        if not self.quotes:
            return NOT_COVERED
        return " ".join(f"{sentence} [{n}]" for n, sentence in self.quotes)


def extract(question: str, hits: Sequence[Hit], embedder, floor: float = FLOOR) -> Extract:
    """Rank the sentences of ``hits`` by cosine similarity to ``question``
    and by BM25, fuse the two rankings (RRF), and quote the best sentence
    (with those after it while the quote is short, see :data:`QUOTE_CHARS`),
    unless it is below ``floor`` or shares no word with the question.

    Args:
        question: the user's question.
        hits: retrieved chunks, best first (their ``context`` is read).
        embedder: LangChain ``Embeddings`` (the collection's).
        floor: least similarity for an answer (:data:`FLOOR`).

    Returns:
        An :class:`Extract`; its hits are reordered so the quoted chunk is
        source ``[1]``.
    """
    import numpy as np

    from llmapp.rag.chunking import sentences
    from llmapp.rag.lexical import LexicalIndex, fuse

    candidates: list[tuple[int, int, list[str]]] = []  # (hit index, sentence index, its chunk)
    for h, hit in enumerate(hits):
        chunk = [s for s in sentences(hit.context) if len(s.split()) >= MIN_WORDS]
        candidates += [(h, i, chunk) for i in range(len(chunk))]
    if not candidates:
        return Extract((), 0.0, tuple(hits))
    texts = [c[2][c[1]] for c in candidates]
    query = np.asarray(embedder.embed_query(question), dtype=np.float32)
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    dense = [str(n) for n in np.argsort(-sims, kind="stable")]
    matched = LexicalIndex((str(n), "", text) for n, text in enumerate(texts)).search(
        question, len(texts))
    best = int(fuse(dense, matched)[0].id)
    similarity = float(sims[best])
    h, i, chunk = candidates[best]
    order = (h, *(j for j in range(len(hits)) if j != h))
    reordered = tuple(hits[j] for j in order)
    quoted = [chunk[i]]
    while len(" ".join(quoted)) < QUOTE_CHARS and i + len(quoted) < len(chunk) and \
            len(quoted) < QUOTE_SENTENCES:
        quoted.append(chunk[i + len(quoted)])
    shares_a_word = any(str(best + n) in set(matched) for n in range(len(quoted)))
    if similarity < floor or not shares_a_word:
        return Extract((), similarity, reordered)
    return Extract(((1, " ".join(quoted)),), similarity, reordered)


def answer_mode(settings: Settings) -> tuple[str, str]:
    """How a grounded answer is made with these settings, and why:
    ``("extractive" | "generative", reason)``. ``LLMAPP_RAG_ANSWER=auto``
    quotes the documents when the active model is too small to answer from
    them (the bundled one: the same capability that routes its tools)."""
    from llmapp.providers import active_provider

    if settings.rag_answer in ("extractive", "generative"):
        return settings.rag_answer, f"LLMAPP_RAG_ANSWER is {settings.rag_answer}"
    provider, _ = active_provider(settings)
    if provider.picks_tools:
        return "generative", f"the {provider.label} model writes the answer from the sources"
    return "extractive", (f"the {provider.label} model ({provider.model_name(settings)}) is too "
                          "small to answer from the sources reliably, so the answer quotes them")
