"""Detection targets: SMDL against a random ordering, D-RISE and Grad-CAM, on the same boxes.

    python -m evals.detection_benchmark                                   # the 17 boxes of the default
    python -m evals.detection_benchmark --limit 20 --methods smdl,smdl-fast,random,drise

Model: the embedded shapes detector (``ckpt/shapes_detector.pt``, trained at first use) on the
default detection list (``datasets/detection/eval_list.txt``, generated at first use), or
``--model``/``--checkpoint``/``--eval-list`` as for ``smdl_explanation_detection``. The score of
an image for a target is the detection score (max over detections of IoU with the target box ×
score for its class, :mod:`submodular_attribution.detection.matching`), for every method and metric.

Methods (each gives an H×W map at the model's input size): ``smdl`` (the ``--search``, default
bidirectional), ``smdl-fast`` (the fast search), ``random`` (a seeded random ordering of the same
regions: the control), ``drise`` (:func:`baseline_attribution.drise.drise`, ``--drise-masks``
masks) and ``gradcam`` (Grad-CAM of the detection score on the detector's last shared layer).
Orderings become maps (N − rank)/N.

Metrics per target (means ± standard error over targets in the table):

* Insertion / Deletion AUC: :func:`evals.saliency_metrics.insertion_deletion`, preset ``smdl``
  (pixels by saliency, 101 area points, black fill, trapezoid) on the detection score;
* Pointing (box / mask): the map's maximum pixel (first in raster order among ties) lies in the
  target box (pixel centres inside it) / in the object's mask (where the list's folder has
  ``masks/<target stem>.png``, as the default set does);
* Energy (box / mask): share of positive saliency inside the box / mask;
* Best ≤ 25 %: the highest detection score reached by revealing at most a quarter of the image
  in the map's order (:func:`evals.saliency_metrics.highest_confidence_saliency`) — for boxes
  the model misses on the full image ("misses", score < 0.5, counted under the table), how far
  a part of the image gets it.

Writes ``table.md`` and ``rows.jsonl`` (one line per method and target) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from baseline_attribution.base import attribute
from baseline_attribution.drise import detection_attribution_model, drise
from submodular_attribution.common import paths
from submodular_attribution.common.atomic import atomic_write_text
from submodular_attribution.common.checks import check_int, flag_errors
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import image_tensor, load_image_rgb
from submodular_attribution.common.results import rank_map, rank_map_saliency
from submodular_attribution.detection.scorer import DetectionScorer
from submodular_attribution.detection.shapes_data import target_mask_path, write_detection_eval_set
from submodular_attribution.detection.targets import check_boxes, read_detection_list, resolve_class, scale_box
from submodular_attribution.detection_cli import DETECTION, SHAPES_LIST, WEIGHTS, add_detector_arguments, build_detector
from submodular_attribution.common.distributed import file_lock
from submodular_attribution.models import resolve_device
from submodular_attribution.regions import DivisionConfig, RegionDivider
from submodular_attribution.search import explain_many

from .localization import energy_in_mask, pointing_game
from .saliency_metrics import highest_confidence_saliency, insertion_deletion

METHODS = ("smdl", "smdl-fast", "random", "drise", "gradcam")
COLUMNS = [("ins", "Insertion AUC ↑"), ("del", "Deletion AUC ↓"), ("point_box", "Pointing box ↑"),
           ("point_mask", "Pointing mask ↑"), ("energy_box", "Energy box ↑"), ("energy_mask", "Energy mask ↑"),
           ("best25", "Best ≤25 % ↑")]


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evals.detection_benchmark", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--eval-list", default=str(paths.home() / SHAPES_LIST), help="detection list (see smdl_explanation_detection)")
    p.add_argument("--datasets", default=None, help="image root (default: the list's folder)")
    p.add_argument("--limit", type=int, default=20, help="the first N targets of the list (the default list has 17)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {', '.join(METHODS)}")
    p.add_argument("--search", default="bidirectional", help="the search of the 'smdl' row")
    p.add_argument("--checkpoint", default=str(paths.weights_file("shapes_detector.pt")))
    add_detector_arguments(p)
    p.add_argument("--input-size", type=int, default=112, help="square side the images are resized to")
    p.add_argument("--region-size", type=int, default=16, help="SLICO region size at the input size (≈49 regions at 112)")
    p.add_argument("--drise-masks", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(paths.explanations_dir() / "detection_benchmark"))
    return p


def box_mask(box, shape: tuple[int, int]) -> np.ndarray:
    """H×W bool: pixels whose centre lies inside the box."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    x1, y1, x2, y2 = box
    return (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)


def _mean_se(values: list[float]) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return "–"
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{v.mean():.4f} ± {se:.4f}"


