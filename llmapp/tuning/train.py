"""LoRA fine-tuning of the bundled model on the CPU, and its export to a GGUF
adapter that llama.cpp loads at run time.

The recipe was measured on 2 cores (issue 19, and ``../shared/FACTS.md``):

* **Weights**: transformers loads the bundled Q4_1 GGUF (``gguf_file=``,
  with the ``gguf`` package) and dequantizes it to fp32. Training against the
  served quantized base keeps a run-time adapter faithful. Trainers refuse a
  GGUF-loaded model as "quantized", so its quantizer marks are cleared.
* **Data**: each example's prompt is rendered by the served model's own
  chat template and tokenized by llama.cpp (:class:`~llmapp.providers.runtime.LocalRuntime`
  ``render`` and ``tokenize``), exactly as at inference; the answer's tokens
  and the end-of-turn token follow. The loss falls on those only (the prompt
  is masked).
* **Training**: peft LoRA on the attention and MLP projections only (the
  embeddings are tied, and llama.cpp refuses adapters on ``lm_head`` or
  ``token_embd``), a plain PyTorch loop with AdamW (simpler and faster here
  than TRL's ``SFTTrainer``, whose bf16 and gradient-checkpointing defaults
  took 13.5 s/step on this CPU). Logits are computed at answer positions
  only: over a 49,152-token vocabulary the full logits were most of the
  4.3 GB peak.
* **Export**: a GGUF LoRA adapter written with ``gguf.GGUFWriter``, as
  llama.cpp's ``convert_lora_to_gguf.py`` writes one (that script ships only
  in llama-cpp-python's source package): ``blk.N.<tensor>.weight.lora_a`` and
  ``.lora_b``, with the rows of the q and k projections' ``lora_b`` permuted
  as llama.cpp's converter permutes those weights. Never merged back into
  Q4_1: the learned change is smaller than half a Q4_1 step and rounds away.

Everything heavy (torch, transformers, peft, gguf) is imported inside the
functions: the ``tune`` extra, never in the default install.
"""

from __future__ import annotations

import importlib.util
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmapp.errors import LlmappError

EXTRA_PACKAGES = ("torch", "transformers", "peft", "gguf")
"""What training needs, from the ``tune`` extra."""
INSTALL_HINT = ('pip install torch --index-url https://download.pytorch.org/whl/cpu && '
                'pip install -e ".[tune]"')
"""How to add the extra with the CPU build of torch (PyPI's Linux torch is the
CUDA build, 2.7 GB more)."""
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
              "o_proj": "attn_output", "gate_proj": "ffn_gate", "up_proj": "ffn_up",
              "down_proj": "ffn_down"}
"""Hugging Face llama module -> llama.cpp tensor (gguf-py's ``TensorNameMap``)."""
IGNORE = -100
"""Label of a position the loss skips (PyTorch's ``cross_entropy`` default)."""


class TuningError(LlmappError):
    """Training cannot start or failed; the message says why and what to do."""


class Cancelled(TuningError):
    """The run was cancelled; nothing was registered."""


def missing_packages() -> list[str]:
    """The packages of the ``tune`` extra that are not installed."""
    return [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is None]


MIN_STEPS = 36
"""Optimizer steps the automatic epochs aim for at least. The demo set (95
examples, batch 8) took its style in 36 steps (3 epochs: 20 of 20 held-out
answers in its form); 60 examples at 3 epochs are 21 steps, and took none
(issue 29)."""
MIN_EPOCHS, MAX_EPOCHS = 3, 15


