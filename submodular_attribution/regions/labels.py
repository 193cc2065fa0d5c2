"""Label maps: the division invariant, relabelling, areas, and merging slivers.

A *division* splits an image into N disjoint regions that together cover it: a numpy array
of shape (H, W), integer dtype, whose values are exactly 0..N−1 with every label used.
"""
from __future__ import annotations

import heapq

import numpy as np

from .checks import check_int, check_label_array


def check_division(labels: np.ndarray) -> int:
    """Validate the division invariant and return the number of regions N.

    Args:
        labels: label map, 2-D (H, W) array of any integer dtype.

    Returns:
        N, the number of regions; the values of ``labels`` are exactly 0..N-1.

    Raises:
        ValueError: if ``labels`` is not a non-empty 2-D integer array, has a
            negative label, or skips a label in 0..max.
    """
    check_label_array(labels)
    present = np.unique(labels)
    if present[0] < 0:
        raise ValueError(f"labels must be >= 0, found {present[0]}")
    n = len(present)
    if present[-1] != n - 1:
        # present is sorted and starts at 0, so the first gap is the first missing label.
        missing = int(np.flatnonzero(present != np.arange(n))[0])
        raise ValueError(
            f"labels must use every value 0..{present[-1]}; label {missing} is missing"
        )
    return n


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Map arbitrary integer labels to 0..N-1.

    New labels follow the sorted order of the distinct input values: the
    smallest input value becomes 0, the next 1, and so on (so relative order is
    preserved and an already-consecutive map is returned unchanged).

    Args:
        labels: 2-D (H, W) array of any integer dtype (negative values allowed).

    Returns:
        (H, W) int32 label map with values exactly 0..N-1.
    """
    check_label_array(labels)
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int32)


def region_areas(labels: np.ndarray) -> np.ndarray:
    """Fraction of the image covered by each region.

    Args:
        labels: a valid division (see :func:`check_division`), shape (H, W).

    Returns:
        float64 array of shape (N,); entry i is (pixels with label i) / (H * W).
        The entries are positive and sum to 1.
    """
    n = check_division(labels)
    counts = np.bincount(labels.ravel().astype(np.intp), minlength=n)
    return counts.astype(np.float64) / labels.size


def _border_counts(labels: np.ndarray) -> dict[int, dict[int, int]]:
    """Length of the 4-connected border between each pair of touching labels.

    ``labels`` must be consecutive (0..N-1).  Returns a symmetric adjacency
    dict: ``border[a][b]`` = number of horizontally or vertically adjacent
    pixel pairs with one pixel in ``a`` and the other in ``b``.
    """
    n = int(labels.max()) + 1
    lab = labels.astype(np.int64)
    # All adjacent pixel pairs (right and down neighbours), vectorised.
    a = np.concatenate([lab[:, :-1].ravel(), lab[:-1, :].ravel()])
    b = np.concatenate([lab[:, 1:].ravel(), lab[1:, :].ravel()])
    differ = a != b
    a, b = a[differ], b[differ]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs, counts = np.unique(lo * n + hi, return_counts=True)
    border: dict[int, dict[int, int]] = {i: {} for i in range(n)}
    for p, q, c in zip((pairs // n).tolist(), (pairs % n).tolist(), counts.tolist()):
        border[p][q] = c
        border[q][p] = c
    return border


def merge_small_regions(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Merge every region smaller than ``min_area`` pixels into a neighbour.

    The smallest region below ``min_area`` is merged first (ties: smallest
    label) into the 4-connected neighbour with which it shares the longest
    border (ties: smallest label); the merged region keeps the neighbour's
    label and its area grows, and this repeats until no region is below
    ``min_area``.  A region with no neighbour (it covers the whole image) is
    kept whatever its size.

    Args:
        labels: 2-D (H, W) integer label map, values arbitrary (they are first
            relabelled with :func:`relabel_consecutive`, so "smallest label"
            refers to sorted order of the input values).
        min_area: minimum region size in pixels, >= 0 (0 or 1 merges nothing).

    Returns:
        (H, W) int32 label map with consecutive labels 0..N-1.
    """
    labels = relabel_consecutive(labels)
    min_area = check_int("min_area", min_area, 0)
    areas = np.bincount(labels.ravel()).tolist()
    if min(areas) >= min_area:
        return labels

    border = _border_counts(labels)
    heap = [(area, lab) for lab, area in enumerate(areas) if area < min_area]
    heapq.heapify(heap)
    target = np.arange(len(areas))  # target[i]: label that region i merged into
    alive = [True] * len(areas)
    while heap:
        area, small = heapq.heappop(heap)
        # Skip stale heap entries (region already merged or has grown since).
        if not alive[small] or area != areas[small]:
            continue
        neighbours = border[small]
        if not neighbours:
            continue  # covers the whole image
        # Longest shared border, ties -> smallest label.
        into = min(neighbours.items(), key=lambda item: (-item[1], item[0]))[0]
        # Move small's borders onto `into`; their mutual border becomes interior.
        del border[into][small]
        for other, length in neighbours.items():
            if other == into:
                continue
            del border[other][small]
            border[into][other] = border[into].get(other, 0) + length
            border[other][into] = border[into][other]
        border[small] = {}
        alive[small] = False
        target[small] = into
        areas[into] += areas[small]
        if areas[into] < min_area:
            heapq.heappush(heap, (areas[into], into))

    # Resolve chains (a -> b -> c) so every label points at a surviving region.
    while True:
        resolved = target[target]
        if np.array_equal(resolved, target):
            break
        target = resolved
    return relabel_consecutive(target[labels])
