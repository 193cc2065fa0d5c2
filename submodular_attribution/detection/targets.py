"""Detection and grounding targets and their evaluation lists, checked before any model loads.

Detection list (``smdl_explanation_detection``), one target per line, COCO-style but with box
*corners* (not COCO's x, y, width, height)::

    <relative image path> <x1> <y1> <x2> <y2> <class>

Grounding list (``smdl_explanation_grounding``)::

    <relative image path> <x1> <y1> <x2> <y2> <phrase, may contain spaces>

(or the same three fields separated by tabs, ``path<TAB>x1 y1 x2 y2<TAB>phrase``, for paths
with number-like parts). Boxes are in the pixels of the image file as stored, continuous
coordinates: 0 ≤ x1 < x2 ≤ width, 0 ≤ y1 < y2 ≤ height. ``<class>`` is a class index of the
model or one of its class names (no spaces). Several lines may name the same image (one target
each). Blank lines and ``#`` comments are skipped. Every bad line is one :class:`InputError`
naming the list and the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..common.errors import InputError
from ..common.lists import read_list_lines

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class DetectionItem:
    """One list line: an image, a box in its pixels, and the class (index or name, as written)
    or the phrase. ``label`` (the result folder: the class or phrase made safe as a folder name)
    and ``line`` serve progress, failure records and per-item region maps like a
    classification list item's."""

    path: str
    box: Box
    query: str
    line: int
    grounding: bool = False

    @property
    def label(self) -> str:
        return self.folder

    @property
    def folder(self) -> str:
        """The result sub-folder: the class or phrase, made safe as a folder name."""
        return safe_name(self.query)

    @property
    def stem(self) -> str:
        """``<image stem>_<x1>_<y1>_<x2>_<y2>`` (rounded pixels): one result file per box."""
        return f"{Path(self.path).stem}_" + "_".join(str(int(round(v))) for v in self.box)


def safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")
    return name or "target"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _box(values: Sequence[str], where: str) -> Box:
    numbers = [_number(v) for v in values]
    if len(numbers) != 4 or any(v is None for v in numbers):
        raise InputError(f"{where}: the box must be four numbers x1 y1 x2 y2, got {' '.join(values)!r}")
    x1, y1, x2, y2 = numbers
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"{where}: empty box {x1:g} {y1:g} {x2:g} {y2:g} (need x1 < x2 and y1 < y2)")
    return (x1, y1, x2, y2)


def read_detection_list(list_path: str | Path) -> list[DetectionItem]:
    """Parse ``<path> <x1> <y1> <x2> <y2> <class>`` lines (paths may contain spaces)."""
    list_path = Path(list_path)
    items = []
    for number, raw in read_list_lines(list_path):
        where = f"{list_path}:{number}"
        parts = raw.strip().rsplit(maxsplit=5)
        if len(parts) != 6:
            raise InputError(f"{where}: expected '<relative path> <x1> <y1> <x2> <y2> <class>', got {raw!r}")
        items.append(DetectionItem(parts[0], _box(parts[1:5], where), parts[5], number))
    return items


def read_grounding_list(list_path: str | Path) -> list[DetectionItem]:
    """Parse ``<path> <x1> <y1> <x2> <y2> <phrase>`` lines (or tab-separated path, box, phrase)."""
    list_path = Path(list_path)
    items = []
    usage = "expected '<relative path> <x1> <y1> <x2> <y2> <phrase>'"
    for number, raw in read_list_lines(list_path):
        where = f"{list_path}:{number}"
        if "\t" in raw:
            fields = [f.strip() for f in raw.strip().split("\t")]
            if len(fields) != 3:
                raise InputError(f"{where}: {usage} or tab-separated path, box, phrase; got {raw!r}")
            path, box, phrase = fields[0], fields[1].split(), fields[2]
        else:
            tokens = raw.split()
            start = next((i for i in range(1, len(tokens) - 4)
                          if all(_number(t) is not None for t in tokens[i:i + 4])), None)
            if start is None:
                raise InputError(f"{where}: {usage}, got {raw!r}")
            path, box, phrase = " ".join(tokens[:start]), tokens[start:start + 4], " ".join(tokens[start + 4:])
        if not path or not phrase:
            raise InputError(f"{where}: {usage}, got {raw!r}")
        items.append(DetectionItem(path, _box(box, where), phrase, number, grounding=True))
    return items


def resolve_class(item: DetectionItem, class_names: Sequence[str] | None, num_classes: int,
                  list_path: str | Path) -> int:
    """The class index of a detection item: an index in 0..num_classes−1 or one of the names."""
    where = f"{list_path}:{item.line}"
    text = item.query
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < num_classes:
            raise InputError(f"{where}: class index {index} is outside 0..{num_classes - 1}")
        return index
    names = list(class_names or [])
    if text in names:
        return names.index(text)
    known = f"; known names: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}" if names else \
        " (the model has no class names: give class indices)"
    raise InputError(f"{where}: unknown class {text!r}{known}")


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when the file is missing or unreadable
    (then the item fails on its own turn, like any unreadable image)."""
    from PIL import Image

    try:
        with Image.open(path) as handle:
            return handle.size
    except (OSError, ValueError):
        return None


def check_boxes(items: Sequence[DetectionItem], root: Path, list_path: str | Path) -> None:
    """A box outside its image, or two lines writing the same result file, is an InputError."""
    sizes: dict[str, tuple[int, int] | None] = {}
    seen: dict[tuple[str, str], int] = {}
    for item in items:
        if item.path not in sizes:
            sizes[item.path] = image_size(root / item.path)
        size = sizes[item.path]
        if size is not None:
            w, h = size
            x1, y1, x2, y2 = item.box
            if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
                raise InputError(f"{list_path}:{item.line}: box {x1:g} {y1:g} {x2:g} {y2:g} lies outside "
                                 f"the {w}×{h} image {item.path}")
        key = (item.folder, item.stem)
        if key in seen:
            raise InputError(f"{list_path}:{item.line}: same image, box and target as line {seen[key]}; "
                             "outputs would collide")
        seen[key] = item.line


def scale_box(box: Box, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """A box in an image of (width, height) ``from_size`` → the same box after resizing the
    image to ``to_size`` (width, height)."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    x1, y1, x2, y2 = box
    return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
