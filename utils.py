"""Image region divisions under the original SMDL-Attribution code's names, and the original's
notebook helpers.

The thin public face of :mod:`submodular_attribution.regions`, which holds the code:

* :func:`SubRegionDivision` -- superpixels (SLICO, SEEDS) or a pixel grid of an RGB image: an
  (H, W) int32 label map, or with ``as_elements=True`` the original's list of element images;
* :func:`grid_division` -- exactly ``rows x cols`` cells (e.g. spectrograms);
* :func:`prior_patch_division` -- patches grouped by a prior saliency map;
* :func:`relabel_consecutive`, :func:`merge_small_regions`, :func:`region_areas`,
  :func:`check_division` -- label-map helpers.

A division is an (H, W) int32 label map whose values are exactly 0..N-1.

Compatibility helpers, as the original's ``utils.py`` offered them to its notebooks:
:func:`load_image`, :func:`norm_image`, :func:`gen_cam`. New code should use
``submodular_attribution.load_image`` / ``visualization`` instead (RGB throughout, named colour
maps).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from submodular_attribution.common.images import load_image_rgb
from submodular_attribution.regions import (  # noqa: F401
    DEFAULT_MIN_AREA_FRACTION,
    DIVISION_MODES,
    check_division,
    grid_division,
    merge_small_regions,
    prior_patch_division,
    region_areas,
    relabel_consecutive,
)
from submodular_attribution.regions import SubRegionDivision as _label_map_division

__all__ = [
    "DIVISION_MODES",
    "DEFAULT_MIN_AREA_FRACTION",
    "SubRegionDivision",
    "grid_division",
    "prior_patch_division",
    "relabel_consecutive",
    "merge_small_regions",
    "region_areas",
    "check_division",
    "load_image",
    "norm_image",
    "gen_cam",
]


def SubRegionDivision(image: np.ndarray, mode: str = "slico", region_size: int = 30, *, as_elements: bool = False,
                      **options: Any):
    """The division of :func:`submodular_attribution.regions.SubRegionDivision` (an (H, W) int32
    label map), or with ``as_elements=True`` the original's return value: a list of N element
    images, ``image * (labels == i)[..., None]`` for i = 0..N−1 (same dtype as ``image``)."""
    labels = _label_map_division(image, mode, region_size, **options)
    if not as_elements:
        return labels
    return [image * (labels == i)[..., None].astype(image.dtype) for i in range(int(labels.max()) + 1)]


def load_image(path: str, size: int = 224) -> np.ndarray:
    """The original's ``load_image``: the image as RGB float32 in 0..255, resized to size × size
    (bilinear). A missing or unreadable file is one error naming it."""
    return load_image_rgb(path, (size, size)).astype(np.float32)


def norm_image(image: np.ndarray) -> np.ndarray:
    """Min–max scale to uint8 0..255, as the original's ``norm_image``; a constant image gives
    zeros (the original divided by zero there)."""
    image = np.asarray(image, dtype=np.float64)
    image = image - image.min()
    top = image.max()
    return np.uint8(image / top * 255.0) if top > 0 else np.zeros(image.shape, np.uint8)


def gen_cam(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original's ``gen_cam``: ``(cam, heatmap)`` with heatmap = OpenCV's JET colouring of
    ``mask`` (H×W in 0..1), **BGR** as OpenCV returns it, and cam = norm_image(½·heatmap +
    ½·image). As in the original, pass a BGR image (``cv2.imread``) for true colours."""
    mask = np.asarray(mask, dtype=np.float64)
    if mask.shape != np.shape(image)[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match the image's {np.shape(image)[:2]}")
    heatmap = cv2.applyColorMap(np.uint8(255 * np.clip(mask, 0, 1)), cv2.COLORMAP_JET)
    return norm_image(0.5 * heatmap + 0.5 * np.asarray(image, dtype=np.float64)), heatmap
