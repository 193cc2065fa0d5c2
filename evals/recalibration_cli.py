"""Yang et al.'s re-calibration command line (ICLR 2023, their ``main.py``): make maps, then draw or score them.

    python -m evals.recalibration_cli -attr_method=IG_Uniform -model resnet34 -dataset ImageNet \\
        -metric DiffID -k 5 -bg_size 10

Every flag of the map generator is accepted, theirs included (``-attr_method``, ``-model``,
``-dataset``, ``-k``, ``-bg_size``, ``-exp_obj``, ``-est_method``; see
:mod:`baseline_attribution.generate_explanation_maps`, which makes the maps and skips those already
made). Without ``-model``/``-dataset`` it runs on the embedded shapes CNN and its list. Then
``-metric``:

* ``DiffID``: scores the maps with :mod:`evals.score_maps` (DiffID of
  :func:`evals.saliency_metrics.diffid`) and prints ``diffid: mean ± s.e. (n images)``; the JSON
  summary is ``<maps>/scores.json``.
* ``visualize`` (their default): one figure per map of the first ``--num-vis`` images (theirs draw
  50), the photo beside its map over a grey copy (:func:`visualization.save_maps_grid`), in
  ``<maps>/figures/<class>/<stem>.png``.

This lives in ``evals`` because it evaluates and draws, which the map generator (a layer below)
may not import; the generator alone stops at ``-metric`` and names this module. Their other
metrics: ``python -m evals.score_maps --metric sensitivity_n`` (and the rest of the registry).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from baseline_attribution import generate_explanation_maps as generate
from submodular_attribution.common.distributed import current_worker
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.progress import run_items

from . import score_maps

#: Their ``-metric`` choices offered here (any case on the command line).
PAPER_METRICS = ("DiffID", "visualize")


def _paper_metric(text: str) -> str:
    return {m.lower(): m for m in PAPER_METRICS}.get(text.lower(), text)


def get_args_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The generator's parser (for ``argv`` already rewritten by ``paper_argv``) plus ``-metric``."""
    parser = generate.get_args_parser(argv)
    parser.prog = "python -m evals.recalibration_cli"
    parser.description = __doc__.split("\n\n")[0]
    group = parser.add_argument_group("evaluation (their -metric)")
    group.add_argument("-metric", "--paper-metric", dest="paper_metric", type=_paper_metric, choices=PAPER_METRICS,
                       default="visualize", help="DiffID: score the maps; visualize: draw them")
    group.add_argument("--num-vis", type=int, default=50, help="visualize: draw the first N images")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    argv = generate.paper_argv(sys.argv[1:] if argv is None else argv, metric_ok=True)
    return get_args_parser(argv).parse_args(argv)


def visualize(args: argparse.Namespace, maps_dir: Path) -> int:
    """Figures of the first ``--num-vis`` maps; a missing or bad map fails its image only."""
    from submodular_attribution.frontend import read_items
    from submodular_attribution.tasks import get_model_task
    from visualization import save_maps_grid

    if args.num_vis < 1:
        raise InputError(f"--num-vis must be >= 1, got {args.num_vis}")
    task = get_model_task(args.model)
    items, root = read_items(args, show=False)
    size = tuple(args.input_size)
    out = maps_dir / "figures"

    def draw(item) -> Path:
        saliency, _, _ = score_maps.read_saliency(maps_dir, item, size)
        photo = task.read_input(root / item.path, size)
        return save_maps_grid(photo, {args.method: saliency}, out / str(item.label) / f"{item.stem}.png",
                              title=f"{item.path} (class {item.label})")

    report = run_items(items[: args.num_vis], draw, run_dir=maps_dir, desc="figures", strict=args.strict)
    print(f"{len(report.results)} figures: {out}")
    return report.exit_status


def run(args: argparse.Namespace) -> int:
    if current_worker().world_size > 1:
        raise InputError("evals.recalibration_cli runs as one process; make the maps with torchrun and "
                         "baseline_attribution.generate_explanation_maps first")
    status = generate.run(args)  # maps (finished ones skipped); checks the flags and fixes --input-size
    maps_dir = generate.maps_dir(args)
    if args.paper_metric == "visualize":
        return max(status, visualize(args, maps_dir))
    scoring = argparse.Namespace(**vars(args), maps=str(maps_dir), metric=["diffid"], out=None)
    return max(status, 1 if score_maps.score_folder(scoring)["failed"] else 0)


def main(argv: Sequence[str] | None = None) -> int:
    return run_reporting_input_errors(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
