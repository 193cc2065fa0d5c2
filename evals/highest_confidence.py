"""Highest confidence within area budgets (error analysis, spec §7), as a small table.

    python -m evals.highest_confidence --explanation-dir <save-dir>/<config> [--json]
    python -m evals.highest_confidence --maps explanation_results/shapes/gradcam --model shapes \\
        --eval-list split/misclassified.txt --datasets datasets/shapes [task model flags] [--json]

For each area budget b (default 0.25, 0.5, 0.75, 1.0) and each image: the highest target
probability reached when at most a fraction b of the image is revealed on black, and the
area where it is first reached; the table shows the means over images.

* ``--explanation-dir``: an SMDL result folder; per image, the maximum ``consistency_score``
  over the ordering's prefixes whose cumulative area fits the budget
  (:func:`evals.saliency_metrics.highest_confidence_ordering`). Nothing is re-run.
* ``--maps``: a saliency-map folder (``<class>/<stem>.npy``, as written by
  ``baseline_attribution.generate_explanation_maps``) for the images of ``--eval-list``,
  scored with the model of ``--model`` (:func:`evals.saliency_metrics.highest_confidence_saliency`:
  pixels revealed by saliency, 101 area points plus the budgets). The target is the list's
  class (``--target label``, the default) or the model's prediction (``--target prediction``).

The error analysis runs on the misclassified images (``evals.split_predictions``) with the
true class as the target, so the number answers "how confident in the right class can the
model be made by showing it only part of the image". The empty image (area 0) is not a
candidate unless ``--include-empty``. An image for which no prefix fits a budget (its first
region is larger) has no value there: it is left out of that budget's mean and counted in the
``undefined`` column.

stdout holds the table; with ``--json``, then one JSON line (means, counts and per-image
values). Bad input prints one ``error: ...`` line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.tasks import TASK_NAMES

from submodular_attribution.common.curves import mean_finite

from .saliency_metrics import DEFAULT_BUDGETS, highest_confidence_ordering


def _mode_and_model(argv: Sequence[str] | None) -> tuple[bool, str]:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--maps", default=None)
    pre.add_argument("--model", choices=TASK_NAMES, default="shapes")
    known = pre.parse_known_args(argv)[0]
    return known.maps is not None, known.model


def _add_common(group) -> None:
    group.add_argument("--explanation-dir", default=None,
                       help="SMDL run folder holding json/<class>/*.json (and npy/<class>/*.npy)")
    group.add_argument("--maps", default=None,
                       help="saliency-map folder <class>/<stem>.npy instead; needs --model and the list")
    group.add_argument("--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS), metavar="B",
                       help="area budgets, fractions of the image in [0, 1]")
    group.add_argument("--include-empty", action="store_true",
                       help="let the empty (black) image, area 0, count as a candidate")
    group.add_argument("--json", action="store_true", help="also print the summary as one JSON line")


def get_args_parser(maps: bool = False, model: str = "shapes") -> argparse.ArgumentParser:
    """The plain parser; with ``maps``, the task parser of ``model`` (its model and data flags) too."""
    if maps:
        from submodular_attribution.frontend import base_parser
        from submodular_attribution.tasks import get_model_task

        parser = base_parser(get_model_task(model), "python -m evals.highest_confidence", __doc__.split("\n\n")[0])
        group = parser.add_argument_group("highest confidence")
        group.add_argument("--model", choices=TASK_NAMES, default="shapes",
                           help="model configuration (a task name) for --maps")
        group.add_argument("--n-points", type=int, default=101, help="--maps: area points of the insertion curve")
    else:
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        group = parser
        group.add_argument("--model", choices=TASK_NAMES, default="shapes",
                           help="model configuration (a task name) for --maps; its flags are accepted with --maps")
    parser.prog = "python -m evals.highest_confidence"
    parser.description = __doc__.split("\n\n")[0]
    _add_common(group)
    return parser


def _check_budgets(budgets: Sequence[float]) -> list[float]:
    for b in budgets:
        if not (math.isfinite(b) and 0.0 <= b <= 1.0):
            raise InputError(f"--budgets: area budgets must be in [0, 1], got {b}")
    return [float(b) for b in budgets]


def summarize(per_image: list[dict], budgets: Sequence[float]) -> list[dict]:
    """Per budget: mean highest confidence and mean area over the images where it is defined.

    ``per_image`` holds ``{"values": {budget: (confidence, area)}}`` entries. Returns
    ``[{budget, highest_confidence, area, images, undefined}]`` (means NaN when no image has one).
    """
    rows = []
    for b in budgets:
        pairs = np.array([entry["values"][b] for entry in per_image], dtype=np.float64).reshape(-1, 2)
        defined = np.isfinite(pairs).all(axis=1)
        confidence, _ = mean_finite(pairs[defined, 0])
        area, _ = mean_finite(pairs[defined, 1])
        rows.append({"budget": b, "highest_confidence": confidence, "area": area,
                     "images": int(defined.sum()), "undefined": int((~defined).sum())})
    return rows


def ordering_values(run_dir: str | Path, budgets: Sequence[float], include_empty: bool = False) -> list[dict]:
    """Per image of an SMDL run folder: ``{"image": json path relative to the folder, "values": {b: (conf, area)}}``."""
    from submodular_attribution.common.results import find_result_files, load_result

    run_dir = Path(run_dir)
    paths = find_result_files(run_dir, require_any=True)
    per_image = []
    for path in paths:
        try:
            result = load_result(path)
            if not isinstance(result.record.get("consistency_score"), list):
                raise ValueError(f"{path}: missing or non-list key 'consistency_score'")
            values = highest_confidence_ordering(result, budgets, include_empty=include_empty)
        except (ValueError, TypeError) as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(message if str(path) in message else f"{path}: {message}") from None
        per_image.append({"image": path.relative_to(run_dir).as_posix(), "values": values})
    return per_image


def saliency_values(args: argparse.Namespace, budgets: Sequence[float]) -> list[dict]:
    """Per list item: the highest confidence of its saliency map under the task's model."""
    import torch
    from tqdm import tqdm

    from baseline_attribution.models import attribution_model
    from submodular_attribution.common.images import image_tensor
    from submodular_attribution.common.maps import read_map
    from submodular_attribution.frontend import prepare
    from submodular_attribution.tasks import get_model_task

    from .saliency_metrics import highest_confidence_saliency

    maps_dir = Path(args.maps)
    if not maps_dir.is_dir():
        raise InputError(f"--maps {maps_dir}: no such folder")
    if args.n_points < 2:
        raise InputError(f"--n-points must be >= 2, got {args.n_points}")
    task = get_model_task(args.model)
    ready = prepare(task, args)
    if ready.worker.world_size > 1:
        raise InputError("highest_confidence runs as a single process; do not start it with torchrun")
    model = attribution_model(ready.scorer, batch_size=args.batch_size)
    per_image = []
    for item in tqdm(ready.items, desc="highest confidence", unit="img", disable=None if len(ready.items) > 5 else True):
        saliency = read_map(maps_dir, str(item.label), item.stem)
        image = image_tensor(task.read_input(ready.root / item.path, args.input_size)).to(model.device)
        if saliency.shape != tuple(image.shape[1:]):
            raise InputError(f"{maps_dir / str(item.label) / (item.stem + '.npy')}: map {saliency.shape} does not "
                             f"match the model's input size {tuple(image.shape[1:])} (--input-size)")
        if args.target == "prediction":
            with torch.no_grad():
                target = int(model.logits(image[None]).argmax())
        else:
            target = item.label
        values = highest_confidence_saliency(model, image, target, saliency, budgets, args.n_points,
                                             include_empty=args.include_empty)
        per_image.append({"image": item.path, "target": target, "values": values})
    return per_image


