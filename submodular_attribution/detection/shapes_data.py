"""The embedded detection benchmark: one to three coloured shapes on a photograph, with boxes.

Scenes reuse the shapes benchmark's rendering (:mod:`submodular_attribution.shapes.data`: the
same photographs, shapes, colours and jitter, exact masks); objects do not overlap (their
bounding squares keep a 2-pixel gap). Each object's box comes from its mask: x1 = first
column, x2 = last column + 1 (same for rows), so the box covers exactly the mask's pixels in
continuous coordinates.

Evaluation set layout under ``root`` (default ``datasets/detection/``): ``images/scene_<k>.png``,
``masks/<target stem>.png`` (one per object, named like the result files: image stem and box),
``meta.json`` and ``eval_list.txt`` with one ``images/scene_<k>.png x1 y1 x2 y2 <class name>``
line per object.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.generated import save_png, write_generated_set
from ..shapes.data import (CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, _HUE_JITTER, _HUES, _MAX_DIAMETER, _MIN_DIAMETER,
                           _NOISE_STD, _SAT_RANGE, _VAL_RANGE, _background, _hsv_to_rgb, _shape_mask)

DATA_VERSION = "shapes-detection-v1"
EVAL_SEED = 4321
MAX_OBJECTS = 3


@dataclass(frozen=True)
class SceneObject:
    label: int
    box: tuple[int, int, int, int]  # x1 y1 x2 y2, continuous pixel coordinates
    mask: np.ndarray  # H×W bool


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The box of a non-empty mask: (first column, first row, last column + 1, last row + 1)."""
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def render_scene(rng: np.random.Generator, num_objects: int | None = None,
                 size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[SceneObject]]:
    """One scene: ``(image uint8 RGB size×size×3, objects)``; 1–3 objects of random classes
    unless ``num_objects`` is given (fewer when no free place is found)."""
    count = int(rng.integers(1, MAX_OBJECTS + 1)) if num_objects is None else int(num_objects)
    image = _background(rng, size).astype(np.float32)
    placed: list[tuple[float, float, float]] = []
    objects: list[SceneObject] = []
    for _ in range(count):
        label = int(rng.integers(NUM_CLASSES))
        colour, shape = CLASS_NAMES[label].split("_", 1)
        for _attempt in range(50):
            r = 0.5 * size * rng.uniform(_MIN_DIAMETER, _MAX_DIAMETER)
            cx = rng.uniform(r + 1.0, size - 1.0 - r)
            cy = rng.uniform(r + 1.0, size - 1.0 - r)
            if all(abs(cx - x) > r + q + 2 or abs(cy - y) > r + q + 2 for x, y, q in placed):
                break
        else:
            continue
        theta = rng.uniform(0.0, 2.0 * np.pi)
        mask = _shape_mask(shape, cx, cy, r, theta, size)
        if not mask.any():
            continue
        rgb = _hsv_to_rgb(_HUES[colour] + rng.uniform(-_HUE_JITTER, _HUE_JITTER), rng.uniform(*_SAT_RANGE),
                          rng.uniform(*_VAL_RANGE))
        image[mask] = rgb.astype(np.float32)
        placed.append((cx, cy, r))
        objects.append(SceneObject(label, mask_box(mask), mask))
    image += (rng.random(size=image.shape, dtype=np.float32) - np.float32(0.5)) * np.float32(_NOISE_STD * 12**0.5)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), objects


def make_scenes(n: int, seed: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[list[SceneObject]]]:
    """``n`` scenes, deterministic for ``(n, seed, size)``: images (n×size×size×3 uint8) and objects."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    objects = []
    for i in range(n):
        images[i], found = render_scene(rng, size=size)
        objects.append(found)
    return images, objects


def target_stem(image_stem: str, box) -> str:
    """The result-file stem of a target (as :attr:`DetectionItem.stem`)."""
    return f"{image_stem}_" + "_".join(str(int(round(v))) for v in box)


def write_detection_eval_set(root: str | Path, n: int = 10, seed: int = EVAL_SEED) -> Path:
    """Write ``n`` held-out scenes under ``root`` (layout in the module docstring) and return the
    list file. Idempotent: nothing is rewritten when ``meta.json`` records the same n, seed,
    image size and data version and the list exists. The list is written last."""
    def write(root: Path) -> list[str]:
        images, scenes = make_scenes(n, seed)
        for sub in ("images", "masks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            for old in (root / sub).glob("scene_*.png"):
                old.unlink()
        lines = []
        for k, (image, objects) in enumerate(zip(images, scenes)):
            stem = f"scene_{k:03d}"
            save_png(root / "images" / f"{stem}.png", image)
            for obj in objects:
                save_png(root / "masks" / f"{target_stem(stem, obj.box)}.png", obj.mask.astype(np.uint8) * 255)
                lines.append(f"images/{stem}.png {' '.join(map(str, obj.box))} {CLASS_NAMES[obj.label]}")
        return lines

    meta = {"n": int(n), "seed": int(seed), "image_size": IMAGE_SIZE, "data_version": DATA_VERSION}
    return write_generated_set(root, meta, write)


def target_mask_path(list_root: str | Path, stem: str) -> Path:
    """Where the benchmark keeps a target's object mask (``masks/<target stem>.png``)."""
    return Path(list_root) / "masks" / f"{stem}.png"
