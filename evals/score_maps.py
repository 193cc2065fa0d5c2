"""Score a folder of saliency maps with the registered faithfulness metrics.

    python -m evals.score_maps --maps explanation_results/shapes/rise --metric diffid mufidelity

The model and data flags are the map generator's (``--model``, ``--checkpoint``, ``--arch``,
``--num-classes``, ``--input-size``, ``--eval-list``, ``--datasets``, ``--begin/--end``,
``--target``; without them, the embedded shapes CNN and its list): give the ones the maps were
made with. ``--metric`` takes keys of :data:`evals.saliency_metrics.METRICS` (``insertion`` and
``deletion`` name the AUCs; default: every metric; those that need an object mask only where the
data has one). Prints ``name: mean ± s.e. (n images)`` per metric and writes a JSON summary with
every image's values (``--out``, default ``<maps>/scores.json``).

Maps are read for each list item (:func:`read_saliency`) from our layout,
``<maps>/<class index>/<stem>.npy``, or the original SMDL code's, ``<maps>/<list path without its
suffix>.npy``. A map with a channel axis (H×W×C or C×H×W, C = 1 or 3, as Xplique's or the
re-calibration code's per-channel maps) is averaged over it; a map of another size with the
input's aspect ratio is stretched to ``--input-size`` bilinearly (OpenCV ``INTER_LINEAR``, as the
figures overlay maps). A missing, unreadable, non-finite or ill-shaped map fails its image only:
one line, a record in ``<maps>/failures.jsonl``, and the others are scored (``--strict`` stops).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from submodular_attribution.common.atomic import atomic_write_json
from submodular_attribution.common.curves import spread
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.lists import ListItem
from submodular_attribution.common.maps import map_path
from submodular_attribution.common.progress import run_items
from submodular_attribution.common.provenance import write_provenance
from submodular_attribution.frontend import model_parser

from .saliency_metrics import METRICS

#: Short names for the AUC metrics, as the original papers call them.
METRIC_ALIASES = {"insertion": "insertion_auc", "deletion": "deletion_auc"}
#: Aspect ratios closer than this count as the same (a 7×7 CAM on 224×224 is stretched; 224×224 on
#: 224×448 is refused).
ASPECT_TOLERANCE = 0.01


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = model_parser(argv, "python -m evals.score_maps", __doc__.split("\n\n")[0])
    parser.epilog = "metrics (evals.saliency_metrics.METRICS): " + "; ".join(
        f"{name}: {metric.summary}{' (where masks exist)' if metric.needs_mask else ''}"
        for name, metric in METRICS.items())
    group = parser.add_argument_group("scoring")
    group.add_argument("--maps", required=True, help="the maps folder (<class>/<stem>.npy, or the original "
                       "code's <list path without suffix>.npy)")
    group.add_argument("--metric", nargs="+", action="extend", default=None, metavar="NAME",
                       choices=(*METRICS, *METRIC_ALIASES),
                       help=f"one or more of {', '.join((*METRICS, *METRIC_ALIASES))}; repeatable "
                            "(default: every metric)")
    group.add_argument("--out", default=None, help="JSON summary (default: <maps>/scores.json)")
    group.add_argument("--strict", action="store_true", help="stop at the first image that fails, instead of "
                       "recording it in failures.jsonl and going on")
    return parser


# --------------------------------------------------------------------------- maps

def map_candidates(maps_dir: str | Path, item: ListItem) -> list[Path]:
    """Where ``item``'s map may be: our layout first, then the original code's."""
    ours = map_path(maps_dir, str(item.label), item.stem)
    original = Path(maps_dir) / Path(item.path).with_suffix(".npy")
    return [ours] if original == ours else [ours, original]


def as_map(array: np.ndarray, size: tuple[int, int], path: Path | str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """An H×W float64 map at ``size`` from a saved array, and the H'×W' it was stretched from
    (None when it had the size already). Channel axes of 1 or 3 are averaged (a mean or a sum of
    channels ranks pixels alike, and every metric here depends on the ranking or is scale-free);
    anything else, a non-finite value or another aspect ratio is an InputError naming ``path``."""
    import cv2

    sal = np.asarray(array)
    if sal.dtype == object or not np.issubdtype(sal.dtype, np.number):
        raise InputError(f"{path}: expected a numeric saliency map, got dtype {sal.dtype}")
    sal = sal.astype(np.float64)
    while sal.ndim > 2 and sal.shape[0] == 1:  # a leading batch axis of one
        sal = sal[0]
    if sal.ndim == 3 and sal.shape[-1] in (1, 3):
        sal = sal.mean(axis=-1)
    elif sal.ndim == 3 and sal.shape[0] in (1, 3):
        sal = sal.mean(axis=0)
    if sal.ndim != 2 or min(sal.shape) < 1:
        raise InputError(f"{path}: expected an H×W map (or H×W×C / C×H×W, C = 1 or 3), got shape {array.shape}")
    if not np.isfinite(sal).all():
        raise InputError(f"{path}: saliency map has non-finite values")
    height, width = size
    if sal.shape == (height, width):
        return sal, None
    h, w = sal.shape
    if abs(h / w - height / width) > ASPECT_TOLERANCE * (height / width):
        raise InputError(f"{path}: map {h}×{w} does not match the input {height}×{width} (--input-size), "
                         "not even in aspect ratio")
    return cv2.resize(sal, (width, height), interpolation=cv2.INTER_LINEAR), (h, w)


def read_saliency(maps_dir: str | Path, item: ListItem, size: tuple[int, int]) -> tuple[np.ndarray, Path, tuple | None]:
    """``item``'s map at ``size`` (:func:`as_map`), the file it came from and the size it was
    stretched from; a missing or unreadable file is an InputError naming it."""
    candidates = map_candidates(maps_dir, item)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise InputError(f"{candidates[0]}: saliency map not found"
                         + (f" (nor {candidates[1]})" if len(candidates) > 1 else ""))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: unreadable saliency map ({str(err).splitlines()[0] if str(err) else err})") from None
    sal, stretched = as_map(array, size, path)
    return sal, path, stretched


# --------------------------------------------------------------------------- scoring

def metric_names(requested: Sequence[str] | None) -> list[str]:
    """Registry keys for ``--metric`` values (aliases resolved, repeats dropped, order kept)."""
    names = [METRIC_ALIASES.get(name, name) for name in (requested or METRICS)]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise InputError(f"--metric {', '.join(unknown)}: unknown; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def _mask_loader(item: ListItem):
    """The object (shapes) or event (audio) mask beside a default benchmark's item, else None."""
    if item.path.lower().endswith(".wav"):
        from submodular_attribution.audio import load_mask as load_event_mask

        return load_event_mask
    from submodular_attribution.shapes import load_mask

    return load_mask


