"""Tuned models: LoRA adapters of the bundled model, registered by name.

A tuned model is a folder ``<LLMAPP_MODELS_PATH>/<name>/`` (default
``.llmapp/models``) holding ``adapter.gguf`` (the GGUF LoRA adapter),
``model.json`` (how it was trained and what that measured) and
``heldout.jsonl`` (the examples kept out of training, for before and after).
A run writes into a hidden ``.partial-*`` folder and renames it into place
only when everything is written, so a cancelled or failed run never leaves a
half-written model registered (a rename within one folder is atomic).

Every page can pick a registered model: ``LLMAPP_LOCAL_ADAPTER=<name>`` runs
the bundled model with that adapter (:class:`llmapp.providers.LocalProvider`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmapp.errors import LlmappError
from llmapp.settings import Settings

ADAPTER_FILE = "adapter.gguf"
INFO_FILE = "model.json"
HELDOUT_FILE = "heldout.jsonl"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PARTIAL_PREFIX = ".partial-"


class ModelError(LlmappError):
    """A tuned model cannot be found, named or registered; the message says why."""


@dataclass(frozen=True)
class TunedModel:
    """One registered tuned model.

    Attributes:
        name: its name (lowercase letters, digits, ``-`` and ``_``).
        folder: where it lives.
        base: the base model's name.
        created_at: seconds since the epoch.
        info: the rest of ``model.json``: ``config`` (the
            :class:`~llmapp.tuning.train.TrainConfig`), ``result`` (the
            :class:`~llmapp.tuning.train.TrainResult`), ``dataset``, ``held_out``.
    """

    name: str
    folder: Path
    base: str
    created_at: float
    info: dict = field(default_factory=dict)

    @property
    def adapter(self) -> Path:
        return self.folder / ADAPTER_FILE

    @property
    def label(self) -> str:
        """How pages name it: ``SmolLM2-135M + <name>``."""
        return f"SmolLM2-135M + {self.name}"


def models_dir(settings: Settings) -> Path:
    """Where tuned models live (``LLMAPP_MODELS_PATH``)."""
    return Path(settings.models_path)


def check_name(name: str) -> str:
    """``name``, if it can name a model.

    Raises:
        ModelError: not 1 to 40 lowercase letters, digits, ``-`` or ``_``,
            starting with a letter or digit.
    """
    if not NAME.match(name or ""):
        raise ModelError(f"{name!r} cannot name a model: use 1 to 40 lowercase letters, digits, "
                         "'-' or '_', starting with a letter or digit.")
    return name


def list_models(settings: Settings) -> list[TunedModel]:
    """The registered models, by name (folders without a readable
    ``model.json`` and an adapter are skipped)."""
    root = models_dir(settings)
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / ADAPTER_FILE).is_file():
            continue
        try:
            info = json.loads((folder / INFO_FILE).read_text())
        except (OSError, ValueError):
            continue
        out.append(TunedModel(folder.name, folder, info.get("base", ""),
                              float(info.get("created_at", 0)), info))
    return out


def get_model(settings: Settings, name: str,
              models: Sequence[TunedModel] | None = None) -> TunedModel:
    """The registered model ``name``, from ``models`` when the caller has
    listed them already (:func:`list_models`).

    Raises:
        ModelError: there is none by that name.
    """
    models = list_models(settings) if models is None else models
    for model in models:
        if model.name == name:
            return model
    known = ", ".join(m.name for m in models) or "none yet"
    raise ModelError(f"There is no tuned model named {name!r} (registered: {known}). "
                     "Train one on the Fine-tuning page or with llmapp tune train.")


def new_partial(settings: Settings, name: str) -> Path:
    """A fresh hidden folder to write a model ``name`` into."""
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{PARTIAL_PREFIX}{check_name(name)}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return folder


def register(settings: Settings, partial: Path, name: str, info: dict,
             replace: bool = False) -> TunedModel:
    """Write ``model.json`` into ``partial`` and move it into place as ``name``.

    Raises:
        ModelError: ``partial`` has no adapter, or a model ``name`` exists
            and ``replace`` is False.
    """
    check_name(name)
    if not (partial / ADAPTER_FILE).is_file():
        raise ModelError(f"{partial} holds no {ADAPTER_FILE}.")
    target = models_dir(settings) / name
    if target.exists() and not replace:
        raise ModelError(f"A tuned model named {name!r} exists; pick another name or replace it.")
    info = {**info, "name": name, "created_at": info.get("created_at", time.time())}
    (partial / INFO_FILE).write_text(json.dumps(info, indent=1))
    if target.exists():
        old = target.with_name(f"{PARTIAL_PREFIX}old-{name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(partial, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, target)
    return get_model(settings, name)


def delete_model(settings: Settings, name: str) -> None:
    """Remove the registered model ``name``.

    Raises:
        ModelError: there is none by that name.
    """
    shutil.rmtree(get_model(settings, name).folder)


def discard(partial: Path) -> None:
    """Remove a partial folder (a cancelled or failed run)."""
    shutil.rmtree(partial, ignore_errors=True)
