"""Errors a command reports as one ``error:`` line, never a traceback: bad user input (exit
status 2) and a full disk (exit status 3)."""
from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Callable

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class InputError(ValueError):
    """Bad user input (file, list line, argument); the CLI prints it as one line."""


class DiskFull(OSError):
    """The disk (or the quota) holding an output folder is full. It stops a run rather than
    failing the item being written (every later item would fail the same way): the command
    prints ``error: no space left on <folder>`` and exits with status 3, and a rerun after
    freeing space resumes."""

    def __init__(self, folder: str | Path, code: int = errno.ENOSPC) -> None:
        quota = " (disk quota exceeded)" if code == errno.EDQUOT else ""
        super().__init__(code, f"no space left on {folder}{quota}")
        self.folder = Path(folder)

    def __str__(self) -> str:
        return self.strerror


def disk_full(err: BaseException, folder: str | Path | None = None) -> DiskFull | None:
    """``err`` as a :class:`DiskFull` when it, or an error it was raised from or while handling
    (``torch.save`` wraps a failed write in a RuntimeError), is the OS reporting a full disk or
    quota; None otherwise. The folder is ``folder``, else that of the file the OS names."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, DiskFull):
            return err
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            where = folder or (Path(err.filename).parent if err.filename else "the disk")
            return DiskFull(where, err.errno)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def run_reporting_input_errors(action: Callable[[], object]) -> int:
    """Exit status of a command: ``action()``'s own int status (0 when it returns anything else),
    or, after printing one ``error:`` line on stderr, 2 for bad input and 3 for a full disk."""
    try:
        status = action()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        full = disk_full(err)
        if full is None:
            raise
        print(f"error: {full}", file=sys.stderr)
        return 3
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