def score_item(model, task, args: argparse.Namespace, root: Path, maps_dir: Path, item: ListItem,
               metrics: Sequence[str]) -> dict:
    """One image: its map read and scored by ``metrics`` (a needs-mask metric only where the data
    has a mask). The row: image, class, target, map file, size stretched from, and one value
    per metric (NaN where a metric is undefined)."""
    from submodular_attribution.common.images import image_tensor

    from .saliency_metrics import MetricInputs

    size = tuple(args.input_size)
    saliency, path, stretched = read_saliency(maps_dir, item, size)
    x = image_tensor(task.read_input(root / item.path, size)).to(model.device)
    target = item.label if args.target == "label" else int(model.batched_probs(x[None]).argmax())
    mask = _mask_loader(item)(root / item.path) if any(METRICS[m].needs_mask for m in metrics) else None
    inputs = MetricInputs(model, x, target, saliency, mask)
    values = {m: float(METRICS[m].compute(inputs)) for m in metrics if mask is not None or not METRICS[m].needs_mask}
    return {"image": item.path, "class": item.label, "target": target, "map": str(path),
            "stretched_from": list(stretched) if stretched else None, "values": values}


def summarize(rows: Sequence[dict], metrics: Sequence[str]) -> dict:
    """Per metric: mean and standard error of the finite values, their count, and how many were
    undefined (NaN, e.g. a correlation of a constant map) and dropped."""
    out = {}
    for name in metrics:
        values = [r["values"][name] for r in rows if name in r["values"]]
        finite = [v for v in values if math.isfinite(v)]
        sem = spread(finite)[1]
        out[name] = {"mean": float(np.mean(finite)) if finite else None, "sem": sem, "images": len(finite),
                     "undefined": len(values) - len(finite)}
    return out


