"""The embedded default benchmark: coloured shapes on real photographs.

Every image is a random crop of one of the photographs that ship with
scikit-image (no download needed), with exactly one painted object on it. The
class is the *combination* of the object's shape and colour: each colour is used
by two classes, so a single pixel's colour narrows the answer to two classes
and only the shape settles it. Object colour, brightness, size, position and
rotation are jittered, and mild pixel noise is added to the whole image.

Objects are painted through exact (non-antialiased) masks, so the ground-truth
object mask returned with each image is exactly the set of painted pixels.

Conventions: images are ``uint8`` arrays in **RGB** order, ``H×W×3``; masks are
``bool`` arrays ``H×W`` (True = object pixel).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..common.errors import InputError
from ..common.generated import save_png, write_generated_set

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "IMAGE_SIZE",
    "DATA_VERSION",
    "EVAL_SEED",
    "render_sample",
    "make_split",
    "write_eval_set",
    "mask_path_for",
    "load_mask",
]

#: Bump whenever the generator changes in a way that changes the images
#: (cached checkpoints and evaluation sets record it and are rebuilt on mismatch).
DATA_VERSION = "shapes-v1"

#: Side of the (square) images, in pixels.
IMAGE_SIZE = 112

#: Class index -> name. Colour and shape *together* determine the class.
CLASS_NAMES: tuple[str, ...] = (
    "red_disk",
    "red_star",
    "green_square",
    "green_ring",
    "blue_triangle",
    "blue_cross",
)
NUM_CLASSES = len(CLASS_NAMES)

#: Default seed of the held-out evaluation set (training uses other seeds).
EVAL_SEED = 1234

# Base hue of each colour, in degrees on the HSV wheel.
_HUES = {"red": 0.0, "green": 120.0, "blue": 230.0}

# Colour photographs (RGB) and grayscale ones (converted to RGB) bundled with
# scikit-image that load without network access.
_RGB_BACKGROUNDS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
)
_GRAY_BACKGROUNDS = ("camera", "coins", "moon", "grass", "gravel", "brick", "clock", "text", "page", "cell")

# Generator parameters.
_MIN_DIAMETER = 0.18  # circumscribed object diameter, as a fraction of the side
_MAX_DIAMETER = 0.32
_HUE_JITTER = 15.0  # degrees
_SAT_RANGE = (0.55, 1.0)
_VAL_RANGE = (0.5, 1.0)
_NOISE_STD = 4.0  # std of the pixel noise added to the whole image, in uint8 units
_MIN_CROP = 0.25  # smallest crop side as a fraction of the photo's shorter side
_MAX_PHOTO_SIDE = 4 * IMAGE_SIZE  # photos are pre-shrunk to this shorter side


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    """The background photographs as ``uint8`` RGB ``H×W×3`` arrays, loaded once per process."""
    from skimage import data as skdata

    out: list[np.ndarray] = []
    for name in _RGB_BACKGROUNDS + _GRAY_BACKGROUNDS:
        try:
            img = np.asarray(getattr(skdata, name)())
        except Exception as err:  # noqa: BLE001 - skipping a photo would silently change the benchmark
            reason = f"{type(err).__name__}: {err}".splitlines()[0].rstrip(": ")
            raise InputError(f"scikit-image's sample image {name!r} cannot be read ({reason}); the shapes benchmark "
                             "needs all of its background photos: reinstall scikit-image with its data files "
                             "(e.g. pip install --force-reinstall scikit-image)") from None
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = img[:, :, :3]
        if img.dtype != np.uint8:
            img = (img.astype(np.float64) * (255.0 / max(float(img.max()), 1.0))).astype(np.uint8)
        scale = _MAX_PHOTO_SIDE / min(img.shape[:2])
        if scale < 1.0:  # pre-shrink large photos once: crops are then cheap to resize
            new_size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
            img = cv2.resize(img, new_size, interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(img))
    return tuple(out)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    photos = _backgrounds()
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = int(round(min(h, w) * rng.uniform(_MIN_CROP, 1.0)))
    side = max(side, 8)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = photo[y : y + side, x : x + side]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def _polygon_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Exact (non-antialiased) fill of a polygon given as float ``(x, y)`` points."""
    mask = np.zeros((size, size), dtype=np.uint8)
    shift = 4
    pts = np.round(points * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def _regular(n: int, radius: float, theta: float) -> np.ndarray:
    angles = theta + 2.0 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _shape_mask(shape: str, cx: float, cy: float, r: float, theta: float, size: int) -> np.ndarray:
    """Mask of ``shape`` with circumscribed radius ``r`` centred at (cx, cy), rotated by ``theta``."""
    if shape in ("disk", "ring"):
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        mask = d2 <= r * r
        if shape == "ring":
            mask &= d2 >= (0.55 * r) ** 2
        return mask
    if shape == "square":
        pts = _regular(4, r, theta)
    elif shape == "triangle":
        pts = _regular(3, r, theta)
    elif shape == "star":
        outer = _regular(5, r, theta)
        inner = _regular(5, 0.45 * r, theta + np.pi / 5)
        pts = np.stack([outer, inner], axis=1).reshape(10, 2)
    elif shape == "cross":
        w = 0.32 * r
        a = np.sqrt(r * r - w * w)
        pts = np.array(
            [(w, w), (w, a), (-w, a), (-w, w), (-a, w), (-a, -w), (-w, -w), (-w, -a), (w, -a), (w, -w), (a, -w), (a, w)]
        )
        c, s = np.cos(theta), np.sin(theta)
        pts = pts @ np.array([[c, s], [-s, c]])
    else:  # pragma: no cover - guarded by CLASS_NAMES
        raise ValueError(f"unknown shape {shape!r}")
    return _polygon_mask(pts + np.array([cx, cy]), size)


def _hsv_to_rgb(h_deg: float, s: float, v: float) -> np.ndarray:
    h = (h_deg % 360.0) / 60.0
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    m = v - c
    i = int(h) % 6
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][i]
    return np.array([r + m, g + m, b + m]) * 255.0


