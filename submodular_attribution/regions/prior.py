"""Prior saliency + patches: grid cells grouped into regions by a saliency map's ranking."""
from __future__ import annotations

import cv2
import numpy as np

from .checks import check_int
from .grid import grid_division


def prior_patch_division(
    saliency: np.ndarray, grid: int, per_region: int, size: tuple[int, int]
) -> np.ndarray:
    """Group grid patches into regions by a prior saliency map.

    The saliency map is averaged onto ``grid x grid`` cells (cv2 INTER_AREA;
    a map smaller than the grid is upsampled instead), the cells are sorted by
    score, highest first (ties: lower row-major cell index first), and each run
    of ``per_region`` consecutive cells becomes one region: region 0 holds the
    ``per_region`` most salient cells, region 1 the next ones, and so on.  There
    are ceil(grid**2 / per_region) regions; the last is smaller when the
    division is not exact.  Regions need not be spatially connected.

    Published settings: CUB grid=10, per_region=4 (25 regions); CelebA 14/4
    (49 regions) and 28/8 (98 regions).

    Args:
        saliency: 2-D (H', W') real array, any finite values, higher = more salient.
        grid: cells per side, >= 1 and <= both output sides.
        per_region: cells per region, >= 1.
        size: output shape (H, W) -- height first, unlike cv2's (width, height).

    Returns:
        (H, W) int32 label map; cell boundaries are those of
        ``grid_division(H, W, grid, grid)``.
    """
    if not isinstance(saliency, np.ndarray):
        raise ValueError(f"saliency must be a numpy array, got {type(saliency).__name__}")
    if saliency.ndim != 2 or saliency.size == 0:
        raise ValueError(f"saliency must be a non-empty 2-D array, got shape {saliency.shape}")
    if not (np.issubdtype(saliency.dtype, np.number) or saliency.dtype == np.bool_) or np.iscomplexobj(saliency):
        raise ValueError(f"saliency must be a real numeric array, got dtype {saliency.dtype}")
    if not np.all(np.isfinite(saliency)):
        raise ValueError("saliency must be finite; it contains NaN or inf")
    grid = check_int("grid", grid, 1)
    per_region = check_int("per_region", per_region, 1)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size must be a (height, width) pair, got {size!r}")
    height = check_int("size[0] (height)", size[0], 1)
    width = check_int("size[1] (width)", size[1], 1)
    if grid > min(height, width):
        raise ValueError(f"grid must be <= both sides of size {(height, width)}, got {grid}")
    cells = grid_division(height, width, grid, grid)

    # float64 keeps close scores distinct (ordering is all that matters here).
    scores = cv2.resize(
        saliency.astype(np.float64), (grid, grid), interpolation=cv2.INTER_AREA
    ).ravel()
    order = np.argsort(-scores, kind="stable")  # stable: ties keep cell order
    region_of_cell = np.empty(grid * grid, dtype=np.int32)
    region_of_cell[order] = np.arange(grid * grid) // per_region
    return region_of_cell[cells]
