"""Long loops over list items: progress that shows in terminals *and* batch-job logs, and one
bad item that never costs the others.

:func:`run_items` calls ``work(item)`` for each item. A failure (a missing, truncated or
unreadable image, or any error while explaining it) prints one line naming the file and the
reason, is appended to ``<run_dir>/failures.jsonl``, and the loop goes on; ``strict=True``
stops at the first one instead. A full disk is no item's fault: it stops the loop with a
:class:`~.errors.DiskFull`. Ctrl-C is never swallowed.
"""
from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

from tqdm import tqdm

from .atomic import append_line, stopping_on_full_disk
from .errors import InputError, disk_full
from .lists import ListItem


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """A tqdm bar on a terminal; on a non-terminal stream (nohup, SLURM, CI logs), one line
    every ``every`` items or ``seconds`` seconds, whichever comes first, with the count, the
    rate and the time left."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True, every: int | None = None,
                 seconds: float = 60.0, stream: TextIO | None = None) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.is_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every or max(1, total // 10)
        self.seconds = seconds
        self.start = self.last = time.monotonic()
        self.bar = tqdm(total=total, desc=desc, unit="img", file=self.stream) \
            if self.enabled and self.is_terminal else None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        due = self.done // self.every > (self.done - n) // self.every or now - self.last >= self.seconds \
            or self.done == self.total
        if self.enabled and due:
            self.last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = _duration(left) if left != float("inf") else "?"
        return f"{self.desc}: {self.done}/{self.total} images, {rate:.2f} img/s, {eta} left"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class ItemReport:
    """What a loop over items did: each finished item's return value, and the failures."""

    results: dict[ListItem, Any] = field(default_factory=dict)
    failures: list[tuple[ListItem, str]] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 when every item finished, 1 when any failed (2 is kept for bad input)."""
        return 1 if self.failures else 0


def failure_reason(err: BaseException) -> str:
    """One line: an InputError's message as it is, anything else with its type."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if isinstance(err, InputError) else f"{type(err).__name__}: {text}".rstrip(": ")


def record_failure(run_dir: str | Path, item: ListItem, reason: str) -> None:
    """Append one JSON line to ``<run_dir>/failures.jsonl`` (whole lines, also when several
    ranks append at once)."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "image": item.path, "class": item.label,
             "list_line": item.line, "reason": reason}
    append_line(Path(run_dir) / "failures.jsonl", json.dumps(entry))


@dataclass(frozen=True)
class Failed:
    """An item's payload that could not be prepared (e.g. by a background loader): the reason."""

    reason: str


def run_items(items: Sequence[ListItem], work: Callable[[ListItem], Any], *, run_dir: str | Path, desc: str,
              strict: bool = False, show: bool = True) -> ItemReport:
    """``work(item)`` for every item, with progress; failures reported, recorded and skipped
    (or, with ``strict``, raised as an InputError naming the item)."""
    return run_groups(((item, item) for item in items), len(items), lambda pairs: [work(pairs[0][0])],
                      run_dir=run_dir, desc=desc, strict=strict, show=show)


def run_stream(entries: Iterable[tuple[ListItem, Any]], total: int,
               stream: Callable[[Iterator[tuple[ListItem, Any]]], Iterable[tuple[ListItem, Any]]], *,
               run_dir: str | Path, desc: str, strict: bool = False, show: bool = True) -> ItemReport:
    """``stream`` reads ``(item, payload)`` entries and yields ``(item, result)`` as each item
    finishes, in any order, an Exception as the result of an item that failed. Payloads that are
    :class:`Failed` are failures of their items and never reach it. A result that is a full disk
    raises a DiskFull instead (naming ``run_dir`` unless it names its folder): the items not yet
    finished are not failures."""
    report = ItemReport()
    progress = Progress(total, desc, enabled=show)

    def fail(item: ListItem, reason: str, err: BaseException | None = None) -> None:
        if strict:
            raise InputError(f"{item.path} (list line {item.line}): {reason} "
                             "(--strict stops at the first failure)") from err
        named = reason if item.path in reason else f"{item.path}: {reason}"
        print(f"failed (list line {item.line}): {named}", file=sys.stderr, flush=True)
        record_failure(run_dir, item, reason)
        report.failures.append((item, reason))

    def ready() -> Iterator[tuple[ListItem, Any]]:
        for item, payload in entries:
            if isinstance(payload, Failed):
                fail(item, payload.reason)
                progress.update()
            else:
                yield item, payload

    try:
        with stopping_on_full_disk(run_dir):
            for item, result in stream(ready()):
                if isinstance(result, Exception) and disk_full(result) is not None:
                    raise result
                if isinstance(result, Exception):
                    fail(item, failure_reason(result), result)
                else:
                    report.results[item] = result
                progress.update()
    finally:
        progress.close()
    if report.failures:
        print(f"{len(report.failures)} of {total} items failed; see {Path(run_dir) / 'failures.jsonl'}",
              file=sys.stderr)
    return report


def run_groups(entries: Iterable[tuple[ListItem, Any]], total: int,
               work: Callable[[list[tuple[ListItem, Any]]], list[Any]], *, run_dir: str | Path, desc: str,
               group: int = 1, strict: bool = False, show: bool = True) -> ItemReport:
    """``work`` on groups of up to ``group`` ``(item, payload)`` entries (e.g. images explained
    together), returning one result per entry (see :func:`run_stream`). When ``work`` raises on
    a group of several, each entry is retried alone so the failure is pinned on its own item and
    the others still finish."""

    def attempt(pending: list[tuple[ListItem, Any]]) -> Iterator[tuple[ListItem, Any]]:
        try:
            results = work(pending)
        except Exception as err:  # noqa: BLE001 - one bad item must not cost the others
            if disk_full(err) is not None:
                raise  # nor does a full disk: run_stream stops
            if len(pending) == 1:
                yield pending[0][0], err
            else:
                for entry in pending:
                    yield from attempt([entry])
            return
        yield from ((item, result) for (item, _), result in zip(pending, results))

    def stream(ready: Iterator[tuple[ListItem, Any]]) -> Iterator[tuple[ListItem, Any]]:
        while pending := list(itertools.islice(ready, group)):
            yield from attempt(pending)

    return run_stream(entries, total, stream, run_dir=run_dir, desc=desc, strict=strict, show=show)
