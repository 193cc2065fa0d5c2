"""Compare attribution methods on the same images: one table of every metric, and curve plots.

    python -m evals.benchmark --model default --methods smdl,gradcam,ig,rise \\
        --eval-list datasets/shapes/eval_list.txt --output-dir explanation_results/benchmark/shapes

Every method produces an H×W map per image (SMDL: its ordering as a map, N − rank, so region
ties are broken in raster order); every map goes through the same metric functions:

* Insertion / Deletion AUC — per-pixel ranking on the area axis (``evals.saliency_metrics``,
  preset ``smdl``), target-class softmax probability, black baseline, trapezoid rule;
* MuFidelity — grid 7, 32 random subsets, Spearman (Xplique's ImageNet setting);
* Single Deletion Score — grid 4, per-cell deletion to the mean colour, Spearman, non-finite
  correlations dropped and counted;
* Sensitivity-N — Pearson of removed mass vs target-logit drop, mean over ratios 0.1…0.9
  (20 Bernoulli pixel masks per ratio here, to keep the table cheap);
* DiffID — insertion minus deletion logit ratio over ratios 0.1…0.9;
* incremental deletion, 32 steps: MoRF (most important first, lower is better) and LeRF
  (least important first, higher is better), mean target probability;
* pointing game and energy inside the object mask, where masks exist (the default benchmark);
* seconds and model forward passes (images through the network) per image.

Rows are cached per (method, image) under ``<output-dir>/rows/``: a rerun computes only what
is missing. Writes ``table.md``, ``table.csv`` and mean insertion/deletion curve plots.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from baseline_attribution.base import REGISTRY, AttributionModel, attribute
from baseline_attribution.models import attribution_model
from submodular_attribution.atomic import atomic_write
from submodular_attribution.cli import image_tensor, prepare, resolve_defaults
from submodular_attribution.data import InputError, ListItem, load_image_rgb, run_reporting_input_errors
from submodular_attribution.divisions import RegionDivider
from submodular_attribution.objective import Weights
from submodular_attribution.results import REPO_ROOT, rank_map
from submodular_attribution.search import explain
from submodular_attribution.shapes import load_mask
from submodular_attribution.tasks import get_task, model_parser

from .localization import energy_in_mask, pointing_game
from .saliency_metrics import (
    diffid, incremental_deletion, insertion_deletion, mean_finite, mufidelity, ordering_to_saliency,
    sensitivity_n, single_deletion_score)

METRICS = ("insertion_auc", "deletion_auc", "mufidelity", "sds", "sensitivity_n", "diffid", "incdel_morf",
           "incdel_lerf", "pointing", "energy")
HEADERS = {"insertion_auc": "Insertion AUC ↑", "deletion_auc": "Deletion AUC ↓", "mufidelity": "MuFidelity ↑",
           "sds": "SDS ↑", "sensitivity_n": "Sensitivity-N ↑", "diffid": "DiffID ↑",
           "incdel_morf": "IncDel MoRF ↓", "incdel_lerf": "IncDel LeRF ↑", "pointing": "Pointing ↑",
           "energy": "Energy in mask ↑"}


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser, group = model_parser(argv, "python -m evals.benchmark", __doc__.split("\n\n")[0], "benchmark",
                                 aliases={"default": "shapes"})
    group.add_argument("--methods", default="smdl,gradcam,ig,rise",
                       help=f"comma-separated: smdl and any of {', '.join(sorted(REGISTRY))}")
    group.add_argument("--output-dir", default=None, help="default: explanation_results/benchmark/<model>")
    group.add_argument("--num-images", type=int, default=None, help="only the first N images of the list")
    return parser


class CountingModel(AttributionModel):
    """An AttributionModel that counts images sent through its network."""

    forward_passes: int = 0

    @classmethod
    def wrap(cls, model: AttributionModel) -> "CountingModel":
        counting = cls(**{f: getattr(model, f) for f in model.__dataclass_fields__})
        inner = model.logits

        def logits(images: torch.Tensor) -> torch.Tensor:
            counting.forward_passes += images.shape[0]
            return inner(images)

        counting.logits = logits
        return counting


def _explain_smdl(args, task, scorer, divider, image: np.ndarray, x: torch.Tensor, item: ListItem, target: int):
    weights = Weights.from_positional(args.lambda1, args.lambda2, args.lambda3, args.lambda4)
    labels = divider(image, item)
    trace = explain(scorer, x, torch.from_numpy(labels), target, weights, search=args.search,
                    pending_samples=args.pending_samples, batch_size=args.batch_size)
    return ordering_to_saliency(rank_map(labels, trace.order)), trace.forward_passes


def _row(args, task, scorer, model: CountingModel, divider, method: str, item: ListItem, root: Path) -> dict:
    image = load_image_rgb(root / item.path, tuple(args.input_size))
    x = image_tensor(image).to(model.device)
    target = item.label if args.target == "label" else int(model.batched_probs(x[None]).argmax())
    start = time.perf_counter()
    if method == "smdl":
        saliency, forwards = _explain_smdl(args, task, scorer, divider, image, x, item, target)
    else:
        model.forward_passes = 0
        saliency = attribute(method, model, x[None], [target], numpy=True)[0]
        forwards = model.forward_passes
    seconds = time.perf_counter() - start
    curves = insertion_deletion(model, x, target, saliency)
    sds = single_deletion_score(model, x, target, saliency)  # cell baseline: zeros in normalised space
    row = {"method": method, "image": item.path, "target": target, "seconds": seconds, "forward_passes": forwards,
           "insertion_auc": curves["auc_ins"], "deletion_auc": curves["auc_del"],
           "mufidelity": mufidelity(model, x, target, saliency), "sds": sds,
           "sensitivity_n": mean_finite(list(sensitivity_n(model, x, target, saliency, num_samples=20).values()))[0],
           "diffid": diffid(model, x, target, saliency)["diffid"],
           "incdel_morf": incremental_deletion(model, x, target, saliency, order="descending"),
           "incdel_lerf": incremental_deletion(model, x, target, saliency, order="ascending"),
           "curves": {k: np.asarray(curves[k]).tolist() for k in ("x_ins", "y_ins", "x_del", "y_del")}}
    mask = load_mask(root / item.path)  # default-benchmark images carry an object mask
    if mask is not None:
        row["pointing"] = float(pointing_game(saliency, mask))
        row["energy"] = energy_in_mask(saliency, mask)
    return row


def _summary(rows: list[dict]) -> dict:
    out = {"images": len(rows), "seconds": float(np.mean([r["seconds"] for r in rows])),
           "forward_passes": float(np.mean([r["forward_passes"] for r in rows]))}
    for metric in METRICS:
        values = [r[metric] for r in rows if metric in r]
        if not values:
            continue
        mean, dropped = mean_finite(values)
        finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        sem = float(finite.std(ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else float("nan")
        out[metric] = {"mean": mean, "sem": sem, "dropped": dropped}
    return out


def write_table(summaries: dict[str, dict], output_dir: Path) -> str:
    """Markdown table (returned and written) and CSV of mean ± standard error per method."""
    metrics = [m for m in METRICS if any(m in s for s in summaries.values())]
    lines = ["| method | " + " | ".join(HEADERS[m] for m in metrics) + " | s/img | forwards/img |",
             "|---" * (len(metrics) + 3) + "|"]
    rows_csv = []
    for method, s in summaries.items():
        cells = [f"{s[m]['mean']:.4f} ± {s[m]['sem']:.4f}" if m in s else "–" for m in metrics]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {s['seconds']:.2f} | {s['forward_passes']:.0f} |")
        rows_csv.append({"method": method, "images": s["images"], "seconds": s["seconds"],
                         "forward_passes": s["forward_passes"],
                         **{f"{m}_{k}": s[m][k] for m in metrics if m in s for k in ("mean", "sem", "dropped")}})
    table = "\n".join(lines)
    atomic_write(output_dir / "table.md", lambda h: h.write((table + "\n").encode()))
    fields = sorted({k for r in rows_csv for k in r}, key=lambda k: (k != "method", k))

    def write_csv(handle):
        import io

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows_csv)
        handle.write(text.getvalue().encode())

    atomic_write(output_dir / "table.csv", write_csv)
    return table


def run(args: argparse.Namespace) -> dict[str, dict]:
    task_name = "shapes" if args.model == "default" else args.model
    task = get_task(task_name)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m != "smdl" and m not in REGISTRY]
    if unknown or not methods:
        raise InputError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from smdl, {', '.join(sorted(REGISTRY))}")
    output_dir = Path(args.output_dir or REPO_ROOT / "explanation_results" / "benchmark" / task_name)
    args = resolve_defaults(task, args)
    divider = RegionDivider(args, task.division_options.get(args.division, {}))
    ready = prepare(task, args)
    items = ready.items[: args.num_images] if args.num_images else ready.items
    model = CountingModel.wrap(attribution_model(ready.scorer, batch_size=args.batch_size))
    summaries, curves = {}, {}
    for method in methods:
        rows = []
        for item in tqdm(items, desc=method, unit="img", disable=None):
            path = output_dir / "rows" / method / str(item.label) / f"{item.stem}.json"
            if path.is_file():
                rows.append(json.loads(path.read_text()))
                continue
            row = _row(args, task, ready.scorer, model, divider, method, item, ready.root)
            atomic_write(path, lambda h: h.write(json.dumps(row).encode()))
            rows.append(row)
        summaries[method] = _summary(rows)
        curves[method] = {kind: [(r["curves"][f"x_{kind}"], r["curves"][f"y_{kind}"]) for r in rows]
                          for kind in ("ins", "del")}
    table = write_table(summaries, output_dir)
    from visualization.overlay import save_curves_figure

    for kind, name in (("ins", "insertion"), ("del", "deletion")):
        save_curves_figure({m: c[kind] for m, c in curves.items()}, output_dir / f"mean_{name}_curves.png", kind=name)
    print(f"\n{task_name}: {len(items)} images\n{table}\n\nWritten: {output_dir}/table.md, table.csv, "
          f"mean_insertion_curves.png, mean_deletion_curves.png")
    return summaries


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser(argv).parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
