"""Compare attribution methods on the same images: one table of every metric, and curve plots.

    python -m evals.benchmark --model default --methods smdl,gradcam,ig,rise \\
        --eval-list datasets/shapes/eval_list.txt --output-dir explanation_results/benchmark/shapes

Every method of :data:`METHODS` (SMDL, then every registered baseline) produces an H×W map per
image (SMDL: its ordering as a map, N − rank, so region ties are broken in raster order); every
map goes through every metric registered in :data:`evals.saliency_metrics.METRICS` (``--help``
lists them), one table column each, non-finite values dropped and counted; those that need an
object mask only where masks exist (the default benchmark). Each row also records the seconds
and model forward passes (images through the network) its method took.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

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
from submodular_attribution.frontend import model_parser, prepare
from submodular_attribution.models import Scorer
from submodular_attribution.regions import RegionDivider
from submodular_attribution.search import explain
from submodular_attribution.search_methods import OPTIONS
from submodular_attribution.audio import load_mask as load_event_mask
from submodular_attribution.shapes import load_mask
from submodular_attribution.tasks import ALIASES, TASK_NAMES
from visualization.overlay import save_curves_figure

from .saliency_metrics import METRICS, MetricInputs


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = model_parser(argv, "python -m evals.benchmark", __doc__.split("\n\n")[0],
                          save_dir_help="output folder (default: explanation_results/benchmark/<model>)")
    parser.epilog = "metrics, one column each (evals.saliency_metrics.METRICS): " + "; ".join(
        f"{metric.header}: {metric.summary}{' (where masks exist)' if metric.needs_mask else ''}"
        for metric in METRICS.values())
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default="shapes")
    name = pre.parse_known_args(argv)[0].model
    add_smdl_arguments(parser, get_smdl_task(name if name in (*TASK_NAMES, *ALIASES) else "shapes"))
    group = parser.add_argument_group("benchmark")
    group.add_argument("--output-dir", dest="save_dir", default=None, help="the same as --save-dir")
    group.add_argument("--methods", default="smdl,gradcam,ig,rise",
                       help=f"comma-separated, from {', '.join(METHODS)}")
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


# --------------------------------------------------------------------------- methods

@dataclass(frozen=True)
class RunContext:
    """What a method builds its explainer from: the parsed (and checked) flags, SMDL's resolved
    settings, the engine's scorer and the counting AttributionModel of the same network."""

    args: argparse.Namespace
    settings: SMDLSettings
    scorer: Scorer
    model: CountingModel


