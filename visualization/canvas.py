"""Matplotlib figures off screen: the Agg canvas attached explicitly (no pyplot, no display,
no global backend state), rendered to PNG files written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from submodular_attribution.common.atomic import atomic_write
from submodular_attribution.common.errors import InputError

from .defaults import DEFAULT_COLORMAP


def check_style(colormap: str, alpha: float) -> None:
    """An unknown colormap name or an alpha outside [0, 1] is an InputError naming the flag."""
    if colormap not in colormaps:
        raise InputError(f"--colormap {colormap}: not a matplotlib colormap (try viridis, inferno, magma, cividis)")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"--alpha {alpha}: must lie in [0, 1]")


def save_figure(fig: Figure, out_path: str | Path, dpi: float | None = None) -> Path:
    """Render ``fig`` to PNG, written atomically at ``out_path``; returns the path."""
    FigureCanvasAgg(fig)
    atomic_write(out_path, lambda handle: fig.savefig(handle, format="png", bbox_inches="tight", dpi=dpi))
    return Path(out_path)


def colorize(values: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """H×W values in [0, 1] → H×W×3 uint8 RGB through a named colormap."""
    rgba = colormaps[colormap](np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0))
    return (rgba[..., :3] * 255).round().astype(np.uint8)
