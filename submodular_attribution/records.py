"""Result folders: naming, atomic per-image files, provenance, and reading back (spec §6).

Layout: ``<save-dir>/<config>/json/<class>/<stem>.json`` and ``npy/<class>/<stem>.npy``.

Our npy is a *rank map*: H×W int16 (int32 beyond 32,767 regions) holding, per pixel,
the position in the ordering of the region that contains it. It encodes the division
and the ordering in ~100 kB (``labels = order[rank_map]``). The original code's npy,
N×H×W×3 uint8 images of the ordered regions, is read too.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .atomic import atomic_write
from .objective import Weights
from .search import SearchTrace

FORMAT = "smdl-attribution/rank-map-v1"
REPO_ROOT = Path(__file__).resolve().parents[1]


def run_folder_name(division: str, weights: Weights, search: str, pending_samples: int = 8, seed: int = 0) -> str:
    """``slico-0.0-0.05-1.0-1.0`` (+ ``-pending-samples-8`` for bidirectional, ``-random-seed-0`` for random)."""
    name = f"{division}-{weights.folder_text()}"
    if search == "bidirectional":
        name += f"-pending-samples-{pending_samples}"
    elif search == "random":
        name += f"-random-seed-{seed}"
    return name


def result_paths(run_dir: str | Path, class_name: str, stem: str) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    return run_dir / "json" / class_name / f"{stem}.json", run_dir / "npy" / class_name / f"{stem}.npy"


def is_finished(run_dir: str | Path, class_name: str, stem: str) -> bool:
    """True when both files exist and the JSON (written last) parses."""
    json_path, npy_path = result_paths(run_dir, class_name, stem)
    if not (json_path.is_file() and npy_path.is_file()):
        return False
    try:
        json.loads(json_path.read_text())
    except (OSError, ValueError):
        return False
    return True


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write(path, lambda h: h.write(json.dumps(data, indent=1).encode()))


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    atomic_write(path, lambda h: np.save(h, array))


def rank_map(labels: np.ndarray, order: list[int]) -> np.ndarray:
    """H×W rank of each pixel's region in ``order`` (int16, or int32 for > 32,767 regions)."""
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[np.asarray(order)] = np.arange(len(order))
    dtype = np.int16 if len(order) <= np.iinfo(np.int16).max else np.int32
    return ranks[labels].astype(dtype)


def cumulative_areas(npy: np.ndarray) -> np.ndarray:
    """Fraction of the image revealed after each step, from either npy format → (N,) float64.

    Original format limitation: a region pixel that is pure black (0,0,0) in its region
    image cannot be told from "not in the region" (``sum(-1) > 0``), so it is not counted.
    """
    if npy.ndim == 2:  # our rank map
        counts = np.bincount(npy.ravel().astype(np.int64))
        return np.cumsum(counts) / npy.size
    if npy.ndim == 4 and npy.shape[-1] == 3:  # original: N×H×W×3 ordered region images
        masks = npy.reshape(npy.shape[0], -1, 3).sum(-1) > 0
        return np.logical_or.accumulate(masks, axis=0).mean(axis=1)
    raise ValueError(f"unrecognised result array of shape {npy.shape}: expected H×W rank map or N×H×W×3 regions")


def build_record(
    trace: SearchTrace,
    labels: np.ndarray,
    weights: Weights,
    *,
    image: str,
    class_name: str,
    division: dict,
    search: str,
    pending_samples: int | None,
) -> tuple[dict, np.ndarray]:
    """The JSON record (original keys + ours) and the rank map for one explained image."""
    ranks = rank_map(labels, trace.order)
    best = int(np.argmax(trace.smdl_score))
    lambdas = weights.positional()
    record = {
        "format": FORMAT,
        "image": image,
        "class": class_name,
        "target": trace.target,
        "consistency_score": trace.consistency.tolist(),
        "collaboration_score": trace.collaboration.tolist(),
        "confidence_score": trace.confidence.tolist(),
        "effectiveness_score": None if trace.effectiveness is None else trace.effectiveness.tolist(),
        "smdl_score": trace.smdl_score.tolist(),
        **{f"lambda{i + 1}": lambdas[i] for i in range(4)},
        "smdl_score_max": float(trace.smdl_score[best]),
        "smdl_score_max_index": best,
        "org_score": trace.org_score,
        "baseline_score": trace.baseline_score,
        "region_order": [int(r) for r in trace.order],
        "region_areas": cumulative_areas(ranks).tolist(),
        "num_regions": len(trace.order),
        "image_size": list(labels.shape),
        "division": division,
        "search": {"name": search, "pending_samples": pending_samples},
        "forward_passes": trace.forward_passes,
        "seconds": round(trace.seconds, 4),
    }
    return record, ranks


def save_result(run_dir: str | Path, class_name: str, stem: str, record: dict, ranks: np.ndarray) -> Path:
    """npy first, JSON last: a JSON on disk means the image is finished."""
    json_path, npy_path = result_paths(run_dir, class_name, stem)
    atomic_save_npy(npy_path, ranks)
    atomic_write_json(json_path, record)
    return json_path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def write_provenance(run_dir: str | Path, arguments: dict) -> None:
    """Append one JSON line per invocation to ``<run_dir>/runs.jsonl`` (shards and reruns accumulate)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("smdl-attribution")
    except PackageNotFoundError:
        package_version = None
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(getattr(sys, "orig_argv", sys.argv)),  # as typed, including "-m module"
        "argv": sys.argv,
        "arguments": arguments,
        "package_version": package_version,
        "git_commit": _git_commit(),
    }
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "runs.jsonl", "a") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")


@dataclass
class LoadedResult:
    """One image's result read back: its record, cumulative areas (N,), and the raw npy."""

    json_path: Path
    record: dict
    areas: np.ndarray
    npy: np.ndarray | None


def find_result_files(run_dir: str | Path) -> list[Path]:
    """Every ``json/<class>/<stem>.json`` under a run folder, sorted."""
    run_dir = Path(run_dir)
    if not (run_dir / "json").is_dir():
        raise FileNotFoundError(f"{run_dir}: not a result folder (no json/ inside)")
    return sorted((run_dir / "json").glob("*/*.json"))


def load_result(json_path: str | Path) -> LoadedResult:
    """Read one result in our format or the original one. Areas come from ``region_areas``
    when present, else from the npy beside it (``npy/<class>/<stem>.npy``)."""
    json_path = Path(json_path)
    try:
        record = json.loads(json_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{json_path}: unreadable result JSON ({err})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{json_path}: a result JSON must hold an object, not {type(record).__name__}")
    npy_path = json_path.parents[2] / "npy" / json_path.parent.name / f"{json_path.stem}.npy"
    try:
        npy = np.load(npy_path) if npy_path.is_file() else None
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{npy_path}: unreadable result array ({err})") from None
    if record.get("region_areas") is not None:
        areas = np.asarray(record["region_areas"], dtype=np.float64)
    elif npy is not None:
        areas = cumulative_areas(npy)
    else:
        raise ValueError(f"{json_path}: no region_areas in the JSON and no npy at {npy_path}")
    return LoadedResult(json_path, record, areas, npy)


def iter_results(run_dir: str | Path) -> Iterator[LoadedResult]:
    for path in find_result_files(run_dir):
        yield load_result(path)
