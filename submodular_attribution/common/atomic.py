"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

A full disk (or quota) while writing is a :class:`~.errors.DiskFull` naming the folder, with
nothing of the new file left behind; :func:`append_line` appends whole lines that several
processes (torchrun ranks) can write to one file at once.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import numpy as np
import torch

from .errors import DiskFull, InputError, disk_full


@contextmanager
def stopping_on_full_disk(folder: str | Path) -> Iterator[None]:
    """Re-raise an error of the block that comes from a full disk or quota as a DiskFull naming ``folder``."""
    try:
        yield
    except Exception as err:
        full = disk_full(err, folder)
        if full is None or full is err:
            raise
        raise full from err


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync it, then rename it over
    ``path``. On any error (a full disk is a DiskFull) the temporary file is removed and
    ``path`` keeps its old content, if any."""
    path = Path(path)
    with stopping_on_full_disk(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def atomic_save_npy(path: str | Path, array: Any) -> None:
    atomic_write(path, lambda handle: np.save(handle, array))


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` and a newline to ``path`` (created if needed) with one ``os.write`` on a
    file opened with O_APPEND: lines that several processes append at once never interleave
    (on a local filesystem). A full disk is a DiskFull, and no part of the line stays."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode()
    with stopping_on_full_disk(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            written = os.write(fd, data)
            if written < len(data):  # the disk filled up during the write: take back the part written
                end = os.lseek(fd, 0, os.SEEK_CUR)
                if os.fstat(fd).st_size == end:  # (unless another process has appended since)
                    os.ftruncate(fd, end - written)
                raise DiskFull(path.parent)
        finally:
            os.close(fd)


def ensure_dir(path: str | Path, what: str = "--save-dir") -> Path:
    """Create ``path`` (and parents); failure is an InputError naming the flag and the folder
    (a DiskFull when the disk is full)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        full = disk_full(err, path)
        if full is not None:
            raise full from None
        raise InputError(f"{what} {path}: cannot create the folder ({err.strerror or err})") from None
    return path
