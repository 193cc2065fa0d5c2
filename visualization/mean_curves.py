"""Mean insertion / deletion curves over images, with a standard-error band.

Each image's curve (x: fraction of image area, y: target-class probability) is resampled onto
``AREA_GRID`` (101 points) by linear interpolation; past an image's last area (the original
format can stop short of 1) its last score is held. At every grid point the band is the
standard error of the mean over images (``common.curves.spread``: sample std, ddof=1, over √n).
The legend gives the mean of the per-image trapezoid AUCs — the number
``evals.eval_AUC_faithfulness`` reports — not the area under the resampled mean curve.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from submodular_attribution.common.curves import spread, trapezoid_auc

from .canvas import save_figure
from .overlay import AREA_GRID

Curve = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class CurveBand:
    """Per-image curves summarised on ``x`` = AREA_GRID: ``mean`` and ``sem`` (101,) float64
    (``sem`` None for a single image), ``n`` images, ``mean_auc`` the mean per-image AUC."""

    x: np.ndarray
    mean: np.ndarray
    sem: np.ndarray | None
    n: int
    mean_auc: float


def resample(x, y) -> np.ndarray:
    """One curve on AREA_GRID → (101,) float64 (np.interp; the last score held past the last area)."""
    return np.interp(AREA_GRID, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))


def curve_band(curves: Sequence[Curve]) -> CurveBand:
    """Mean curve, standard-error band and mean AUC of one (x, y) curve per image."""
    if not curves:
        raise ValueError("no curves to average")
    grid = np.stack([resample(x, y) for x, y in curves])  # images × 101
    sem = None
    if len(curves) > 1:
        sem = np.array([spread(column)[1] for column in grid.T])
    auc = float(np.mean([trapezoid_auc(x, y) for x, y in curves]))
    return CurveBand(AREA_GRID.copy(), grid.mean(axis=0), sem, len(curves), auc)


def mean_curves_figure(panels: Mapping[str, Mapping[str, Sequence[Curve]]], title: str | None = None,
                       shade_auc: bool | None = None) -> Figure:
    """One axis per kind (``{"insertion": {name: curves}, "deletion": {...}}``), one mean curve
    per name with its ± 1 standard-error band (``gid`` ``"<kind>:<name>:se"``). ``shade_auc``
    (default: when each axis has a single curve) also fills the area under the mean curve
    (``gid`` ``"<kind>:<name>:auc"``)."""
    fig = Figure(figsize=(5.5 * len(panels), 4.6))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (kind, by_name) in zip(axes, panels.items()):
        single = len(by_name) == 1  # with several curves the title explains the bands
        shade = shade_auc if shade_auc is not None else single
        for index, (name, curves) in enumerate(by_name.items()):
            band = curve_band(curves)
            color = f"C{index % 10}"
            label = f"mean AUC {band.mean_auc:.4f} (n={band.n})"
            ax.plot(band.x, band.mean, color=color, linewidth=1.8, label=label if single else f"{name}: {label}")
            if band.sem is not None:
                ax.fill_between(band.x, band.mean - band.sem, band.mean + band.sem, color=color, alpha=0.3,
                                linewidth=0, gid=f"{kind}:{name}:se", label="± 1 standard error" if single else None)
            if shade:
                ax.fill_between(band.x, 0.0, band.mean, color=color, alpha=0.08, linewidth=0,
                                gid=f"{kind}:{name}:auc", label="area under the mean curve" if single else None)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel(f"fraction of image area {'inserted' if kind == 'insertion' else 'deleted'}")
        ax.set_ylabel("target class probability")
        ax.set_title(f"mean {kind} curve" + ("" if single else " (bands: ± 1 standard error)"))
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def save_mean_curves(panels: Mapping[str, Mapping[str, Sequence[Curve]]], out_path: str | Path,
                     title: str | None = None, shade_auc: bool | None = None) -> Path:
    """:func:`mean_curves_figure` written atomically as PNG; returns the path."""
    return save_figure(mean_curves_figure(panels, title, shade_auc), out_path)
