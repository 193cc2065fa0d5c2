"""Localisation of an ordering on images with a ground-truth object mask."""
from __future__ import annotations

import numpy as np


def first_regions_hit(rank_map: np.ndarray, mask: np.ndarray, k: int = 1) -> bool:
    """Pointing game for a region ordering: True when most (> 50%) of the pixels of the
    first ``k`` regions lie on the object.

    rank_map: H×W ints, position of each pixel's region in the ordering (0 = first).
    mask: H×W bool ground-truth object mask of the same shape.
    """
    if rank_map.shape != mask.shape:
        raise ValueError(f"rank map {rank_map.shape} and mask {mask.shape} differ in shape")
    top = rank_map < k
    return bool(mask[top].mean() > 0.5) if top.any() else False


def _check_pair(saliency, mask) -> tuple[np.ndarray, np.ndarray]:
    saliency = np.asarray(saliency.detach().cpu() if hasattr(saliency, "detach") else saliency, dtype=np.float64)
    mask = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask).astype(bool)
    if saliency.ndim != 2 or saliency.shape != mask.shape:
        raise ValueError(f"saliency {saliency.shape} and mask {mask.shape} differ in shape (both must be H×W)")
    if not np.isfinite(saliency).all():
        raise ValueError("saliency map has non-finite values")
    return saliency, mask


def pointing_game(saliency, mask) -> bool:
    """Pointing game of a saliency map: True when its maximum pixel lies inside the mask.

    The maximum is the first pixel in raster (row-major) order among equal maxima
    (``np.argmax`` of the flattened map); no tolerance margin around the mask.
    saliency: H×W finite map (numpy or tensor); mask: H×W ground-truth object mask.
    """
    saliency, mask = _check_pair(saliency, mask)
    return bool(mask.ravel()[int(np.argmax(saliency.ravel()))])


def energy_in_mask(saliency, mask) -> float:
    """Energy-based pointing game: Σ positive saliency inside the mask / Σ positive saliency.

    Negative values count as 0 (only positive evidence is "energy"); 0.0 when the map has no
    positive mass, so the result is always in [0, 1].
    """
    saliency, mask = _check_pair(saliency, mask)
    positive = np.clip(saliency, 0.0, None)
    total = float(positive.sum())
    return float(positive[mask].sum()) / total if total > 0.0 else 0.0
