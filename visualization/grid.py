"""Saliency maps of several methods side by side over one photo."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from .canvas import colormap_scale, heat_over_grey, save_figure
from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP


def min_max(saliency: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] (float64); a constant map becomes all zeros."""
    saliency = np.asarray(saliency, dtype=np.float64)
    low, high = float(saliency.min()), float(saliency.max())
    return (saliency - low) / (high - low) if high > low else np.zeros_like(saliency)


def save_maps_grid(photo: np.ndarray | None, maps: Mapping[str, np.ndarray | None], out_path: str | Path,
                   title: str | None = None, colormap: str = DEFAULT_COLORMAP, alpha: float = DEFAULT_ALPHA) -> Path:
    """One PNG: the photo in colour, then each method's map (min–max scaled, through ``colormap``
    at opacity ``alpha``) over a greyscale copy of it (:func:`~visualization.canvas.heat_over_grey`),
    one shared colour bar. photo: H×W×3 uint8 RGB or None (maps drawn alone); maps: name → H'×W'
    array, stretched over the photo (bilinear), or None (panel says "no map"). Returns the
    written path."""
    panels = len(maps) + 1
    fig = Figure(figsize=(3.0 * panels + 0.8, 3.4))
    axes = np.atleast_1d(fig.subplots(1, panels))
    shown = [photo] if photo is not None else [m for m in maps.values() if m is not None]
    blank = np.full(shown[0].shape[:2] if shown else (1, 1), 0.92)  # keeps an empty panel's size and place

    def placeholder(ax, text: str) -> None:
        ax.imshow(blank, cmap="gray", vmin=0.0, vmax=1.0)
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)

    if photo is not None:
        axes[0].imshow(photo)
    else:
        placeholder(axes[0], "photo not found")
    axes[0].set_title("photo")
    for ax, (name, saliency) in zip(axes[1:], maps.items()):
        ax.set_title(name)
        if saliency is None:
            placeholder(ax, "no map")
            continue
        ax.imshow(heat_over_grey(photo, min_max(saliency), colormap, alpha))
    for ax in axes:
        ax.set_axis_off()
    fig.colorbar(colormap_scale(colormap), ax=list(axes), fraction=0.02, pad=0.02,
                 label="attribution, min–max scaled per map")
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_path)
