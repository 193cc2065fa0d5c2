"""Figures of audio explanations: the log-mel spectrogram with the ordering over it.

    python -m visualization.spectrogram --explanation-dir RUN [--out DIR] [--images N] [--datasets ROOT]

One PNG per clip (``<out>/<class>/<stem>.png``, default ``<RUN>/figures/spectrogram``), three
panels with time in seconds and frequency in Hz (mel-spaced axis, :mod:`submodular_attribution.audio.features`):
(a) the spectrogram in dBFS with the ground-truth event mask outlined when it lies beside the clip;
(b) the ordering heat-map ((N − rank)/N, 1 = first region) over it in grey
(:func:`~visualization.canvas.heat_over_grey`), region borders, the first five regions numbered;
(c) only the shortest prefix of the ordering whose insertion score comes within 0.01 of its
maximum, the rest silent. ``python -m visualization`` draws the generic figures
of the same run (spectrogram image, ordering, curves).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from submodular_attribution.audio.data import load_mask
from submodular_attribution.audio.features import FMAX, FMIN, HOP, N_FRAMES, N_MELS, SAMPLE_RATE, hz_to_mel, unit_to_db
from submodular_attribution.common.curves import insertion_curve
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.results import LoadedResult, iter_results, rank_map_saliency, result_rank_map

from .canvas import colormap_scale, heat_over_grey, save_figure
from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP
from .folders import find_photo, read_run_info
from .overlay import region_borders

_HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)


def _axes_in_units(ax, shape: tuple[int, int]) -> None:
    """Time (s) on x and frequency (Hz) on y for an image of ``shape`` = (bands, frames) drawn
    with row 0 the highest band."""
    height, width = shape
    seconds = np.arange(0.0, N_FRAMES * HOP / SAMPLE_RATE - 1e-9, 0.5)  # frame t is centred at t·HOP
    ax.set_xticks(seconds * SAMPLE_RATE / HOP * width / N_FRAMES, [f"{s:g}" for s in seconds])
    low, high = hz_to_mel(FMIN), hz_to_mel(FMAX)
    ticks = [f for f in _HZ_TICKS if FMIN <= f <= FMAX]
    # band b (0 = lowest) is centred at mel low + (b + 1)·step; row = height − 1 − b
    step = (high - low) / (N_MELS + 1)
    rows = [height - 1 - ((hz_to_mel(f) - low) / step - 1) * height / N_MELS for f in ticks]
    ax.set_yticks(rows, [f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")


def save_spectrogram_figure(image: np.ndarray, result: LoadedResult, out_path: str | Path,
                            mask: np.ndarray | None = None, title: str | None = None, tolerance: float = 0.01,
                            *, colormap: str = DEFAULT_COLORMAP, alpha: float = DEFAULT_ALPHA) -> Path:
    """Write the three-panel figure of one explained clip (see the module docstring).

    image: H×W×3 uint8 spectrogram image (as the model saw it, low bands at the bottom) of the
    result's size; mask: H×W bool event mask or None. Returns the written path.
    """
    ranks = result_rank_map(result)
    image = np.asarray(image)
    if image.shape[:2] != ranks.shape:
        raise ValueError(f"{result.json_path}: spectrogram {image.shape[:2]} does not match regions {ranks.shape}")
    n = len(result.areas)
    db = unit_to_db(image[:, :, 0] / 255.0)
    _, scores = insertion_curve(result)
    count = int(np.argmax(scores[1:] >= scores[1:].max() - tolerance)) + 1

    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = fig.subplots(1, 3)
    shown = axes[0].imshow(db, cmap="magma", vmin=db.min(), vmax=0.0, aspect="auto", interpolation="nearest")
    fig.colorbar(shown, ax=axes[0], fraction=0.046, pad=0.04, label="dBFS")
    if mask is not None and mask.any():
        axes[0].contour(np.asarray(mask, float), levels=[0.5], colors="cyan", linewidths=0.8)
    axes[0].set_title("log-mel spectrogram" + (" (cyan: event)" if mask is not None else ""))

    axes[1].imshow(heat_over_grey(image, rank_map_saliency(ranks, n), colormap, alpha), aspect="auto",
                   interpolation="nearest")
    borders = np.zeros(ranks.shape + (4,))
    borders[region_borders(ranks)] = (1.0, 1.0, 1.0, 0.6)
    axes[1].imshow(borders, aspect="auto", interpolation="nearest")
    for rank in range(min(5, n)):
        rows, cols = np.nonzero(ranks == rank)
        axes[1].text(cols.mean(), rows.mean(), str(rank + 1), color="white", ha="center", va="center",
                     fontsize=9, fontweight="bold")
    fig.colorbar(colormap_scale(colormap), ax=axes[1], fraction=0.046, pad=0.04,
                 label="(N − rank)/N: 1 = first region")
    axes[1].set_title(f"ordering of {n} regions")

    kept = np.where(ranks < count, db, db.min())
    axes[2].imshow(kept, cmap="magma", vmin=db.min(), vmax=0.0, aspect="auto", interpolation="nearest")
    axes[2].set_title(f"first {count} regions: p = {scores[count]:.3f}")
    for ax in axes:
        _axes_in_units(ax, ranks.shape)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_path)


def draw_spectrograms(run_dir: str | Path, out_dir: str | Path | None = None, images: int | None = None,
                      datasets: str | Path | None = None) -> list[Path]:
    """One figure per result of an audio run (the first ``images`` when given); returns the paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such folder")
    out = Path(out_dir) if out_dir else run_dir / "figures" / "spectrogram"
    roots = read_run_info(run_dir).image_roots(datasets)
    written = []
    for result in iter_results(run_dir):
        if images is not None and len(written) >= images:
            break
        shape = tuple(result_rank_map(result).shape)
        image, why = find_photo(result.record, roots, shape)
        if image is None:
            print(f"warning: skipped {result.json_path}: {why}", file=sys.stderr)
            continue
        clip = next((r / result.record["image"] for r in roots if (r / result.record["image"]).is_file()), None)
        mask = load_mask(clip) if clip is not None else None
        if mask is not None and mask.shape != shape:
            mask = None
        title = f"{result.json_path.stem} · {result.record.get('target_name') or result.record.get('target')}"
        written.append(save_spectrogram_figure(image, result, out / result.json_path.parent.name
                                               / f"{result.json_path.stem}.png", mask, title))
    if not written:
        raise InputError(f"{run_dir}: no clip could be drawn")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visualization.spectrogram", description=__doc__.split("\n\n")[0])
    parser.add_argument("--explanation-dir", required=True, help="an SMDL run folder of an audio task")
    parser.add_argument("--out", default=None, help="output folder (default: <explanation-dir>/figures/spectrogram)")
    parser.add_argument("--images", type=int, default=None, help="draw the first N clips (default: all)")
    parser.add_argument("--datasets", default=None, help="root of the records' clip paths (default: from runs.jsonl)")
    args = parser.parse_args(argv)

    def run() -> int:
        paths = draw_spectrograms(args.explanation_dir, args.out, args.images, args.datasets)
        print(f"{len(paths)} spectrogram figures in {paths[0].parent.parent}")
        return 0

    return run_reporting_input_errors(run)


if __name__ == "__main__":
    sys.exit(main())
