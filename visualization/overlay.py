"""Explanation figures: ordering heat-maps, best-prefix views and insertion/deletion curves.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no display),
so they work headless and never touch global backend state. Files are written to a
temporary name in the target folder and moved into place with ``os.replace``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evals.auc import deletion_curve, insertion_curve, trapezoid_auc
from submodular_attribution.results import LoadedResult

AREA_GRID = np.linspace(0.0, 1.0, 101)


def ordering_heatmap(rank_map: np.ndarray, num_regions: int | None = None) -> np.ndarray:
    """H×W float64 in (0, 1]: (N − rank)/N, i.e. 1 for the first region, 1/N for the last.

    rank_map: H×W integer ranks 0..N−1; N defaults to ``rank_map.max() + 1``.
    """
    ranks = np.asarray(rank_map)
    n = int(ranks.max()) + 1 if num_regions is None else int(num_regions)
    return (n - ranks.astype(np.float64)) / n


def rank_map_from_region_images(regions: np.ndarray) -> np.ndarray:
    """H×W int32 rank map from the original format's N×H×W×3 ordered region images.

    A pixel's rank is the index of the first region image that is nonzero there; pixels
    no region image covers (including region pixels that are pure black (0,0,0), which
    that format cannot tell from "not in the region") get rank N−1.
    """
    if regions.ndim != 4 or regions.shape[-1] != 3:
        raise ValueError(f"expected N×H×W×3 region images, got shape {regions.shape}")
    covered = (regions != 0).any(axis=-1)  # N×H×W
    first = covered.argmax(axis=0)  # first True; 0 where none is True, fixed below
    return np.where(covered.any(axis=0), first, regions.shape[0] - 1).astype(np.int32)


def result_rank_map(result: LoadedResult) -> np.ndarray:
    """The H×W rank map of a result: ours as stored, or derived from the original format."""
    if result.npy is None:
        raise ValueError(f"{result.json_path}: no npy beside the JSON; a figure needs the regions")
    if result.npy.ndim == 2:
        return result.npy
    return rank_map_from_region_images(result.npy)


def _region_borders(ranks: np.ndarray) -> np.ndarray:
    """H×W bool: pixels whose right or lower neighbour belongs to another region."""
    borders = np.zeros(ranks.shape, dtype=bool)
    right = ranks[:, 1:] != ranks[:, :-1]
    down = ranks[1:, :] != ranks[:-1, :]
    borders[:, :-1] |= right
    borders[:-1, :] |= down
    return borders


def _save_figure(fig: Figure, out_path: str | Path) -> Path:
    """Render ``fig`` to PNG at a temp name beside ``out_path``, then os.replace it there."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attach an Agg canvas explicitly: works without any display
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", bbox_inches="tight")
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def save_explanation_figure(
    image: np.ndarray,
    result: LoadedResult,
    out_path: str | Path,
    title: str | None = None,
    top_k: int | None = None,
    tolerance: float = 0.01,
) -> Path:
    """One PNG with three panels for one explained image.

    (a) ``image`` under the ordering heat-map (jet, alpha 0.5) with region borders in white;
    (b) only the shortest prefix of the ordering whose insertion score (``consistency_score``)
        comes within ``tolerance`` of its maximum — or the first ``top_k`` regions when given —
        the rest black;
    (c) the insertion and deletion curves against area, with their AUCs in the legend.

    image: H×W×3 uint8 RGB, the same size as the result's regions. Works for our rank-map
    npy and for the original N×H×W×3 format (rank map derived, see
    :func:`rank_map_from_region_images`). Returns the written path.
    """
    ranks = result_rank_map(result)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != ranks.shape:
        raise ValueError(f"{result.json_path}: image of shape {image.shape} does not match regions of size {ranks.shape}")
    n = len(result.areas)
    insertion_x, insertion_y = insertion_curve(result)
    deletion_x, deletion_y = deletion_curve(result)

    if top_k is None:
        # Within a tolerance: probabilities near 1 keep creeping up by 1e-6 as regions are added.
        scores = insertion_y[1:]
        count = int(np.argmax(scores >= scores.max() - tolerance)) + 1
    else:
        count = int(min(max(top_k, 1), n))
    area, score = insertion_x[count], insertion_y[count]

    fig = Figure(figsize=(13.5, 4.5))
    axes = fig.subplots(1, 3)

    heat = ordering_heatmap(ranks, n)
    borders = np.zeros(ranks.shape + (4,))
    borders[_region_borders(ranks)] = (1.0, 1.0, 1.0, 0.9)
    axes[0].imshow(image)
    shown = axes[0].imshow(heat, cmap=colormaps["jet"], alpha=0.5, vmin=0.0, vmax=1.0)
    axes[0].imshow(borders, interpolation="nearest")
    fig.colorbar(shown, ax=axes[0], fraction=0.046, pad=0.04, label="importance (1 = first region)")
    axes[0].set_title(f"ordering of {n} regions")

    keep = ranks < count
    axes[1].imshow(np.where(keep[..., None], image, 0).astype(np.uint8))
    axes[1].set_title(f"first {count} regions: area {area:.1%}, p = {score:.3f}")

    for ax in axes[:2]:
        ax.set_axis_off()

    axes[2].plot(insertion_x, insertion_y, label=f"insertion (AUC {trapezoid_auc(insertion_x, insertion_y):.4f})")
    axes[2].plot(deletion_x, deletion_y, label=f"deletion (AUC {trapezoid_auc(deletion_x, deletion_y):.4f})")
    axes[2].set_xlim(0.0, 1.0)
    axes[2].set_ylim(0.0, 1.05)
    axes[2].set_xlabel("fraction of image area")
    axes[2].set_ylabel("target class probability")
    axes[2].legend(loc="best")
    axes[2].grid(alpha=0.3)

    if title:
        fig.suptitle(title)
    return _save_figure(fig, out_path)


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Mean over images of curves resampled onto ``AREA_GRID`` (101 points) → (101,) float64.

    Each (x, y) is linearly interpolated with np.interp; past an image's last area (the
    original format can stop short of 1) its last score is held.
    """
    if not curves:
        raise ValueError("no curves to average")
    return np.mean([np.interp(AREA_GRID, np.asarray(x, float), np.asarray(y, float)) for x, y in curves], axis=0)


def save_curves_figure(
    curves: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    out_path: str | Path,
    kind: str = "insertion",
) -> Path:
    """Mean ``kind`` curve per method on one axis (x: area fraction, y: target probability).

    curves: method name → one (x, y) curve per image. The legend's AUC is the mean of the
    per-image trapezoid AUCs (the number eval_AUC_faithfulness reports), not the AUC of
    the resampled mean curve. Returns the written path.
    """
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    for name, per_image in curves.items():
        if not per_image:
            raise ValueError(f"{name}: no {kind} curves to plot")
        auc = float(np.mean([trapezoid_auc(x, y) for x, y in per_image]))
        ax.plot(AREA_GRID, mean_curve(per_image), label=f"{name} (AUC {auc:.4f}, n={len(per_image)})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("fraction of image area")
    ax.set_ylabel("target class probability")
    ax.set_title(f"mean {kind} curve")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _save_figure(fig, out_path)
