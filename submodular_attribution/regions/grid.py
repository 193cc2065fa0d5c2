"""Rectangular grids: exactly rows × cols cells, or cells of a given side."""
from __future__ import annotations

import numpy as np

from .checks import check_int


def labels_from_edges(row_edges: np.ndarray, col_edges: np.ndarray) -> np.ndarray:
    """Row-major cell labels for cell boundaries ``row_edges`` x ``col_edges``."""
    row_of_pixel = np.repeat(np.arange(len(row_edges) - 1), np.diff(row_edges))
    col_of_pixel = np.repeat(np.arange(len(col_edges) - 1), np.diff(col_edges))
    n_cols = len(col_edges) - 1
    return (row_of_pixel[:, None] * n_cols + col_of_pixel[None, :]).astype(np.int32)


def _even_edges(length: int, cells: int) -> np.ndarray:
    """Boundaries round(i * length / cells), i = 0..cells (Python/NumPy round)."""
    # For cells <= length the boundaries are strictly increasing, so no cell is empty.
    return np.round(np.arange(cells + 1) * length / cells).astype(np.intp)


def _sized_edges(length: int, cell: int) -> np.ndarray:
    """Boundaries of cells of ``cell`` pixels; a remainder < cell/2 joins the last cell."""
    n_full = length // cell
    if n_full == 0:
        return np.array([0, length])
    edges = list(range(0, n_full * cell + 1, cell))
    remainder = length - n_full * cell
    if 2 * remainder >= cell:
        edges.append(length)  # large enough to stand as its own cell
    else:
        edges[-1] = length  # sliver: widen the last full cell instead
    return np.array(edges)


def sized_grid(height: int, width: int, cell: int) -> np.ndarray:
    """Square cells of side ``cell`` px; a last row/column under half a cell joins its neighbour."""
    return labels_from_edges(_sized_edges(height, cell), _sized_edges(width, cell))


def grid_division(height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """Divide a height x width array into exactly ``rows x cols`` rectangular cells.

    Cell (r, c) covers rows ``round(r*height/rows) .. round((r+1)*height/rows) - 1``
    (Python/NumPy rounding, half to even) and likewise for columns; labels are
    row-major, ``r * cols + c``.  Used for audio spectrograms (8x8, 10x10) and
    by :func:`prior_patch_division`.

    Args:
        height, width: output shape, >= 1.
        rows, cols: number of cells per axis, 1 <= rows <= height, 1 <= cols <= width.

    Returns:
        (height, width) int32 label map with labels 0..rows*cols-1.
    """
    height = check_int("height", height, 1)
    width = check_int("width", width, 1)
    rows = check_int("rows", rows, 1)
    cols = check_int("cols", cols, 1)
    if rows > height:
        raise ValueError(f"rows must be <= height ({height}), got {rows}")
    if cols > width:
        raise ValueError(f"cols must be <= width ({width}), got {cols}")
    return labels_from_edges(_even_edges(height, rows), _even_edges(width, cols))
