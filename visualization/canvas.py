"""Matplotlib figures off screen: the Agg canvas attached explicitly (no pyplot, no display,
no global backend state), rendered to PNG files written atomically; and the drawing primitives
every figure shares (a map through a colormap, a heat-map over a photo's grey)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from submodular_attribution.common.atomic import atomic_write
from submodular_attribution.common.errors import InputError

from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP


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


def heat_over_grey(image: np.ndarray | None, heat: np.ndarray, colormap: str = DEFAULT_COLORMAP,
                   alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """A heat-map over a photo, as every figure draws it: H×W×3 uint8 RGB.

    ``heat`` (values in [0, 1], clipped) goes through ``colormap`` and is blended at opacity
    ``alpha`` over the *luminance* of ``image`` (OpenCV's RGB→GRAY, 0.299 R + 0.587 G + 0.114 B,
    in all three channels): each pixel is round(alpha · colour + (1 − alpha) · grey). Only the
    colour map brings hue, so a region reads as the colour bar says (a yellow region over a red
    object stays yellow instead of turning orange).

    image: H×W×3 uint8 RGB, or None: then the colour-mapped heat-map alone, at full opacity.
    heat: H'×W'; stretched to H×W (bilinear) when its size differs from the image's.
    """
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"heat must be an H×W map, got shape {heat.shape}")
    if image is None:
        return colorize(heat, colormap)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H×W×3 uint8 RGB, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if heat.shape != (height, width):
        heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float64)[..., None]
    colour = colormaps[colormap](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    return np.clip(np.round(alpha * colour + (1.0 - alpha) * grey), 0, 255).astype(np.uint8)


def colormap_scale(colormap: str = DEFAULT_COLORMAP) -> ScalarMappable:
    """[0, 1] through ``colormap``, for the colour bar beside a :func:`heat_over_grey` panel."""
    return ScalarMappable(Normalize(0.0, 1.0), colormaps[colormap])
