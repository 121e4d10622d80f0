"""Build data/handbook/03_rag_in_practice.pdf, the sample corpus's PDF.

The text lives here, one string per page, so the PDF can be rebuilt and
reviewed as text. Needs fpdf2 (a test dependency):

    python scripts/make_corpus.py
"""

from pathlib import Path

from fpdf import FPDF

TITLE = "RAG in practice"
PAGES = [
    """Chunking decides what retrieval can find.

A whole document is too coarse: its embedding averages everything in it, so it matches no question well. A single sentence is easy to find but carries too little to answer from.

Fixed-size windows with overlap are the usual compromise. A chunk size of 500 to 1,000 characters works for prose. An overlap of 10 to 20 percent keeps a sentence that a cut would break whole in at least one chunk.

Parent-child chunking answers the trade-off directly: small child chunks are embedded and searched, and the larger parent section they belong to is what the model reads.

Markdown-aware chunking cuts at headers, so each chunk stays within one section and keeps its heading path.""",
    """Embeddings map text to vectors.

An embedding model turns a piece of text into a vector of a few hundred numbers. Texts with similar meaning get vectors that point in similar directions. Retrieval compares them by cosine similarity, the cosine of the angle between two vectors, from -1 to 1.

The model all-MiniLM-L6-v2 produces 384-dimensional vectors and runs on a laptop CPU. OpenAI's text-embedding-3-small produces 1,536 dimensions.

A collection must be queried with the same embedding model that built it. Vectors from two different models live in different spaces, and comparing them returns nonsense.""",
    """Vector stores keep the vectors and search them.

Chroma stores chunks with their embeddings and metadata, such as the source file and page number. It can run inside the application, persisting to a folder on disk, or as a separate server that several application instances share.

Similarity search returns the k nearest chunks. Max marginal relevance returns chunks that are relevant but not redundant. A score threshold drops weak matches, and a metadata filter restricts the search to chosen documents.

Re-ingesting an unchanged file should add nothing: chunk ids derived from a hash of the content make ingestion idempotent.""",
    """Grounded answers cite their sources.

The prompt numbers each retrieved chunk and asks the model to answer only from them, citing each claim as [1], [2] and so on. When the context does not contain the answer, the model should say so instead of guessing.

Showing the retrieved chunks next to the answer lets a reader check every claim. Evaluation of a RAG system measures retrieval and generation separately: hit rate at k tells whether the right chunk was retrieved at all, and faithfulness tells whether the answer stays within it.""",
]


def main() -> None:
    pdf = FPDF()
    pdf.set_title(TITLE)
    pdf.set_author("llmapp")
    pdf.set_creation_date(__import__("datetime").datetime(2026, 1, 1))
    for number, text in enumerate(PAGES, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, f"{TITLE} - page {number}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    out = Path(__file__).resolve().parents[1] / "data" / "handbook" / "03_rag_in_practice.pdf"
    pdf.output(str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(PAGES)} pages)")


if __name__ == "__main__":
    main()
