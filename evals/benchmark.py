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

Rows are cached per (method configuration, image) under ``<output-dir>/rows/<method>/<key>/``,
where ``<key>`` hashes everything that changes the numbers (model flags, target rule, seed; for
SMDL the division, λ and search; for a baseline its options; ``config.json`` beside the rows
spells it out): a rerun computes only what is missing, and a changed setting never reuses stale
rows. Each row records the code that computed it (a hash of the numeric packages' sources:
:func:`~submodular_attribution.common.provenance.source_fingerprint`); rows reused from other
code are counted in one note line per method, since their numbers and timings are that code's
(delete the folder named there to recompute). Each invocation is recorded in ``runs.jsonl``;
failed images in ``failures.jsonl``. Writes ``table.md``, ``table.csv`` and mean
insertion/deletion curve plots.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from baseline_attribution.base import REGISTRY, AttributionModel, attribute
from baseline_attribution.models import attribution_model
from submodular_attribution.cli import SMDLSettings, add_smdl_arguments, get_smdl_task, item_seed, smdl_settings
from submodular_attribution.common import paths
from submodular_attribution.common.atomic import atomic_write_json, atomic_write_text, ensure_dir
from submodular_attribution.common.curves import mean_finite, spread
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import image_tensor
from submodular_attribution.common.lists import ListItem
from submodular_attribution.common.progress import run_items
from submodular_attribution.common.provenance import source_fingerprint, write_provenance
from submodular_attribution.common.results import rank_map, rank_map_saliency
from submodular_attribution.frontend import check_common, model_parser, prepare
from submodular_attribution.regions import RegionDivider
from submodular_attribution.search import explain
from submodular_attribution.search_methods import OPTIONS
from submodular_attribution.audio import load_mask as load_event_mask
from submodular_attribution.shapes import load_mask
from submodular_attribution.tasks import ALIASES, TASK_NAMES
from visualization.overlay import save_curves_figure

from .localization import energy_in_mask, pointing_game
from .saliency_metrics import (
    diffid, incremental_deletion, insertion_deletion, mufidelity, sensitivity_n, single_deletion_score)

METRICS = ("insertion_auc", "deletion_auc", "mufidelity", "sds", "sensitivity_n", "diffid", "incdel_morf",
           "incdel_lerf", "pointing", "energy")
HEADERS = {"insertion_auc": "Insertion AUC ↑", "deletion_auc": "Deletion AUC ↓", "mufidelity": "MuFidelity ↑",
           "sds": "SDS ↑", "sensitivity_n": "Sensitivity-N ↑", "diffid": "DiffID ↑",
           "incdel_morf": "IncDel MoRF ↓", "incdel_lerf": "IncDel LeRF ↑", "pointing": "Pointing ↑",
           "energy": "Energy in mask ↑"}


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = model_parser(argv, "python -m evals.benchmark", __doc__.split("\n\n")[0],
                          save_dir_help="output folder (default: explanation_results/benchmark/<model>)")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default="shapes")
    name = pre.parse_known_args(argv)[0].model
    add_smdl_arguments(parser, get_smdl_task(name if name in (*TASK_NAMES, *ALIASES) else "shapes"))
    group = parser.add_argument_group("benchmark")
    group.add_argument("--output-dir", dest="save_dir", default=None, help="the same as --save-dir")
    group.add_argument("--methods", default="smdl,gradcam,ig,rise",
                       help=f"comma-separated: smdl and any of {', '.join(sorted(REGISTRY))}")
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


# Flags that never change a row's numbers (where and how fast it runs, which items).
_NOT_CONFIG = {"save_dir", "methods", "num_images", "device", "batch_size", "strict", "begin", "end", "eval_list"}
_SMDL_ONLY = {"division", "region_size", "num_regions", "sam_masks", "sam_checkpoint", "sam_model_type",
              "prior_dir", "grid", "per_region", "lambda1", "lambda2", "lambda3", "lambda4", "search",
              "precision", "channels_last", "compile", "images_at_once", "workers", *OPTIONS}


def method_config(method: str, args: argparse.Namespace, settings: SMDLSettings) -> dict:
    """Everything that determines a method's rows: the model and data flags, the target rule and
    seed, and for SMDL its division, λ and search (as resolved), for a baseline its options."""
    config = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_CONFIG | _SMDL_ONLY}
    config["method"] = method
    if method == "smdl":
        config.update(division=dict(vars(settings.division)), weights=list(settings.weights.positional()),
                      search=settings.search, search_options=settings.options)
    else:
        config["options"] = {}
    return json.loads(json.dumps(config, default=str))