def format_line(name: str, summary: dict) -> str:
    """``name: mean ± s.e. (n images)``, with the undefined count where there is one."""
    mean = "nan" if summary["mean"] is None else f"{summary['mean']:.4f}"
    sem = "nan" if summary["sem"] is None else f"{summary['sem']:.4f}"
    undefined = f", {summary['undefined']} undefined" if summary["undefined"] else ""
    return f"{name}: {mean} ± {sem} ({summary['images']} images{undefined})"


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def score_folder(args: argparse.Namespace, ready=None) -> dict:
    """Score ``args.maps`` (parsed by :func:`get_args_parser`); ``ready``: a
    :class:`~submodular_attribution.frontend.Prepared` run to reuse (its model and list), e.g.
    the map generator's. Prints one line per metric, writes the JSON summary and returns it
    (``"failed"``: the number of images that failed)."""
    from baseline_attribution.models import attribution_model
    from submodular_attribution.frontend import prepare
    from submodular_attribution.tasks import get_model_task

    maps_dir = Path(args.maps)
    if not maps_dir.is_dir():
        raise InputError(f"--maps {maps_dir}: no such folder")
    metrics = metric_names(args.metric)
    task = get_model_task(args.model)
    ready = ready or prepare(task, args)
    if ready.worker.world_size > 1:
        raise InputError("score_maps runs as a single process; do not start it with torchrun")
    model = attribution_model(ready.scorer, batch_size=args.batch_size)
    out = Path(args.out) if args.out else maps_dir / "scores.json"
    write_provenance(maps_dir, {"script": "evals.score_maps", **vars(args), "out": str(out)})
    report = run_items(ready.items, lambda item: score_item(model, task, args, ready.root, maps_dir, item, metrics),
                       run_dir=maps_dir, desc="scoring", strict=args.strict)
    rows = [report.results[item] for item in ready.items if item in report.results]
    if not rows:
        raise InputError(f"--maps {maps_dir}: no map could be scored; see {maps_dir / 'failures.jsonl'}")
    stretched = [r for r in rows if r["stretched_from"]]
    if stretched:
        h, w = args.input_size
        print(f"note: {len(stretched)} of {len(rows)} maps stretched bilinearly to {h}×{w} "
              f"(first: {stretched[0]['map']}, {'×'.join(map(str, stretched[0]['stretched_from']))})",
              file=sys.stderr)
    summary = summarize(rows, metrics)
    for name in metrics:
        print(format_line(name, summary[name]))
    result = {"maps": str(maps_dir), "model": args.model, "target": args.target, "metrics": summary,
              "per_image": rows, "failures": [{"image": item.path, "list_line": item.line, "reason": reason}
                                              for item, reason in report.failures],
              "failed": len(report.failures)}
    atomic_write_json(out, _json_safe(result))
    print(f"Written: {out}", file=sys.stderr)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser(argv).parse_args(argv)
    return run_reporting_input_errors(lambda: 1 if score_folder(args)["failed"] else 0)


if __name__ == "__main__":
    sys.exit(main())
