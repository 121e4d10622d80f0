"""Parsing under limits: each file is loaded and chunked in a worker process
with a memory cap and a CPU-time budget of its own, so a file built to exhaust
the parsers fails alone, with a one-line reason, and the app goes on.

The worker is one long-lived process (``python -m llmapp.rag.isolation``),
started on first use and shared by every ingest of this process; files are
parsed in it one at a time. It sets its own limits with
:func:`resource.setrlimit`:

* memory: ``RLIMIT_AS`` (address space) of :data:`MEMORY_BYTES`; over it, the
  parser gets a ``MemoryError`` and the file fails;
* CPU time: before each file, ``RLIMIT_CPU``'s soft limit is set to the CPU
  time used so far plus the file's budget (:func:`cpu_budget`); at the limit
  the kernel sends ``SIGXCPU``, whose handler stops the parse;
* wall time: the app waits at most :data:`WALL_FACTOR` times the budget, then
  kills the worker (a parser stuck in C code, a crash) and starts another on
  the next file.

Why a process and not threads or the parsers' own limits alone: pypdf's limits
bound each stream, not a file, and a 54 KB PDF whose one content stream
inflated to 15.9 MB (under pypdf's limits) took 158 s of CPU in
``extract_text``; Python cannot stop a thread, nor cap its memory. Why one
long-lived worker and not one per file: starting one (Python, pypdf, Beautiful
Soup, the splitters) costs about 0.2 s and 40 MB; per file, the worker adds
the copy of its bytes and chunks through a pipe: 0.7 ms per file on 63 small
files (``benchmarks/bench_ingest.py``), next to tens of ms to embed them.

Messages between the app and the worker are JSON plus the raw file bytes,
never pickle: what the worker returns is read as data.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from llmapp.rag import IngestError
from llmapp.rag.chunking import Chunk, ChunkSettings


MEMORY_BYTES = 1024 * 2**20
"""Address space of the worker: 1 GiB. It starts at about 60 MB of address
space (40 MB resident); a 20 MiB PDF of text needs a few hundred MB."""
CPU_SECONDS = 10.0
"""CPU time every file may take to load and chunk..."""
CPU_SECONDS_PER_MIB = 3.0
"""... plus this much per MiB of the file. The sample handbook's PDF (3 pages)
takes 0.05 s; a 20 MiB file gets 70 s."""
WALL_FACTOR = 4.0
"""The app waits this many times a file's CPU budget (plus 10 s) of wall time
before it kills the worker: CPU time runs slower than the clock when the
cores are shared."""


def cpu_budget(size: int, base: float = CPU_SECONDS, per_mib: float = CPU_SECONDS_PER_MIB
               ) -> float:
    """CPU seconds a file of ``size`` bytes may take to load and chunk."""
    return base + per_mib * size / 2**20


@dataclass(frozen=True)
class Parsed:
    """A file loaded and chunked.

    Attributes:
        encoding: the text encoding it was read with (``utf-8`` for PDFs).
        chunks: its chunks, numbered from 0.
    """

    encoding: str
    chunks: list[Chunk]


def parse_here(data: bytes, name: str, chunking: ChunkSettings) -> Parsed:
    """Load and chunk in this process, without the worker's limits.

    Raises:
        IngestError: the file cannot be loaded or chunked (any failure).
    """
    from llmapp.rag.chunking import chunk
    from llmapp.rag.loaders import failures_as_ingest_errors, load

    sections = load(data, name)
    with failures_as_ingest_errors(name, "split into chunks", "be split into chunks"):
        chunks = chunk(sections, chunking)
    return Parsed(sections[0].encoding, chunks)


class ParseWorker:
    """The worker process, from the app's side. Thread-safe: files are parsed
    one at a time.

    Args:
        memory_bytes: the worker's address-space limit.
        cpu_seconds, cpu_seconds_per_mib: each file's CPU budget
            (:func:`cpu_budget`).
    """

    def __init__(self, memory_bytes: int = MEMORY_BYTES, cpu_seconds: float = CPU_SECONDS,
                 cpu_seconds_per_mib: float = CPU_SECONDS_PER_MIB) -> None:
        self.memory_bytes = memory_bytes
        self.cpu_seconds = cpu_seconds
        self.cpu_seconds_per_mib = cpu_seconds_per_mib
        self.starts = 0
        """How many worker processes were started (a killed one is replaced)."""
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def parse(self, data: bytes, name: str, chunking: ChunkSettings) -> Parsed:
        """Load and chunk one file in the worker.

        Raises:
            IngestError: the file cannot be parsed, is over a limit (memory,
                CPU time), or the worker died on it.
        """
        budget = cpu_budget(len(data), self.cpu_seconds, self.cpu_seconds_per_mib)
        header = json.dumps({"name": name, "chunking": asdict(chunking),
                             "cpu_seconds": budget}).encode()
        with self._lock:
            for attempt in (1, 2):  # a worker that died since the last file is replaced once
                proc = self._ensure()
                try:
                    proc.stdin.write(struct.pack("<IQ", len(header), len(data)) + header)
                    proc.stdin.write(data)
                    proc.stdin.flush()
                    break
                except (BrokenPipeError, OSError):
                    self._kill()
                    if attempt == 2:
                        raise IngestError(f"{name}: the parser process could not be "
                                          "started.") from None
            reply = self._read(proc, WALL_FACTOR * budget + 10.0, name)
        if "error" in reply:
            raise IngestError(reply["error"])
        return Parsed(reply["encoding"], [Chunk(**c) for c in reply["chunks"]])

    def _ensure(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            package_root = str(Path(__file__).resolve().parents[2])
            path = os.environ.get("PYTHONPATH")
            env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "llmapp.rag.isolation", str(self.memory_bytes)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=env, close_fds=True)
            self.starts += 1
        return self._proc

    def _read(self, proc: subprocess.Popen, timeout: float, name: str) -> dict:
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()

        def exactly(n: int) -> bytes:
            buf = bytearray()
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    self._kill()
                    raise IngestError(f"{name}: parsing took longer than {timeout:.0f} s; "
                                      "it was stopped.")
                got = os.read(fd, min(n - len(buf), 1 << 20))
                if not got:
                    code = proc.wait()
                    self._proc = None
                    why = f"signal {-code}" if code < 0 else f"exit code {code}"
                    raise IngestError(f"{name}: the parser process died on this file "
                                      f"({why}); it was not ingested.")
                buf += got
            return bytes(buf)

        (size,) = struct.unpack("<Q", exactly(8))
        return json.loads(exactly(size))

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the worker (a later :meth:`parse` starts another)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self._kill()


def limits_supported() -> bool:
    """Whether this platform can cap a worker's memory and CPU time: POSIX's
    :mod:`resource` (Linux, macOS). Where it is missing (Windows), files are
    parsed in-process, with the loaders' own limits only."""
    return importlib.util.find_spec("resource") is not None


