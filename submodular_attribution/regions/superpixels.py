"""Superpixel and grid divisions of an RGB image (OpenCV ximgproc SLICO and SEEDS)."""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .checks import check_image, check_int, check_real
from .grid import grid_division, sized_grid
from .labels import merge_small_regions

DIVISION_MODES: tuple[str, ...] = ("slico", "seeds", "grid")

# Regions smaller than this fraction of the image are merged into a neighbour
# (0.05 %, the same floor used for SAM masks).  It removes slivers of a few
# pixels without changing typical published region counts.
DEFAULT_MIN_AREA_FRACTION = 0.0005

# Published defaults (SMDL-Attribution).
_SLICO_DEFAULTS: dict[str, Any] = {
    "ruler": 20.0,
    "iterations": 20,
    "min_area_fraction": DEFAULT_MIN_AREA_FRACTION,
}
_SEEDS_DEFAULTS: dict[str, Any] = {
    "num_superpixels": 50,
    "num_levels": 3,
    "iterations": 10,
    "min_area_fraction": DEFAULT_MIN_AREA_FRACTION,
}
_MODE_OPTIONS: dict[str, dict[str, Any]] = {
    "slico": _SLICO_DEFAULTS,
    "seeds": _SEEDS_DEFAULTS,
    "grid": {},
}


def _seeds_is_safe(height: int, width: int, num_superpixels: int, num_levels: int) -> bool:
    """Whether OpenCV's SEEDS can build its block pyramid for this image size.

    Mirrors the block-pyramid set-up of OpenCV's SuperpixelSEEDSImpl.  On
    images too small or too thin for the requested superpixel count OpenCV
    hangs (its level search never ends) or segfaults (a single level, or a
    level with zero blocks), so such images must not reach it.  Checked
    against OpenCV 5.0.0 on ~5800 sizes/settings: every size accepted here ran
    cleanly; ~150 sizes that would have worked are rejected (conservative).
    """
    num_superpixels = max(num_superpixels, 10)  # OpenCV's own clamps
    num_levels = max(num_levels, 2)
    f32 = np.float32  # OpenCV does this arithmetic in float
    n_h = int(np.sqrt(f32(num_superpixels) * f32(height) / f32(width)))
    n_w = n_h * width // height
    if n_h < 1 or n_w < 1:
        return False
    level = num_levels
    # OpenCV drops levels until a block spans >= 1 pixel per axis.
    while level >= 1:
        block_w = f32(width) / f32(n_w) / f32(1 << (level - 1))
        block_h = f32(height) / f32(n_h) / f32(1 << (level - 1))
        if block_w >= 1 and block_h >= 1:
            break
        level -= 1
    if level < 2:
        return False  # level 0: endless loop in OpenCV; a single level: segfault
    blocks_w = width // math.ceil(block_w)
    blocks_h = height // math.ceil(block_h)
    # Every level of the pyramid (halved per level) needs >= 1 block per axis.
    top = 1 << (level - 1)
    return blocks_w // top >= 1 and blocks_h // top >= 1


def _slico_is_safe(height: int, width: int, region_size: int) -> bool:
    """Whether OpenCV's SLIC can divide this image size: it segfaults when the short side is
    <= region_size // 2 (observed for exactly these sizes: its first seed lies region_size // 2 px in)."""
    return min(height, width) > region_size // 2


def grid_fallback(height: int, width: int, mode: str, region_size: int = 30, **options: Any) -> str | None:
    """Why :func:`SubRegionDivision` divides an H×W image into grid cells instead of ``mode``
    (slico, seeds), or None when it uses ``mode`` itself.

    It depends on the size and the settings only, so one call tells it for every image of a
    run. ``options`` as for ``SubRegionDivision`` (defaults filled in here, values not checked).
    """
    if mode == "slico" and not _slico_is_safe(height, width, region_size):
        return f"short side {min(height, width)} px ≤ region_size // 2 = {region_size // 2}"
    if mode == "seeds":
        opts = {**_SEEDS_DEFAULTS, **options}
        if not _seeds_is_safe(height, width, opts["num_superpixels"], opts["num_levels"]):
            return f"too small for {opts['num_superpixels']} SEEDS superpixels at {opts['num_levels']} levels"
    return None


def _slico(image: np.ndarray, region_size: int, ruler: float, iterations: int) -> np.ndarray:
    height, width = image.shape[:2]
    if not _slico_is_safe(height, width, region_size):
        # Such an image is thinner than half a superpixel, so a single strip of
        # region_size cells is the natural division (and 1 region when both
        # sides are < region_size).
        return sized_grid(height, width, region_size)
    slic = cv2.ximgproc.createSuperpixelSLIC(
        image, algorithm=cv2.ximgproc.SLICO, region_size=region_size, ruler=ruler
    )
    slic.iterate(iterations)
    return slic.getLabels()


