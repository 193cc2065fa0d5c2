"""Figures of detection results: the target box drawn on the ordering heat-map.

    python -m visualization.detection --explanation-dir submodular_results/detection/slico-0.0-0.0-1.0-1.0-pending-samples-8

For each result of a ``smdl_explanation_detection`` / ``smdl_explanation_grounding`` run: (a) the
ordering heat-map ((N − rank)/N; 1 = first region) over a greyscale copy of the photo
(:func:`~visualization.canvas.heat_over_grey`) with the target box (``target_box_input``, green)
and its class or phrase; (b) the first regions up to the best insertion score in the photo's
colours, rest black, with the box; (c) the insertion and deletion curves of the
detection score (IoU × score) against area. Written to ``<out>/detection/<class>/<stem>.png``
(default ``<folder>/figures/``). Photos are found as for ``python -m visualization``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from submodular_attribution.common.curves import deletion_curve, insertion_curve
from submodular_attribution.common.errors import run_reporting_input_errors
from submodular_attribution.common.results import find_result_files, load_result, rank_map_saliency, result_rank_map

from .canvas import check_style, colorize, colormap_scale, heat_over_grey, save_figure
from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP
from .folders import find_photo, read_run_info
from .overlay import plot_curves


def _box(ax, box, label: str | None) -> None:
    x1, y1, x2, y2 = box
    # pixel (c, r) is drawn centred at (c, r): continuous box edges sit half a pixel up-left
    ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="lime", linewidth=2))
    if label:
        ax.text(x1 - 0.5, y1 - 1.5, label, color="black", fontsize=8, va="bottom",
                bbox={"facecolor": "lime", "edgecolor": "none", "pad": 1})


def save_detection_figure(image: np.ndarray | None, result, out_path: str | Path, *,
                          colormap: str = DEFAULT_COLORMAP, alpha: float = DEFAULT_ALPHA,
                          tolerance: float = 0.01) -> Path:
    """One PNG (panels in the module docstring) for one loaded detection result; ``image``:
    H×W×3 uint8 RGB at the regions' size, or None (heat-map alone)."""
    ranks = result_rank_map(result)
    record = result.record
    n = len(result.areas)
    box = record.get("target_box_input")
    name = record.get("target_name") or record.get("target_phrase") or record.get("class")
    ins_x, ins_y = insertion_curve(result)
    del_x, del_y = deletion_curve(result)
    count = int(np.argmax(ins_y[1:] >= ins_y[1:].max() - tolerance)) + 1

    fig = Figure(figsize=(13.5, 4.5))
    axes = fig.subplots(1, 3)
    heat = rank_map_saliency(ranks, n)
    axes[0].imshow(heat_over_grey(image, heat, colormap, alpha))
    fig.colorbar(colormap_scale(colormap), ax=axes[0], fraction=0.046, pad=0.04, label="(N − rank)/N: 1 = first region")
    axes[0].set_title(f"ordering of {n} regions, score {float(record.get('org_score', ins_y[-1])):.3f}")
    keep = ranks < count
    shown_image = image if image is not None else colorize(heat, colormap)
    axes[1].imshow(np.where(keep[..., None], shown_image, 0).astype(np.uint8))
    axes[1].set_title(f"first {count} regions: area {ins_x[count]:.1%}, score {ins_y[count]:.3f}")
    for ax in axes[:2]:
        if box is not None:
            _box(ax, box, str(name) if name is not None else None)
        ax.set_axis_off()
    plot_curves(axes[2], (ins_x, ins_y), (del_x, del_y), ylabel="detection score (IoU × score)")
    fig.suptitle(f"{Path(result.json_path).stem} · {name}")
    return save_figure(fig, out_path)


def draw_detection_run(run_dir: str | Path, out_dir: str | Path | None = None, images: int | None = None,
                       datasets: str | Path | None = None, colormap: str = DEFAULT_COLORMAP,
                       alpha: float = DEFAULT_ALPHA) -> list[Path]:
    """Figures of the first ``images`` results (all when None) of a detection run folder."""
    check_style(colormap, alpha)
    run_dir = Path(run_dir)
    files = find_result_files(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "figures"
    roots = read_run_info(run_dir).image_roots(datasets)
    written = []
    for path in files[:images]:
        try:
            result = load_result(path)
        except ValueError as err:
            print(f"warning: {err}", file=sys.stderr)
            continue
        photo, why = find_photo(result.record, roots, tuple(result_rank_map(result).shape))
        if why:
            print(f"warning: {why}; drawing the heat-map alone", file=sys.stderr)
        written.append(save_detection_figure(photo, result, out / "detection" / path.parent.name / f"{path.stem}.png",
                                             colormap=colormap, alpha=alpha))
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m visualization.detection", description=__doc__.split("\n\n")[0])
    p.add_argument("--explanation-dir", required=True, help="a detection or grounding run folder")
    p.add_argument("--out", default=None, help="output root (default: <folder>/figures)")
    p.add_argument("--images", type=int, default=None, help="draw the first N results (default: all)")
    p.add_argument("--datasets", default=None, help="image root (default: the run's)")
    p.add_argument("--colormap", default=DEFAULT_COLORMAP)
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    args = p.parse_args(argv)

    def go() -> int:
        paths = draw_detection_run(args.explanation_dir, args.out, args.images, args.datasets, args.colormap, args.alpha)
        print(f"{len(paths)} figures in {Path(args.out) if args.out else Path(args.explanation_dir) / 'figures'}/detection/")
        return 0

    return run_reporting_input_errors(go)


if __name__ == "__main__":
    sys.exit(main())