_SHARED: ParseWorker | None = None
_SHARED_LOCK = threading.Lock()


def shared_worker() -> ParseWorker:
    """The process-wide worker, created on first use and stopped at exit."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = ParseWorker()
            atexit.register(_SHARED.close)
        return _SHARED


# --- the worker's side --------------------------------------------------------


class _OverTime(BaseException):
    """Raised by the ``SIGXCPU`` handler. A BaseException, so that a parser's
    ``except Exception`` does not swallow it."""


def _over_time(signum, frame) -> None:
    raise _OverTime


def _serve(memory_bytes: int) -> None:
    """Read requests from stdin, answer on stdout, until stdin closes."""
    import gc
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, resource.getrlimit(
        resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGXCPU, _over_time)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the app, which stops us
    logging.disable(logging.CRITICAL)  # pypdf's warnings: stderr is not read
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        head = stdin.read(12)
        if len(head) < 12:
            return
        header_size, data_size = struct.unpack("<IQ", head)
        request = json.loads(stdin.read(header_size))
        data = stdin.read(data_size)
        name = request["name"]
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime + request["cpu_seconds"]) + 1
        reply: dict
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY
                                                     else min(soft, hard), hard))
            parsed = parse_here(data, name, ChunkSettings(**request["chunking"]))
            reply = {"encoding": parsed.encoding, "chunks": [asdict(c) for c in parsed.chunks]}
        except _OverTime:
            reply = {"error": f"{name}: parsing took more than {request['cpu_seconds']:.0f} s "
                              "of CPU; it was stopped."}
        except IngestError as exc:
            reply = {"error": str(exc)}
        except MemoryError:
            reply = {"error": f"{name}: needs more than {memory_bytes // 2**20} MiB of memory "
                              "to parse; it was stopped."}
            gc.collect()
        except Exception as exc:  # noqa: BLE001 - reported as this file's error
            reply = {"error": f"{name}: cannot be parsed ({type(exc).__name__})."}
        finally:
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        del data
        try:
            out = json.dumps(reply).encode()  # ASCII: any text, lone surrogates too
        except MemoryError:
            out = json.dumps({"error": f"{name}: its chunks need too much memory."}).encode()
        del reply
        stdout.write(struct.pack("<Q", len(out)) + out)
        stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else MEMORY_BYTES)
