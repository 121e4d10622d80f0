"""How many CPU cores (and how much memory) this process may really use, and
where that number came from.

``os.cpu_count()`` reports the host's CPUs, also inside a container whose CPU
quota is far smaller (Streamlit Community Cloud, Docker, Kubernetes).
llama.cpp with more threads than it gets cores slows to a crawl, so the local
model's default thread count is the smallest of:

* the cgroup CPU quota: v2 ``cpu.max`` (``"<quota> <period>"`` or ``"max ..."``),
  v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota ``-1`` means none),
  rounded up to whole cores (Linux kernel docs, *Control Group v2*, "CPU
  Interface Files"; *CFS Bandwidth Control*);
* the CPU affinity mask (``os.sched_getaffinity``, Linux only);
* ``os.cpu_count()``;

and then one core is left to the app itself (:func:`default_threads`).

Memory (:func:`available_memory_mb`) is the same story: ``MemAvailable`` is
the host's, so the cgroup limit left is read too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CpuBudget:
    """Cores available to this process.

    Attributes:
        cores: whole cores, at least 1 (llama.cpp's decoding threads).
        source: where the number came from, for people: e.g.
            ``"cgroup v2 quota (cpu.max: 150000 100000)"``.
        batch: threads for prompt processing (many tokens at once); 0 means
            as many as ``cores``.
    """

    cores: int
    source: str
    batch: int = 0

    @property
    def batch_cores(self) -> int:
        """Threads for prompt processing."""
        return self.batch or self.cores


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(root: Path, v1: tuple[str, ...] = ("cpu", "cpu,cpuacct")) -> list[Path]:
    """The process's own cgroup folder(s) under ``root``, then ``root`` itself;
    each also under the v1 controller folders ``v1``."""
    dirs: list[Path] = []
    text = _read(Path("/proc/self/cgroup")) or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2] not in ("", "/"):
            rel = parts[2].lstrip("/")
            dirs += [root / rel, *(root / c / rel for c in v1)]
    return dirs + [root, *(root / c for c in v1)]


def cgroup_quota(root: Path = CGROUP_ROOT) -> tuple[int, str] | None:
    """Cores allowed by the cgroup CPU quota, rounded up, with its source; None
    when no quota is set or no cgroup files are readable."""
    for folder in _cgroup_dirs(root):
        v2 = _read(folder / "cpu.max")
        if v2 is not None:
            fields = v2.split()
            if len(fields) >= 2 and fields[0] != "max":
                try:
                    quota, period = int(fields[0]), int(fields[1])
                except ValueError:
                    continue
                if quota > 0 and period > 0:
                    return max(1, math.ceil(quota / period)), f"cgroup v2 quota (cpu.max: {v2})"
            continue
        quota_s, period_s = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota_s is not None and period_s is not None:
            try:
                quota, period = int(quota_s), int(period_s)
            except ValueError:
                continue
            if quota > 0 and period > 0:
                return (max(1, math.ceil(quota / period)),
                        f"cgroup v1 quota (cfs_quota_us {quota} / cfs_period_us {period})")
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> CpuBudget:
    """The smallest of the cgroup quota, the affinity mask and ``os.cpu_count()``.

    Args:
        root: the cgroup filesystem; tests point it at fake files.
    """
    total = os.cpu_count() or 1
    best = CpuBudget(total, f"os.cpu_count() = {total}")
    if hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
        if 0 < affinity < best.cores:
            best = CpuBudget(affinity, f"CPU affinity ({affinity} of {total} CPUs)")
    quota = cgroup_quota(root)
    if quota is not None and quota[0] < best.cores:
        best = CpuBudget(quota[0], quota[1])
    return best


def default_threads(setting: int, root: Path = CGROUP_ROOT) -> CpuBudget:
    """Threads for the local model: ``setting`` when above 0, else one less
    than the cores available (see :func:`available_cpus`), at least 1, for
    decoding, and every available core for prompt processing.

    llama.cpp's threads wait for each other at every layer, so when anything
    else wants a core (the app's own Python, other sessions, a browser on the
    same machine) decoding stalls: measured on 2 cores, 2 threads gave 91
    tokens/s alone but 30 beside one busy Python thread, and 32-48 on the
    Simple Prompt page with Chromium on the same machine; 1 thread gave 59
    alone, 55-69 beside the busy thread and 56 on the page.

    Prompt processing is different: it runs before the first token, while the
    page waits, and it is compute-bound. A 712-token RAG prompt took 6.0 s to
    the first token with 1 thread and 3.2 s with 2 (xllamacpp, 2 cores).
    """
    if setting > 0:
        return CpuBudget(setting, f"LLMAPP_LOCAL_N_THREADS = {setting}")
    cores = available_cpus(root)
    if cores.cores == 1:
        return cores
    return CpuBudget(cores.cores - 1, f"{cores.source}, less one core for the app",
                     batch=cores.cores)


def available_memory_mb(root: Path = CGROUP_ROOT,
                        meminfo: Path = Path("/proc/meminfo")) -> float:
    """Memory this process may still use, in MB (2**20 bytes): the smaller of
    the cgroup limit left (v2 ``memory.max`` - ``memory.current``, v1
    ``memory.limit_in_bytes`` - ``memory.usage_in_bytes``) and the host's
    ``MemAvailable``; ``inf`` when none is readable.

    Args:
        root: the cgroup filesystem; meminfo: ``/proc/meminfo``. Tests point
            both at fake files.
    """
    values = []
    for folder in _cgroup_dirs(root, v1=("memory",)):
        for limit_file, used_file in (("memory.max", "memory.current"),
                                      ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            limit, used = _read(folder / limit_file), _read(folder / used_file)
            try:
                limit_b, used_b = int(limit or ""), int(used or "")
            except ValueError:  # missing, or v2's "max": no limit here
                continue
            if limit_b < 2**60:  # v1 writes "no limit" as a huge number
                values.append((limit_b - used_b) / 2**20)
        if values:
            break
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemAvailable:"):
            try:
                values.append(int(line.split()[1]) / 1024)
            except (IndexError, ValueError):
                pass
    return min(values) if values else float("inf")
