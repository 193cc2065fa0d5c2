"""Evaluation lists and images, with one-line errors that name the culprit."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np


class InputError(ValueError):
    """Bad user input (file, list line, argument); the CLI prints it as one line."""


@dataclass(frozen=True)
class ListItem:
    """One line of an evaluation list: ``<relative path> <class index>``."""

    path: str
    label: int
    line: int

    @property
    def stem(self) -> str:
        return Path(self.path).stem


def read_eval_list(list_path: str | Path) -> list[ListItem]:
    """Parse ``<relative path> <class index>`` lines; paths may contain spaces (the label is
    the last field). Blank lines and ``#`` comments are skipped."""
    list_path = Path(list_path)
    try:
        text = list_path.read_text()
    except FileNotFoundError:
        raise InputError(f"{list_path}: evaluation list not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{list_path}: cannot read evaluation list ({err})") from None
    items = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"{list_path}:{number}: expected '<relative path> <class index>', got {raw!r}")
        items.append(ListItem(parts[0], int(parts[1]), number))
    if not items:
        raise InputError(f"{list_path}: evaluation list is empty")
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


def load_image_rgb(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as H×W×3 uint8 **RGB** (OpenCV reads BGR; the original fed that to
    RGB models), resized to ``size`` = (H, W) with bilinear interpolation when given."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: cannot be read as an image")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return image


def run_reporting_input_errors(action: Callable[[], object]) -> int:
    """Exit status of a command: 0, or 2 after printing a bad-input error as one line on stderr."""
    try:
        action()
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
