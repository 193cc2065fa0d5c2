"""Evaluation lists: ``<relative path> <class index>`` lines, checked before any model loads."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, TypeVar

from .errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class ListItem:
    """One line of an evaluation list: ``<relative path> <class index>``."""

    path: str
    label: int
    line: int

    @property
    def stem(self) -> str:
        return Path(self.path).stem


def read_list_lines(list_path: str | Path) -> list[tuple[int, str]]:
    """``(line number, line)`` of an evaluation list's lines that are neither blank nor ``#``
    comments; a missing, unreadable or empty list is an InputError naming it."""
    list_path = Path(list_path)
    try:
        text = list_path.read_text()
    except FileNotFoundError:
        raise InputError(f"{list_path}: evaluation list not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{list_path}: cannot read evaluation list ({err})") from None
    lines = [(number, raw) for number, raw in enumerate(text.splitlines(), start=1)
             if raw.strip() and not raw.strip().startswith("#")]
    if not lines:
        raise InputError(f"{list_path}: evaluation list is empty")
    return lines


def read_eval_list(list_path: str | Path) -> list[ListItem]:
    """Parse ``<relative path> <class index>`` lines; paths may contain spaces (the label is
    the last field). Blank lines and ``#`` comments are skipped."""
    items = []
    for number, raw in read_list_lines(list_path):
        parts = raw.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"{list_path}:{number}: expected '<relative path> <class index>', got {raw!r}")
        items.append(ListItem(parts[0], int(parts[1]), number))
    return items


def select_range(items: list[ListItem], begin: int = 0, end: int | None = None) -> list[ListItem]:
    """Items ``begin`` up to (excluding) ``end``; ``end`` of None or −1 means through the last line.

    (The original code sliced ``[begin:-1]`` and silently dropped the last line.)
    """
    if end is None or end == -1:
        end = len(items)
    if begin < 0 or end < begin:
        raise InputError(f"--begin {begin} --end {end}: need 0 ≤ begin ≤ end (end −1 means the last line)")
    return items[begin:end]


def skip_repeated_lines(items: list[T], list_path: str | Path,
                        key: Callable[[T], Hashable] = lambda item: (item.path, item.label),
                        show: bool = True) -> list[T]:
    """``items`` without the lines that repeat an earlier one (the same ``key``: path and class),
    as lists assembled by scripts often do; each repeat is skipped with one ``note:`` line on
    stderr naming both line numbers (when ``show``)."""
    first: dict[Hashable, int] = {}
    kept = []
    for item in items:
        seen = first.setdefault(key(item), item.line)
        if seen == item.line:
            kept.append(item)
        elif show:
            print(f"note: {list_path}:{item.line}: repeats line {seen} ({item.path}); skipped", file=sys.stderr)
    return kept


def check_items(items: list[ListItem], list_path: str | Path, num_classes: int | None = None) -> None:
    """Errors of the list itself, caught before any work: a class index outside the model's
    classes, or two lines that would write the same ``<class>/<stem>`` output from different
    files (a repeated line is skipped before, by :func:`skip_repeated_lines`). (A missing or
    unreadable image is a per-item failure, reported when its turn comes.)"""
    seen: dict[tuple[int, str], int] = {}
    for item in items:
        if num_classes is not None and not 0 <= item.label < num_classes:
            raise InputError(f"{list_path}:{item.line}: class index {item.label} is outside 0..{num_classes - 1}")
        key = (item.label, item.stem)
        if key in seen:
            raise InputError(f"{list_path}:{item.line}: same class and file name as line {seen[key]} "
                             f"({item.label}/{item.stem}); outputs would collide")
        seen[key] = item.line