def format_table(rows: Sequence[dict]) -> str:
    lines = ["budget  highest confidence  area    images  undefined"]
    for row in rows:
        lines.append(f"{row['budget']:<6.2f}  {row['highest_confidence']:<18.4f}  {row['area']:<6.4f}  "
                     f"{row['images']:<6d}  {row['undefined']}")
    return "\n".join(lines)


def _json_number(value: float) -> float | None:
    return None if not math.isfinite(value) else value


def run(args: argparse.Namespace) -> dict:
    if (args.explanation_dir is None) == (args.maps is None):
        raise InputError("give exactly one of --explanation-dir (an SMDL result folder) or --maps (saliency maps)")
    budgets = _check_budgets(args.budgets)
    if args.explanation_dir is not None:
        source, mode = str(args.explanation_dir), "ordering"
        per_image = ordering_values(args.explanation_dir, budgets, args.include_empty)
    else:
        source, mode = str(args.maps), "saliency"
        per_image = saliency_values(args, budgets)
    rows = summarize(per_image, budgets)
    print(f"{source}: {len(per_image)} images", file=sys.stderr)
    print(format_table(rows))
    summary = {
        "source": source, "mode": mode, "num_images": len(per_image), "include_empty": bool(args.include_empty),
        "budgets": [{**row, "highest_confidence": _json_number(row["highest_confidence"]),
                     "area": _json_number(row["area"])} for row in rows],
        "per_image": [{**{k: v for k, v in entry.items() if k != "values"},
                       "values": {str(b): [_json_number(c), _json_number(a)] for b, (c, a) in entry["values"].items()}}
                      for entry in per_image],
    }
    if args.json:
        print(json.dumps(summary))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    maps, model = _mode_and_model(argv)
    args = get_args_parser(maps, model).parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
