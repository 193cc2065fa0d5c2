"""Explanation figures: ordering heat-maps, best-prefix views and insertion/deletion curves.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no display),
so they work headless and never touch global backend state. Files are written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from submodular_attribution.common.curves import deletion_curve, insertion_curve, trapezoid_auc
from submodular_attribution.common.results import LoadedResult, rank_map_saliency, result_rank_map

from .canvas import colorize, colormap_scale, heat_over_grey, save_figure
from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP

AREA_GRID = np.linspace(0.0, 1.0, 101)


def region_borders(ranks: np.ndarray) -> np.ndarray:
    """H×W bool: pixels whose right or lower neighbour belongs to another region."""
    borders = np.zeros(ranks.shape, dtype=bool)
    right = ranks[:, 1:] != ranks[:, :-1]
    down = ranks[1:, :] != ranks[:-1, :]
    borders[:, :-1] |= right
    borders[:-1, :] |= down
    return borders


def plot_curves(ax, insertion: tuple[np.ndarray, np.ndarray], deletion: tuple[np.ndarray, np.ndarray],
                ylabel: str = "target class probability") -> None:
    """Insertion and deletion curves (x: fraction of image area) with their trapezoid AUCs."""
    for name, (x, y) in (("insertion", insertion), ("deletion", deletion)):
        ax.plot(x, y, label=f"{name} (AUC {trapezoid_auc(x, y):.4f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("fraction of image area")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)


def save_explanation_figure(
    image: np.ndarray | None,
    result: LoadedResult,
    out_path: str | Path,
    title: str | None = None,
    top_k: int | None = None,
    tolerance: float = 0.01,
    *,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
) -> Path:
    """One PNG with three panels for one explained image.

    (a) the ordering heat-map ((N − rank)/N through ``colormap``; 1, the brightest, is the first
        region) at opacity ``alpha`` over a greyscale copy of ``image``
        (:func:`~visualization.canvas.heat_over_grey`, so its colours read as the colour bar
        says), with region borders in white;
    (b) only the shortest prefix of the ordering whose insertion score (``consistency_score``)
        comes within ``tolerance`` of its maximum — or the first ``top_k`` regions when given —
        in the photo's own colours, the rest black;
    (c) the insertion and deletion curves against area, with their AUCs in the legend.

    image: H×W×3 uint8 RGB, the same size as the result's regions, or None when the photo is
    not at hand: then (a) is the heat-map alone and (b) shows the heat-map's kept regions.
    Works for our rank-map npy and for the original N×H×W×3 format (rank map derived, see
    :func:`rank_map_from_region_images`). Returns the written path.
    """
    ranks = result_rank_map(result)
    if image is not None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != ranks.shape:
            raise ValueError(f"{result.json_path}: image of shape {image.shape} does not match regions of size "
                             f"{ranks.shape}")
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

    heat = rank_map_saliency(ranks, n)
    borders = np.zeros(ranks.shape + (4,))
    borders[region_borders(ranks)] = (1.0, 1.0, 1.0, 0.9)
    axes[0].imshow(heat_over_grey(image, heat, colormap, alpha))
    axes[0].imshow(borders, interpolation="nearest")
    fig.colorbar(colormap_scale(colormap), ax=axes[0], fraction=0.046, pad=0.04,
                 label="(N − rank)/N: 1 = first region")
    axes[0].set_title(f"ordering of {n} regions" + ("" if image is not None else " (photo not found)"))

    keep = ranks < count
    if image is not None:
        axes[1].imshow(np.where(keep[..., None], image, 0).astype(np.uint8))
    else:
        axes[1].imshow(np.where(keep[..., None], colorize(heat, colormap), 0).astype(np.uint8))
    axes[1].set_title(f"first {count} regions: area {area:.1%}, p = {score:.3f}")

    for ax in axes[:2]:
        ax.set_axis_off()

    plot_curves(axes[2], (insertion_x, insertion_y), (deletion_x, deletion_y))

    if title:
        fig.suptitle(title)
    return save_figure(fig, out_path)


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
    return save_figure(fig, out_path)
