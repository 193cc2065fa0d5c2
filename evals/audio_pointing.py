"""Pointing game of a result folder on the audio benchmark's ground-truth event masks.

    python -m evals.audio_pointing --explanation-dir <save-dir>/<config> [--datasets ROOT] [--json]

Each result's clip (its record's ``"image"`` path, relative to ``--datasets``, else to the run's
evaluation list folder) has its event mask beside it (``<stem>.mask.png``, see
:mod:`submodular_attribution.audio.data`). Events are thin in time–frequency (a tone is 1–3 mel
bands high), so a region rarely lies *mostly* on one; the hit criterion is therefore that the
region **contains at least one event pixel**. Printed per run:

* ``pointing``: fraction of clips whose first region contains an event pixel;
* ``chance``: the same for a uniformly random first region (mean over clips of the fraction of
  regions that contain an event pixel), the level a random ordering reaches on average;
* ``top10_recall``: mean fraction of the event mask covered by the first 10 % of the regions
  (ceil(0.1·N)); a random ordering covers about 10 %.

A result whose mask is missing is skipped with one warning line; none usable is an error.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from submodular_attribution.audio.data import load_mask
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.results import iter_results, result_rank_map
from visualization.folders import read_run_info


def touched_regions(rank_map: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sorted ranks of the regions that contain at least one mask pixel."""
    if rank_map.shape != mask.shape:
        raise ValueError(f"rank map {rank_map.shape} and mask {mask.shape} differ in shape")
    return np.unique(rank_map[mask])


def pointing_scores(rank_map: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """``hit`` (1.0 when the first region contains a mask pixel), ``chance`` (fraction of regions
    that do) and ``top10_recall`` (fraction of mask pixels in the first ceil(0.1·N) regions) of one
    H×W rank map (0 = first region) against an H×W bool mask."""
    mask = np.asarray(mask, dtype=bool)
    n = int(rank_map.max()) + 1
    touched = touched_regions(rank_map, mask)
    k = math.ceil(0.1 * n)
    recall = float((rank_map[mask] < k).mean()) if mask.any() else 0.0
    return {"hit": float(0 in touched), "chance": len(touched) / n, "top10_recall": recall}


def summarize_pointing(run_dir: str | Path, datasets: str | Path | None = None) -> dict:
    """Means of :func:`pointing_scores` over the run's results with a mask: ``num_clips``,
    ``pointing``, ``chance``, ``top10_recall``, ``skipped``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such folder")
    roots = read_run_info(run_dir).image_roots(datasets)
    rows, skipped = [], 0
    for result in iter_results(run_dir):
        image = str(result.record.get("image", ""))
        candidates = [Path(image)] if Path(image).is_absolute() else [root / image for root in roots]
        mask = next((m for m in (load_mask(p) for p in candidates) if m is not None), None)
        if mask is None:
            skipped += 1
            print(f"warning: skipped {result.json_path}: no event mask beside {image}", file=sys.stderr)
            continue
        rows.append(pointing_scores(result_rank_map(result), mask))
    if not rows:
        raise InputError(f"{run_dir}: no result with an event mask (pass --datasets to the clips' root)")
    return {"run_dir": str(run_dir), "num_clips": len(rows), "skipped": skipped,
            "pointing": float(np.mean([r["hit"] for r in rows])),
            "chance": float(np.mean([r["chance"] for r in rows])),
            "top10_recall": float(np.mean([r["top10_recall"] for r in rows]))}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.audio_pointing",
                                     description="Pointing game of an SMDL run on the audio benchmark's event masks.")
    parser.add_argument("--explanation-dir", required=True, help="run folder holding json/<class>/*.json and npy/")
    parser.add_argument("--datasets", default=None,
                        help="root of the records' clip paths (default: the run's --datasets, else its list's folder)")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    return parser


def run(args: argparse.Namespace) -> int:
    summary = summarize_pointing(args.explanation_dir, args.datasets)
    print(f"Pointing game: {summary['pointing']:.4f} (chance {summary['chance']:.4f}) on {summary['num_clips']} clips")
    print(f"Event recall of the first 10% of regions: {summary['top10_recall']:.4f}")
    if args.json:
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
