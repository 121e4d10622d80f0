"""Embed the safety filter's exemplars once, for the wheel:
``llmapp/safety/data/exemplars.npz`` (float16 vectors and the digest of the
exemplars they came from). Run after editing ``exemplars.json``;
``tests/test_safety.py`` fails while the file is stale.

    .venv/bin/python scripts/embed_exemplars.py
"""

from __future__ import annotations

import numpy as np

from llmapp.rag.embeddings import LocalEmbeddings
from llmapp.safety.local import EMBEDDED, digest, exemplars


def main() -> None:
    texts, labels = exemplars()
    vectors = np.asarray(LocalEmbeddings().embed_documents(texts), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.savez_compressed(EMBEDDED, vectors=vectors.astype(np.float16),
                        digest=np.array(digest(texts, labels)))
    print(f"{EMBEDDED}: {len(texts)} exemplars, {EMBEDDED.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