def run(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS)})")
    with flag_errors():
        check_int("--limit", args.limit, 1)
    device = resolve_device(args.device)
    if Path(args.eval_list).resolve() == (paths.home() / SHAPES_LIST).resolve():
        with file_lock(paths.home() / SHAPES_LIST):
            write_detection_eval_set(Path(args.eval_list).parent)
    root = Path(args.datasets) if args.datasets else Path(args.eval_list).parent
    items = read_detection_list(args.eval_list)[:args.limit]
    check_boxes(items, root, args.eval_list)
    detector, names, num_classes = build_detector(DETECTION, args, device)
    size = (args.input_size, args.input_size)
    divider = RegionDivider(DivisionConfig(name="slico", region_size=args.region_size), size)
    samples = []
    for item in items:
        original = load_image_rgb(root / item.path)
        image = load_image_rgb(root / item.path, size)
        box = scale_box(item.box, (original.shape[1], original.shape[0]), (size[1], size[0]))
        mask_file = target_mask_path(root, item.stem)
        mask = None
        if mask_file.is_file():
            import cv2
            mask = cv2.resize(cv2.imread(str(mask_file), cv2.IMREAD_GRAYSCALE), (size[1], size[0]),
                              interpolation=cv2.INTER_NEAREST) > 127
        samples.append((item, image, divider(image, item), box, mask,
                        resolve_class(item, names, num_classes, args.eval_list)))
    scorer = DetectionScorer(detector, names).bind([(box, cls) for _, _, _, box, _, cls in samples])
    model = detection_attribution_model(scorer, args.batch_size)
    torch.manual_seed(args.seed)

    maps: dict[str, list[np.ndarray]] = {}
    cost: dict[str, tuple[float, float]] = {}
    for method in methods:
        start = time.perf_counter()
        forwards = 0.0
        if method in ("smdl", "smdl-fast", "random"):
            search = {"smdl": args.search, "smdl-fast": "fast", "random": "random"}[method]
            traces = explain_many(scorer, [(image_tensor(img), torch.from_numpy(lab), j, args.seed + j)
                                           for j, (_, img, lab, _, _, _) in enumerate(samples)],
                                  WEIGHTS, search=search, batch_size=args.batch_size)
            maps[method] = [rank_map_saliency(rank_map(lab, t.order)) for (_, _, lab, _, _, _), t in zip(samples, traces)]
            forwards = float(np.mean([t.forward_passes for t in traces]))
        else:
            images = torch.stack([image_tensor(img) for _, img, _, _, _, _ in samples]).to(device)
            targets = torch.arange(len(samples), device=device)
            if method == "drise":
                out = drise(model, images, targets, N=args.drise_masks, seed=args.seed)
                forwards = float(args.drise_masks)
            else:
                out = attribute("gradcam", model, images, targets)
                forwards = 1.0
            maps[method] = [m for m in out.detach().float().cpu().numpy()]
        cost[method] = ((time.perf_counter() - start) / len(samples), forwards)

    rows = []
    for method in methods:
        for j, ((item, image, _, box, mask, _), sal) in enumerate(zip(samples, maps[method])):
            img = image_tensor(image)
            curves = insertion_deletion(model, img, j, sal, preset="smdl")
            best = highest_confidence_saliency(model, img, j, sal, budgets=(0.25,))
            inside = box_mask(box, sal.shape)
            rows.append({
                "method": method, "target": item.stem, "class": item.query, "org_score": float(curves["y_del"][0]),
                "ins": curves["auc_ins"], "del": curves["auc_del"],
                "point_box": float(pointing_game(sal, inside)), "energy_box": energy_in_mask(sal, inside),
                "point_mask": None if mask is None else float(pointing_game(sal, mask)),
                "energy_mask": None if mask is None else energy_in_mask(sal, mask),
                "best25": best[0.25][0],
            })
    out = Path(args.out)
    misses = sum(1 for r in rows if r["method"] == methods[0] and r["org_score"] < 0.5)
    lines = [f"**Detection targets: {len(samples)} boxes of {args.eval_list}, model {args.model}, SLICO region size "
             f"{args.region_size} at {args.input_size}², SMDL search {args.search}; {misses} missed (score < 0.5 on "
             "the full image)**", "",
             "| method | " + " | ".join(title for _, title in COLUMNS) + " | s/target | forwards/target |",
             "|---|" + "---|" * (len(COLUMNS) + 2)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        cells = [_mean_se([r[key] for r in mine]) for key, _ in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {cost[method][0]:.2f} | {cost[method][1]:.0f} |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(out / "table.md", table)
    atomic_write_text(out / "rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    print(table)
    print(f"wrote {out / 'table.md'} and {out / 'rows.jsonl'}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