def epochs_for(examples: int, batch_size: int) -> int:
    """The epochs a run of ``examples`` takes when none are given: enough
    for :data:`MIN_STEPS` optimizer steps, from :data:`MIN_EPOCHS` (large
    sets) to :data:`MAX_EPOCHS` (tiny ones, which then mostly memorise)."""
    per_epoch = max(1, math.ceil(examples / batch_size))
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch)))


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        name: the tuned model's name (see :func:`llmapp.tuning.models.check_name`).
        epochs: passes over the training examples; 0 chooses them from the
            dataset's size (:func:`epochs_for`).
        learning_rate: AdamW's peak rate; it decays linearly to 0.
        rank: LoRA rank r; ``alpha`` scales the update by alpha / r.
        batch_size: examples per optimizer step.
        max_tokens: examples longer than this (prompt and answer, in
            tokens) are cut at the end.
        seed: shuffling and initialization.
        threads: torch threads; 0 means the cores this process may use.
    """

    name: str
    epochs: int = 0
    learning_rate: float = 2e-4
    rank: int = 16
    alpha: int = 32
    batch_size: int = 8
    max_tokens: int = 512
    seed: int = 0
    threads: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Encoded:
    """One example as token ids, and the labels the loss reads (the prompt's
    positions are :data:`IGNORE`)."""

    ids: list[int]
    labels: list[int]


def encode(examples: Sequence[dict], runtime: Any, end_of_turn: int,
           max_tokens: int) -> list[Encoded]:
    """Token ids of chat examples (``{"messages": [..., assistant]}``), as the
    served model sees them: the prompt rendered by ``runtime`` (its GGUF's
    chat template, with the assistant's opening) and tokenized by it, then
    the answer's tokens and ``end_of_turn``.

    Raises:
        TuningError: an example whose last message is not the assistant's.
    """
    out = []
    for number, example in enumerate(examples, start=1):
        messages = example["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise TuningError(f"Example {number} does not end with the assistant's answer.")
        prompt = runtime.tokenize(runtime.render(messages[:-1]))
        answer = runtime.tokenize(messages[-1]["content"]) + [end_of_turn]
        ids = (prompt + answer)[:max_tokens]
        labels = ([IGNORE] * len(prompt) + answer)[:max_tokens]
        out.append(Encoded(ids, labels))
    return out


def load_base(gguf_path: Path, threads: int) -> Any:
    """The bundled GGUF as a trainable fp32 transformers model.

    Raises:
        TuningError: the file does not load.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(max(1, threads))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent),
                                                     gguf_file=gguf_path.name,
                                                     dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise TuningError(f"Could not load {gguf_path.name} for training: {exc}") from exc
    # Loaded from GGUF, the model counts as "quantized" and trainers refuse it.
    model.hf_quantizer = None
    model.config.quantization_config = None
    model.config.__dict__.pop("quantization_config", None)
    return model


@dataclass
class Progress:
    """Where a run stands: ``step`` of ``steps``, the batch's mean loss (nats
    per answer token), seconds since training started."""

    step: int
    steps: int
    epoch: int
    loss: float
    elapsed_s: float