def render_sample(rng: np.random.Generator, label: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Draw one image of class ``label``.

    Returns ``(image, mask)``: ``image`` is ``uint8`` RGB ``size×size×3``; ``mask``
    is ``bool`` ``size×size``, True exactly where the object was painted.
    All randomness comes from ``rng``.
    """
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label must be in [0, {NUM_CLASSES}), got {label}")
    colour, shape = CLASS_NAMES[label].split("_", 1)
    image = _background(rng, size).astype(np.float32)

    r = 0.5 * size * rng.uniform(_MIN_DIAMETER, _MAX_DIAMETER)
    cx = rng.uniform(r + 1.0, size - 1.0 - r)
    cy = rng.uniform(r + 1.0, size - 1.0 - r)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    mask = _shape_mask(shape, cx, cy, r, theta, size)

    rgb = _hsv_to_rgb(
        _HUES[colour] + rng.uniform(-_HUE_JITTER, _HUE_JITTER),
        rng.uniform(*_SAT_RANGE),
        rng.uniform(*_VAL_RANGE),
    )
    image[mask] = rgb.astype(np.float32)
    # uniform pixel noise with standard deviation _NOISE_STD (much cheaper to draw than Gaussian)
    image += (rng.random(size=image.shape, dtype=np.float32) - np.float32(0.5)) * np.float32(_NOISE_STD * 12**0.5)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def make_split(n: int, seed: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A deterministic, class-balanced split of ``n`` samples.

    Returns ``(images, labels, masks)``: ``images`` ``uint8`` RGB ``(n, size, size, 3)``;
    ``labels`` ``int64`` ``(n,)`` (``i % NUM_CLASSES`` for i < n, shuffled with ``seed``);
    ``masks`` ``bool`` ``(n, size, size)``. The same ``(n, seed, size)`` always gives
    identical arrays.
    """
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % NUM_CLASSES).astype(np.int64)
    labels = labels[rng.permutation(n)]
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = render_sample(rng, int(label), size)
    return images, labels, masks


def mask_path_for(image_path: str | Path) -> Path:
    """Map ``.../images/<class>/<file>.png`` to ``.../masks/<class>/<file>.png``."""
    p = Path(image_path)
    parts = list(p.parts)
    for i in range(len(parts) - 2, -1, -1):  # the last "images" folder above the file
        if parts[i] == "images":
            parts[i] = "masks"
            return Path(*parts)
    raise ValueError(f"{image_path}: not inside an 'images' folder")


def load_mask(image_path: str | Path) -> np.ndarray | None:
    """The H×W bool object mask stored beside an image of the benchmark, or None if there is none."""
    try:
        path = mask_path_for(image_path)
    except ValueError:
        return None
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
    return None if mask is None else mask > 127


def write_eval_set(root: str | Path, n: int = 20, seed: int = EVAL_SEED) -> Path:
    """Write a held-out evaluation set of ``n`` images under ``root`` and return its list file.

    Layout: ``root/images/<class>/<class>_<k:03d>.png`` (RGB PNG; ``k`` counts images of that
    class), ``root/masks/<class>/<same name>.png`` (uint8, 0 background / 255 object),
    ``root/meta.json`` and ``root/eval_list.txt`` with one line ``images/<class>/<file> <label>``
    per image (classes interleaved, so any prefix of the list is close to balanced).
    Idempotent: nothing is rewritten if the list exists and ``meta.json`` records the same
    ``n``, ``seed``, image size and data version. The list is written last.
    """
    def write(root: Path) -> list[str]:
        images, labels, masks = make_split(n, seed)
        for cls in CLASS_NAMES:
            for sub in ("images", "masks"):
                folder = root / sub / cls
                folder.mkdir(parents=True, exist_ok=True)
                for old in folder.glob(f"{cls}_*.png"):  # stale files of an earlier, larger set
                    if re.fullmatch(rf"{re.escape(cls)}_\d{{3,}}\.png", old.name):
                        old.unlink()
        entries: list[tuple[int, int, str]] = []
        counts = [0] * NUM_CLASSES
        for image, label, mask in zip(images, labels, masks):
            label = int(label)
            cls = CLASS_NAMES[label]
            k = counts[label]
            counts[label] += 1
            name = f"{cls}_{k:03d}.png"
            save_png(root / "images" / cls / name, image)
            save_png(root / "masks" / cls / name, mask.astype(np.uint8) * 255)
            entries.append((k, label, f"images/{cls}/{name}"))
        return [f"{rel} {label}" for _, label, rel in sorted(entries)]

    meta = {"n": int(n), "seed": int(seed), "image_size": IMAGE_SIZE, "data_version": DATA_VERSION}
    return write_generated_set(root, meta, write)