def config_key(config: dict) -> str:
    """12 hex digits of the SHA-1 of the configuration: the folder of its cached rows."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def _explain_smdl(settings: SMDLSettings, scorer, divider, image: np.ndarray, x: torch.Tensor, item: ListItem,
                  target: int, batch_size: int, seed: int):
    labels = divider(image, item)
    trace = explain(scorer, x, torch.from_numpy(labels), target, settings.weights, search=settings.search,
                    options=settings.options, batch_size=batch_size, seed=item_seed(seed, item),
                    precision=settings.precision)
    return rank_map_saliency(rank_map(labels, trace.order)), trace.forward_passes


def _row(args, settings, scorer, model: CountingModel, divider, method: str, item: ListItem, root: Path) -> dict:
    image = get_smdl_task(args.model).model.read_input(root / item.path, args.input_size)  # audio: a WAV file
    x = image_tensor(image).to(model.device)
    target = item.label if args.target == "label" else int(model.batched_probs(x[None]).argmax())
    start = time.perf_counter()
    if method == "smdl":
        saliency, forwards = _explain_smdl(settings, scorer, divider, image, x, item, target, args.batch_size,
                                           args.seed)
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
    # the default benchmarks carry an object mask (shapes) or an event mask (audio)
    mask = (load_event_mask if item.path.lower().endswith(".wav") else load_mask)(root / item.path)
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
        sem = spread([v for v in values if v is not None and math.isfinite(v)])[1]
        out[metric] = {"mean": mean, "sem": math.nan if sem is None else sem, "dropped": dropped}
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
    atomic_write_text(output_dir / "table.md", table + "\n")
    fields = sorted({k for r in rows_csv for k in r}, key=lambda k: (k != "method", k))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows_csv)
    atomic_write_text(output_dir / "table.csv", text.getvalue())
    return table


def run(args: argparse.Namespace) -> dict:
    """Every method on every image; returns ``{"summaries": {method: summary}, "failed": count}``."""
    task = get_smdl_task(args.model)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m != "smdl" and m not in REGISTRY]
    if unknown or not methods:
        raise InputError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from smdl, {', '.join(sorted(REGISTRY))}")
    output_dir = ensure_dir(Path(args.save_dir or paths.explanations_dir() / "benchmark" / task.name))
    settings = smdl_settings(task, args)
    divider = RegionDivider(settings.division, tuple(check_common(args).input_size)) if "smdl" in methods else None
    ready = prepare(task.model, args, embeddings="smdl" in methods and settings.weights.effectiveness != 0)
    items = ready.items[: args.num_images] if args.num_images else ready.items
    model = CountingModel.wrap(attribution_model(ready.scorer, batch_size=args.batch_size))
    configs = {m: method_config(m, args, settings) for m in methods}
    write_provenance(output_dir, {**vars(args), "row_folders": {m: config_key(c) for m, c in configs.items()}})
    summaries, curves, failed, notes = {}, {}, 0, []
    code = source_fingerprint()  # rows record it: reused rows from other code are noted below
    for method in methods:
        rows_dir = output_dir / "rows" / method / config_key(configs[method])
        atomic_write_json(rows_dir / "config.json", configs[method])  # what these rows were computed with

        def row_of(item: ListItem) -> dict:
            path = rows_dir / str(item.label) / f"{item.stem}.json"
            if path.is_file():
                return json.loads(path.read_text())
            row = {**_row(args, settings, ready.scorer, model, divider, method, item, ready.root), "code": code}
            atomic_write_json(path, row)
            return row

        report = run_items(items, row_of, run_dir=output_dir, desc=method, strict=args.strict)
        failed += len(report.failures)
        rows = list(report.results.values())
        if not rows:
            continue
        older = sorted({str(r.get("code", "unrecorded")) for r in rows} - {code})
        if older:
            stale = sum(r.get("code", "unrecorded") != code for r in rows)
            notes.append(f"note: {method}: {stale} of {len(rows)} rows were computed by other code "
                         f"({', '.join(older)}; now {code}); their numbers and seconds are that code's: "
                         f"delete {rows_dir} to recompute")
        summaries[method] = _summary(rows)
        curves[method] = {kind: [(r["curves"][f"x_{kind}"], r["curves"][f"y_{kind}"]) for r in rows]
                          for kind in ("ins", "del")}
    if not summaries:
        raise InputError(f"no image could be evaluated; see {output_dir / 'failures.jsonl'}")
    table = write_table(summaries, output_dir)
    for kind, name in (("ins", "insertion"), ("del", "deletion")):
        save_curves_figure({m: c[kind] for m, c in curves.items()}, output_dir / f"mean_{name}_curves.png", kind=name)
    print(f"\n{task.name}: {len(items)} images\n{table}\n" + "".join(f"\n{line}" for line in notes) +
          f"\nWritten: {output_dir}/table.md, table.csv, mean_insertion_curves.png, mean_deletion_curves.png")
    return {"summaries": summaries, "failed": failed}


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser(argv).parse_args(argv)
    return run_reporting_input_errors(lambda: 1 if run(args)["failed"] else 0)


if __name__ == "__main__":
    sys.exit(main())
