"""The model manager: a small catalog of instruct GGUFs that run on a CPU,
downloaded only when a person asks, and the local models found on disk or
on an Ollama server on this machine.

A downloaded model is a file ``<LLMAPP_MODELS_PATH>/gguf/<key>/<file>``; the
local provider runs it when ``LLMAPP_LOCAL_MODEL_PATH`` names it (the
sidebar's *Local model* picker sets that for the session). Downloads go
through ``huggingface_hub.hf_hub_download`` (``HF_ENDPOINT`` or
``endpoint=`` choose the server; a dropped connection is resumed with an
HTTP Range request, up to 5 times, within one download). Before a byte is
fetched, the size the hub announces is checked against the free disk, and
the memory the model needs against what this box allows (its cgroup limit,
else ``MemAvailable``); either refuses with the reason.

Catalog figures are approximate: sizes are the hub's for that file, rounded;
``memory_mb`` is the file plus a 2,048-token KV cache and llama.cpp's
buffers, rounded up; ``tokens_per_s`` is an *estimate* for 2 cores, the
bundled model's measured ~140 tokens/s scaled by file size (decoding on a
CPU is bound by memory bandwidth, so tokens/s falls about as the bytes read
per token grow). ``llmapp models`` prints them with that caveat.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmapp.cpus import CGROUP_ROOT, _cgroup_dirs, _read
from llmapp.errors import LlmappError
from llmapp.settings import Settings

GGUF_DIR = "gguf"
BUNDLED_TOKENS_PER_S = 140.0
"""The bundled SmolLM2-135M Q4_1 (98 MB) on 2 cores (``../FACTS``, measured)."""
BUNDLED_MB = 98
DISK_MARGIN_MB = 200
"""Free disk left after a download, so the database and Chroma can still write."""
OLLAMA_URL = "http://localhost:11434"


class DownloadError(LlmappError):
    """A catalog model cannot be downloaded here; the message says why."""


@dataclass(frozen=True)
class CatalogModel:
    """One downloadable model.

    Attributes:
        key: its short name (``qwen2.5-0.5b``), also its folder.
        label: how the sidebar names it.
        repo_id, filename: where it lives on the hub.
        licence: the model's licence, as its card names it.
        size_mb: the file's size, approximate (MB).
        memory_mb: resident memory it needs to run with a 2,048-token
            context, approximate (MB).
        calls_tools: whether its chat template and training support tool
            calls (served by Ollama or vLLM; llmapp's local runtime still
            routes tools for it, as for the bundled model).
        note: one line on what it is good for.
    """

    key: str
    label: str
    repo_id: str
    filename: str
    licence: str
    size_mb: int
    memory_mb: int
    calls_tools: bool
    note: str

    @property
    def tokens_per_s(self) -> float:
        """Estimated decoding speed on 2 cores (tokens/s): see the module doc."""
        return round(BUNDLED_TOKENS_PER_S * BUNDLED_MB / self.size_mb)


CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel("qwen2.5-0.5b", "Qwen2.5 0.5B Instruct (Q4_K_M)", "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                 "qwen2.5-0.5b-instruct-q4_k_m.gguf", "Apache-2.0", 491, 800, True,
                 "Follows instructions and formats far better than the bundled model; 29 languages."),
    CatalogModel("llama3.2-1b", "Llama 3.2 1B Instruct (Q4_K_M)", "bartowski/Llama-3.2-1B-Instruct-GGUF",
                 "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Llama 3.2 Community License", 808, 1200, True,
                 "Meta's smallest chat model; its licence has an acceptable-use policy."),
    CatalogModel("smollm2-1.7b", "SmolLM2 1.7B Instruct (Q4_K_M)", "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
                 "smollm2-1.7b-instruct-q4_k_m.gguf", "Apache-2.0", 1060, 1500, True,
                 "The bundled model's big sibling: same template, much better answers."),
    CatalogModel("qwen2.5-1.5b", "Qwen2.5 1.5B Instruct (Q4_K_M)", "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                 "qwen2.5-1.5b-instruct-q4_k_m.gguf", "Apache-2.0", 1120, 1600, True,
                 "The best answers here; slow on 2 cores, and over Community Cloud's memory."),
)


def find(key: str) -> CatalogModel:
    """The catalog entry ``key``.

    Raises:
        DownloadError: no entry has that key (the message lists them).
    """
    for entry in CATALOG:
        if entry.key == key:
            return entry
    raise DownloadError(f"No model {key!r} in the catalog; choose one of: "
                        f"{', '.join(e.key for e in CATALOG)}.")


def gguf_dir(settings: Settings) -> Path:
    """Where downloaded models live: ``<LLMAPP_MODELS_PATH>/gguf``."""
    return Path(settings.models_path) / GGUF_DIR


def downloaded(settings: Settings, entry: CatalogModel) -> Path | None:
    """The entry's file when it has been downloaded, else None."""
    path = gguf_dir(settings) / entry.key / entry.filename
    return path if path.is_file() else None