def _seeds(
    image: np.ndarray, num_superpixels: int, num_levels: int, iterations: int
) -> np.ndarray:
    height, width = image.shape[:2]
    if not _seeds_is_safe(height, width, num_superpixels, num_levels):
        # Too small for SEEDS (OpenCV would hang or crash): use a grid with
        # about num_superpixels cells and the image's aspect ratio instead.
        rows = min(height, max(1, round(math.sqrt(num_superpixels * height / width))))
        cols = min(width, max(1, round(num_superpixels / rows)))
        return grid_division(height, width, rows, cols)
    seeds = cv2.ximgproc.createSuperpixelSEEDS(width, height, 3, num_superpixels, num_levels)
    seeds.iterate(image, iterations)
    return seeds.getLabels()


def SubRegionDivision(
    image: np.ndarray, mode: str = "slico", region_size: int = 30, **options: Any
) -> np.ndarray:
    """Divide an RGB image into regions (superpixels or grid cells).

    The name is kept from the original SMDL-Attribution code; unlike the
    original it returns a label map, not a list of masked images.

    Modes (``DIVISION_MODES``):

    * ``"slico"`` -- OpenCV ximgproc SLIC, algorithm SLICO, with initial cell
      side ``region_size`` px.  Options (published defaults): ``ruler=20.0``,
      ``iterations=20``, ``min_area_fraction``.  region_size 30 gives about 49
      regions at 224x224; the published face setting is region_size=15,
      ruler=40 at 112x112.
    * ``"seeds"`` -- OpenCV ximgproc SEEDS.  Options (published defaults):
      ``num_superpixels=50``, ``num_levels=3``, ``iterations=10``,
      ``min_area_fraction``.  ``region_size`` is ignored.
    * ``"grid"`` -- square cells of side ``region_size`` px; when the last
      row/column remainder is under half a cell it is merged into the previous
      row/column so there are no slivers.  No options.

    For slico and seeds the labels are made consecutive and every region with
    fewer than ``max(1, round(min_area_fraction * H * W))`` pixels is merged
    into its neighbour with the longest shared border (see
    :func:`merge_small_regions`); ``min_area_fraction`` defaults to
    ``DEFAULT_MIN_AREA_FRACTION`` (0.05 %).  Superpixel regions are not
    guaranteed to be spatially connected.

    SLIC and SEEDS treat the three channels symmetrically (channel distances /
    joint colour histograms), so RGB and BGR input give the same division
    (verified for slico and seeds in tests/test_divisions.py).

    Images too small for OpenCV (it segfaults or hangs on them) are divided
    without it: slico falls back to the ``"grid"`` division with the same
    region_size when the short side is <= region_size // 2; seeds falls back
    to a grid of about ``num_superpixels`` cells.  :func:`grid_fallback` says
    whether, and why, for an image size.

    Args:
        image: (H, W, 3) uint8 RGB image, values 0..255.
        mode: one of ``DIVISION_MODES``.
        region_size: superpixel / cell side in pixels, >= 1 (ignored by seeds).
        **options: mode-specific options listed above.

    Returns:
        (H, W) int32 label map with labels exactly 0..N-1.

    Raises:
        ValueError: for a bad image, unknown mode, or bad/unknown option.
    """
    image = check_image(image)
    if mode not in DIVISION_MODES:
        raise ValueError(f"mode must be one of {DIVISION_MODES}, got {mode!r}")
    region_size = check_int("region_size", region_size, 1)
    unknown = sorted(set(options) - set(_MODE_OPTIONS[mode]))
    if unknown:
        allowed = sorted(_MODE_OPTIONS[mode]) or "none"
        raise ValueError(f"unknown option(s) {unknown} for mode {mode!r}; allowed: {allowed}")
    opts = {**_MODE_OPTIONS[mode], **options}
    height, width = image.shape[:2]

    if mode == "grid":
        return sized_grid(height, width, region_size)

    if mode == "slico":
        raw = _slico(
            image,
            region_size,
            ruler=check_real("ruler", opts["ruler"], 0.0, inclusive=False),
            iterations=check_int("iterations", opts["iterations"], 1),
        )
    else:
        raw = _seeds(
            image,
            num_superpixels=check_int("num_superpixels", opts["num_superpixels"], 1),
            num_levels=check_int("num_levels", opts["num_levels"], 1),
            iterations=check_int("iterations", opts["iterations"], 0),
        )
    fraction = check_real("min_area_fraction", opts["min_area_fraction"], 0.0)
    if fraction > 1:
        raise ValueError(f"min_area_fraction must be <= 1, got {fraction}")
    min_area = max(1, round(fraction * height * width))
    return merge_small_regions(raw, min_area)
