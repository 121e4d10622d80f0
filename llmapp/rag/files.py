"""Files on disk to ingest: folders walked, each file checked before it is
read.

* A folder is walked for files of a supported type; a symbolic link that
  leads outside the folder is refused with its reason (one inside is fine),
  so a link cannot pull ``~/.ssh/id_rsa.txt`` or ``/etc/...`` into a
  collection that others can search.
* Each file is checked with ``stat`` before it is read: a regular file (not a
  FIFO or a device, which could block or never end), at most
  :data:`~llmapp.rag.loaders.MAX_FILE_BYTES`. The size is checked again on the
  open file, and no more than the limit is ever read.
* Names are shown with control characters escaped
  (:func:`~llmapp.rag.loaders.display_name`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmapp.rag import IngestError
from llmapp.rag.loaders import MAX_FILE_BYTES, SUPPORTED, display_name


@dataclass(frozen=True)
class FileToIngest:
    """A file found for ingestion.

    Attributes:
        path: where it is.
        source: its document name: the path below the walked folder's parent
            (``docs/a.md``), or the file name when given directly.
        refused: why it will not be read, or None.
    """

    path: Path
    source: str
    refused: str | None = None


def find_files(paths: Sequence[str | os.PathLike]) -> list[FileToIngest]:
    """The files to ingest for ``paths``: a folder is walked (sorted, files of
    :data:`~llmapp.rag.loaders.SUPPORTED` types only); a file is taken as
    given, even when it is a symbolic link (it was named).

    A file found in a folder through a symbolic link (the file itself or a
    folder on its way) whose target is outside the folder is returned with
    ``refused`` set. Folder links are not followed into (``Path.rglob``).
    """
    out = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            out.append(FileToIngest(path, path.name))
            continue
        root = path.resolve()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.suffix.lower() not in SUPPORTED:
                continue
            source = file.relative_to(path.parent).as_posix()
            target = file.resolve()
            refused = None
            if not target.is_relative_to(root):
                refused = (f"is a symbolic link to a file outside {display_name(path.name)}; "
                           "it was not read.")
            out.append(FileToIngest(file, source, refused))
    return out


def read_file(path: Path, source: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, checked with
    ``stat`` before it is opened and with ``fstat`` once open.

    Raises:
        IngestError: missing, unreadable, not a regular file, or too large;
            the message starts with the escaped ``source``.
    """
    shown = display_name(source)
    try:
        info = os.stat(path)
        _check(info, shown, limit)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise IngestError(f"{shown}: cannot be read ({exc.strerror or exc}).") from None
    with os.fdopen(fd, "rb") as f:
        _check(os.fstat(f.fileno()), shown, limit)  # the file opened is the file checked
        data = f.read(limit + 1)
    if len(data) > limit:
        raise IngestError(f"{shown}: grew over the {limit // 2**20} MiB limit while being "
                          "read.")
    return data


def _check(info: os.stat_result, shown: str, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise IngestError(f"{shown}: is not a regular file (a pipe, a device or a socket).")
    if info.st_size > limit:
        raise IngestError(f"{shown}: {info.st_size / 2**20:.0f} MiB is over the "
                          f"{limit // 2**20} MiB limit. Split it into smaller files.")


def read_files(files: Sequence[FileToIngest], on_error) -> Iterator[tuple[str, bytes]]:
    """``(source, bytes)`` of each file that can be read; for each that is
    refused or cannot be read, ``on_error(escaped source, IngestError)`` is
    called instead, in order."""
    for file in files:
        if file.refused:
            on_error(display_name(file.source), IngestError(
                f"{display_name(file.source)}: {file.refused}"))
            continue
        try:
            data = read_file(file.path, file.source)
        except IngestError as exc:
            on_error(display_name(file.source), exc)
            continue
        yield file.source, data
