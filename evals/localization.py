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