# explain(image as read, x: 3×H×W RGB [0, 1] on the device, item, target) -> (H×W map, forward passes)
Explain = Callable[[np.ndarray, torch.Tensor, ListItem, int], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class Method:
    """A method of the benchmark.

    explainer: ``RunContext -> explain``, called once per run; ``explain`` gives one image's H×W
        map (larger = more important for the target) and the model forward passes it took.
    config: ``SMDLSettings -> dict``, its settings beyond the shared flags that decide its rows.
    needs_embeddings: ``SMDLSettings -> bool``, whether the scorer must hold class embeddings.
    """

    explainer: Callable[[RunContext], Explain]
    config: Callable[[SMDLSettings], dict]
    needs_embeddings: Callable[[SMDLSettings], bool] = lambda settings: False


def _smdl_explainer(ctx: RunContext) -> Explain:
    settings, args = ctx.settings, ctx.args
    divider = RegionDivider(settings.division, tuple(args.input_size))

    def smdl(image: np.ndarray, x: torch.Tensor, item: ListItem, target: int) -> tuple[np.ndarray, int]:
        labels = divider(image, item)
        trace = explain(ctx.scorer, x, torch.from_numpy(labels), target, settings.weights, search=settings.search,
                        options=settings.options, batch_size=args.batch_size, seed=item_seed(args.seed, item),
                        precision=settings.precision)
        return rank_map_saliency(rank_map(labels, trace.order)), trace.forward_passes

    return smdl


def baseline(name: str) -> Method:
    """The registered baseline ``name`` (:data:`baseline_attribution.base.REGISTRY`) with its
    default options, its forward passes counted by the run's CountingModel."""

    def explainer(ctx: RunContext) -> Explain:
        def run_baseline(image: np.ndarray, x: torch.Tensor, item: ListItem, target: int) -> tuple[np.ndarray, int]:
            ctx.model.forward_passes = 0
            saliency = attribute(name, ctx.model, x[None], [target], numpy=True)[0]
            return saliency, ctx.model.forward_passes

        return run_baseline

    return Method(explainer, config=lambda settings: {"options": {}})


SMDL = Method(_smdl_explainer,
              config=lambda s: dict(division=dict(vars(s.division)), weights=list(s.weights.positional()),
                                    search=s.search, search_options=s.options),
              needs_embeddings=lambda s: s.weights.effectiveness != 0)
METHODS: dict[str, Method] = {"smdl": SMDL, **{name: baseline(name) for name in sorted(REGISTRY)}}


# Flags that never change a row's numbers (where and how fast it runs, which items).
_NOT_CONFIG = {"save_dir", "methods", "num_images", "device", "batch_size", "strict", "begin", "end", "eval_list"}
_SMDL_ONLY = {"division", "region_size", "num_regions", "sam_masks", "sam_checkpoint", "sam_model_type",
              "prior_dir", "grid", "per_region", "lambda1", "lambda2", "lambda3", "lambda4", "search",
              "precision", "channels_last", "compile", "images_at_once", "workers", *OPTIONS}


def method_config(method: str, args: argparse.Namespace, settings: SMDLSettings) -> dict:
    """Everything that determines a method's rows: the model and data flags, the target rule and
    seed, and the method's own settings (:attr:`Method.config`: for SMDL its division, λ and
    search as resolved, for a baseline its options)."""
    config = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_CONFIG | _SMDL_ONLY}
    config["method"] = method
    config.update(METHODS[method].config(settings))
    return json.loads(json.dumps(config, default=str))


def config_key(config: dict) -> str:
    """12 hex digits of the SHA-1 of the configuration: the folder of its cached rows."""
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- rows

def _row(ctx: RunContext, method: str, explain_one: Explain, item: ListItem, root: Path) -> dict:
    """One image explained by ``method`` and scored by every registered metric."""
    args, model = ctx.args, ctx.model
    image = get_smdl_task(args.model).model.read_input(root / item.path, args.input_size)  # audio: a WAV file
    x = image_tensor(image).to(model.device)
    target = item.label if args.target == "label" else int(model.batched_probs(x[None]).argmax())
    start = time.perf_counter()
    saliency, forwards = explain_one(image, x, item, target)
    seconds = time.perf_counter() - start
    # the default benchmarks carry an object mask (shapes) or an event mask (audio)
    mask = (load_event_mask if item.path.lower().endswith(".wav") else load_mask)(root / item.path)
    inputs = MetricInputs(model, x, target, saliency, mask)
    scores = {name: metric.compute(inputs) for name, metric in METRICS.items()
              if mask is not None or not metric.needs_mask}
    curves = {k: np.asarray(inputs.curves[k]).tolist() for k in ("x_ins", "y_ins", "x_del", "y_del")}
    return {"method": method, "image": item.path, "target": target, "seconds": seconds, "forward_passes": forwards,
            **scores, "curves": curves}


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
    lines = ["| method | " + " | ".join(METRICS[m].header for m in metrics) + " | s/img | forwards/img |",
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
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(METHODS)}")
    output_dir = ensure_dir(Path(args.save_dir or paths.explanations_dir() / "benchmark" / task.name))
    settings = smdl_settings(task, args)
    ready = prepare(task.model, args, embeddings=any(METHODS[m].needs_embeddings(settings) for m in methods))
    items = ready.items[: args.num_images] if args.num_images else ready.items
    model = CountingModel.wrap(attribution_model(ready.scorer, batch_size=args.batch_size))
    ctx = RunContext(args, settings, ready.scorer, model)
    explainers = {m: METHODS[m].explainer(ctx) for m in methods}
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
            row = {**_row(ctx, method, explainers[method], item, ready.root), "code": code}
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