@dataclass(frozen=True)
class LocalModel:
    """A GGUF file on disk that the local provider can run.

    Attributes:
        path: the file.
        label: how the sidebar names it (the catalog's label, or the file name).
        size_mb: its size on disk (MB).
    """

    path: Path
    label: str
    size_mb: int


def local_models(settings: Settings) -> list[LocalModel]:
    """Every ``*.gguf`` under ``<LLMAPP_MODELS_PATH>/gguf`` (downloaded from
    the catalog, or copied there by hand), catalog models first. Tuned
    models' adapters are not listed: they live beside, as adapters."""
    root = gguf_dir(settings)
    if not root.is_dir():
        return []
    labels = {str(gguf_dir(settings) / e.key / e.filename): e.label for e in CATALOG}
    found = []
    for path in sorted(root.rglob("*.gguf")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # the hub's partial downloads live in a hidden .cache folder
        found.append(LocalModel(path, labels.get(str(path), path.name),
                                round(path.stat().st_size / 1e6)))
    found.sort(key=lambda m: (str(m.path) not in labels, m.label))
    return found


def memory_limit_mb(root: Path = CGROUP_ROOT) -> tuple[int, str] | None:
    """The memory this process may use (MB) and where that figure comes from:
    the cgroup limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``), else
    ``MemAvailable`` from ``/proc/meminfo``; None when neither is readable.
    (Community Cloud gives 690 MB to 2.7 GB; the host's RAM says nothing of it.)"""
    for folder in _cgroup_dirs(root, v1=("memory",)):
        for name in ("memory.max", "memory.limit_in_bytes"):
            text = _read(folder / name)
            if text and text != "max" and text.isdigit() and int(text) < 1 << 60:
                return int(text) // 1_000_000, f"cgroup {name}"
    meminfo = _read(Path("/proc/meminfo")) or ""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 // 1_000_000, "MemAvailable in /proc/meminfo"
    return None


def check_memory(entry: CatalogModel, memory: tuple[int, str] | None) -> None:
    """Refuse a model this box cannot run.

    Args:
        memory: :func:`memory_limit_mb`'s answer; None skips the check.

    Raises:
        DownloadError: the box's memory is below the entry's ``memory_mb``.
    """
    if memory is not None and memory[0] < entry.memory_mb:
        raise DownloadError(f"{entry.label} needs about {entry.memory_mb:,} MB of memory to run, "
                            f"and this box allows {memory[0]:,} MB ({memory[1]}). Pick a smaller "
                            "model, or run it on an Ollama server and use that.")


def check_disk(entry: CatalogModel, size_bytes: int, folder: Path) -> None:
    """Refuse a download that cannot fit.

    Args:
        size_bytes: the file's size as the hub announces it.
        folder: where it would be written (its nearest existing parent is
            measured).

    Raises:
        DownloadError: free disk below the file plus :data:`DISK_MARGIN_MB`.
    """
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free // 1_000_000
    need_mb = size_bytes // 1_000_000 + DISK_MARGIN_MB
    if free_mb < need_mb:
        raise DownloadError(f"Not enough disk for {entry.label}: it needs {need_mb:,} MB free "
                            f"(the file and {DISK_MARGIN_MB} MB to spare), and {probe} has "
                            f"{free_mb:,} MB.")


class _Progress:
    """What ``hf_hub_download`` needs of a progress bar (its documented
    ``tqdm_class`` may be any class that mimics tqdm): ``update(n)`` in bytes."""

    def __init__(self, report: Callable[[int, int | None], None], *, total: int | None = None,
                 initial: int = 0, **_: object) -> None:
        self.report, self.total, self.n = report, total, initial

    def update(self, n: int = 1) -> None:
        self.n += n
        self.report(self.n, self.total)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def download(settings: Settings, key: str,
             progress: Callable[[int, int | None], None] | None = None,
             endpoint: str | None = None,
             memory: tuple[int, str] | None | bool = True) -> Path:
    """Download catalog model ``key`` (a no-op when it is already here).

    Args:
        progress: called with ``(bytes so far, total bytes or None)``.
        endpoint: the hub's address; default ``HF_ENDPOINT`` or huggingface.co.
        memory: the box's memory limit as :func:`memory_limit_mb` gives it;
            True reads it, None skips the check.

    Returns:
        The downloaded file's path.

    Raises:
        DownloadError: unknown key, no network, the hub refused, too little
            disk or memory; the message says which.
    """
    entry = find(key)
    done = downloaded(settings, entry)
    if done is not None:
        return done
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    check_memory(entry, memory_limit_mb() if memory is True else memory or None)
    folder = gguf_dir(settings) / entry.key
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    _check_reachable(endpoint or "https://huggingface.co", entry)
    try:
        where = {"local_dir": folder, "endpoint": endpoint}
        info = hf_hub_download(entry.repo_id, entry.filename, dry_run=True, **where)
        check_disk(entry, info.file_size or entry.size_mb * 1_000_000, folder)
        folder.mkdir(parents=True, exist_ok=True)
        bar = (lambda **kw: _Progress(progress, **kw)) if progress else None
        path = hf_hub_download(entry.repo_id, entry.filename, tqdm_class=bar,  # type: ignore[arg-type]
                               **where)
    except DownloadError:
        raise
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        answer = exc if isinstance(exc, HfHubHTTPError) else exc.__cause__
        status = getattr(getattr(answer, "response", None), "status_code", None)
        if status is not None:  # the hub answered, with an error
            raise DownloadError(f"The hub refused {entry.repo_id}/{entry.filename} (HTTP "
                                f"{status}); the model may have moved or need a login.") from exc
        where = endpoint or "https://huggingface.co"
        raise DownloadError(f"Could not reach {where} to download {entry.label}: the catalog "
                            "needs a network. The bundled model stays in use.") from exc
    return Path(path)


def _check_reachable(endpoint: str, entry: CatalogModel, timeout_s: float = 5.0) -> None:
    """Refuse at once when the hub's host does not even accept a connection
    (offline, a wrong ``HF_ENDPOINT``): the hub client would retry with
    backoff for ~24 s before giving up.

    Raises:
        DownloadError: the host does not resolve or refuses within ``timeout_s``.
    """
    url = urllib.parse.urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout_s).close()
    except OSError as exc:
        raise DownloadError(f"Could not reach {endpoint} to download {entry.label}: the catalog "
                            f"needs a network ({exc.strerror or exc}). The bundled model stays "
                            "in use.") from exc


def remove(settings: Settings, key: str) -> bool:
    """Delete a downloaded catalog model; False when it was not here.

    Raises:
        DownloadError: unknown key.
    """
    folder = gguf_dir(settings) / find(key).key
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def ollama_models(url: str = OLLAMA_URL, timeout_s: float = 0.3) -> list[str]:
    """The models an Ollama server on this machine has pulled (``GET
    /api/tags``); ``[]`` when none answers within ``timeout_s``. Use one with
    the OpenAI-compatible provider at ``<url>/v1``."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/tags", timeout=timeout_s) as resp:
            data = json.load(resp)
    except (OSError, ValueError, urllib.error.URLError):
        return []
    return [m["name"] for m in data.get("models", []) if isinstance(m, dict) and m.get("name")]