@dataclass
class TrainResult:
    """What a run measured: ``steps``, ``train_s`` (the loop only),
    ``s_per_step``, ``load_s`` (the base model), ``first_loss`` and
    ``last_loss`` (means over the first and last epoch), ``peak_rss_mb``,
    ``examples``, ``answer_tokens``, and the ``epochs`` it ran."""

    steps: int
    train_s: float
    s_per_step: float
    load_s: float
    first_loss: float
    last_loss: float
    peak_rss_mb: float
    examples: int
    answer_tokens: int
    epochs: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def train(config: TrainConfig, examples: Sequence[Encoded], gguf_path: Path, adapter_out: Path,
          on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train a LoRA adapter on ``examples`` and write it to ``adapter_out``
    (a GGUF adapter; see :func:`export_adapter`). With CUDA (torch's CUDA
    build and a GPU) it trains there; the CPU path is the one measured and
    tested.

    Raises:
        Cancelled: ``should_stop`` said so; ``adapter_out`` was not written.
        TuningError: no examples, or the base does not load.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    if not examples:
        raise TuningError("There are no examples to train on.")
    from llmapp.cpus import default_threads

    threads = default_threads(config.threads).batch_cores
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    base = load_base(gguf_path, threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the CPU path is the one tested
    base.to(device)
    load_s = time.perf_counter() - started
    model = get_peft_model(base, LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0, bias="none",
        target_modules=list(TARGET_MODULES), task_type="CAUSAL_LM"))
    model.train()
    inner = model.get_base_model()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate, weight_decay=0.0)
    per_epoch = math.ceil(len(examples) / config.batch_size)
    epochs = config.epochs or epochs_for(len(examples), config.batch_size)
    steps = per_epoch * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    order = list(range(len(examples)))
    rng = random.Random(config.seed)
    losses: list[list[float]] = []
    step = 0
    started = time.perf_counter()
    for epoch in range(epochs):
        rng.shuffle(order)
        losses.append([])
        for start in range(0, len(order), config.batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled("Training was cancelled; nothing was registered.")
            batch = [examples[i] for i in order[start:start + config.batch_size]]
            loss = _loss(inner, batch)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses[-1].append(float(loss.detach()))
            if on_progress is not None:
                on_progress(Progress(step, steps, epoch + 1, losses[-1][-1],
                                     time.perf_counter() - started))
    train_s = time.perf_counter() - started
    export_adapter(inner, adapter_out, config.alpha)
    return TrainResult(
        steps=steps, train_s=train_s, s_per_step=train_s / steps, load_s=load_s,
        first_loss=sum(losses[0]) / len(losses[0]), last_loss=sum(losses[-1]) / len(losses[-1]),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        examples=len(examples),
        answer_tokens=sum(sum(label != IGNORE for label in e.labels) for e in examples),
        epochs=epochs)


def _loss(model: Any, batch: Sequence[Encoded]) -> Any:
    """Mean cross-entropy over the batch's answer tokens. Examples are padded
    on the right; the logits are computed only where a label is, from the
    decoder's hidden states (``lm_head`` on a few hundred rows instead of
    batch x length x 49,152)."""
    import torch
    import torch.nn.functional as F

    width = max(len(e.ids) for e in batch)
    device = model.lm_head.weight.device
    ids = torch.tensor([e.ids + [0] * (width - len(e.ids)) for e in batch], device=device)
    mask = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in batch],
                        device=device)
    labels = torch.tensor([e.labels + [IGNORE] * (width - len(e.labels)) for e in batch],
                          device=device)
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]  # position t predicts token t + 1
    wanted = targets != IGNORE
    logits = model.lm_head(hidden[:, :-1][wanted])
    return F.cross_entropy(logits, targets[wanted])


def permute_rows(weight: Any, n_head: int) -> Any:
    """The rows of a q or k projection (or its LoRA ``B``) in llama.cpp's
    order: llama.cpp's ``convert_hf_to_gguf.py`` (``LlamaModel.permute``)
    interleaves each head's two rotary halves. ``n_head`` is the number of
    heads the projection has (key-value heads for k)."""
    rows = weight.shape[0]
    return (weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def export_adapter(model: Any, path: Path, alpha: float) -> int:
    """Write the LoRA weights of ``model`` (a peft-injected llama model) as a
    GGUF adapter at ``path``: ``general.type`` adapter, ``adapter.type``
    lora, ``adapter.lora.alpha``; tensors ``blk.N.<name>.weight.lora_a``
    (r x in) and ``.lora_b`` (out x r), fp32. Returns the tensors written.

    Raises:
        TuningError: no LoRA layer in the model.
    """
    import re

    import gguf
    import numpy as np

    n_head = model.config.num_attention_heads
    n_kv_head = getattr(model.config, "num_key_value_heads", None) or n_head
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    count = 0
    for name, module in model.named_modules():
        found = re.search(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$", name)
        if not found or not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        block, proj = int(found.group(1)), found.group(2)
        a = module.lora_A["default"].weight.detach().float().cpu()
        b = module.lora_B["default"].weight.detach().float().cpu()
        if proj == "q_proj":
            b = permute_rows(b, n_head)
        elif proj == "k_proj":
            b = permute_rows(b, n_kv_head)
        stem = f"blk.{block}.{GGUF_NAMES[proj]}.weight"
        writer.add_tensor(f"{stem}.lora_a", np.ascontiguousarray(a.numpy(), dtype=np.float32))
        writer.add_tensor(f"{stem}.lora_b", np.ascontiguousarray(b.numpy(), dtype=np.float32))
        count += 2
    if not count:
        raise TuningError("The model has no LoRA layer to export.")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return count
