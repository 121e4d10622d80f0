"""Stage 3: retrieval-augmented generation over Chroma.

Retrieve from your documents, augment the prompt with what was found, and
generate from it, citing each chunk used.

* :mod:`.loaders`: .txt, .md, .pdf (page numbers kept) and .html into text.
* :mod:`.chunking`: recursive windows, sentences, parent-child, Markdown headers.
* :mod:`.embeddings`: local all-MiniLM-L6-v2 (offline) or OpenAI embeddings.
* :mod:`.store`: Chroma on disk or a Chroma server; idempotent ingestion.
* :mod:`.answer`: the grounded prompt and cited, streamed answers.

chromadb and ONNX Runtime load lazily, on first use.
"""

from llmapp.errors import LlmappError


class IngestError(LlmappError):
    """A file could not be ingested; the message says why and what to do.
    Other files of the same batch still ingest."""


class RagError(LlmappError):
    """The store, a collection or a query cannot be used as asked."""
