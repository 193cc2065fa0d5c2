"""Result folders of SMDL runs (spec §6): paths, the compact rank-map format, reading back.

Layout: ``<save-dir>/<config>/json/<class>/<stem>.json`` and ``npy/<class>/<stem>.npy``.

Our npy is a *rank map*: H×W int16 (int32 beyond 32,767 regions) holding, per pixel,
the position in the ordering of the region that contains it. It encodes the division
and the ordering in ~100 kB (``labels = order[rank_map]``). The original code's npy,
N×H×W×3 uint8 images of the ordered regions, is read too.
"""
from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .atomic import atomic_save_npy, atomic_write_json
from .errors import InputError

FORMAT = "smdl-attribution/rank-map-v1"


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


def rank_map(labels: np.ndarray, order: list[int]) -> np.ndarray:
    """H×W rank of each pixel's region in ``order`` (int16, or int32 for > 32,767 regions)."""
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[np.asarray(order)] = np.arange(len(order))
    dtype = np.int16 if len(order) <= np.iinfo(np.int16).max else np.int32
    return ranks[labels].astype(dtype)


def rank_map_saliency(rank_map: np.ndarray, num_regions: int | None = None) -> np.ndarray:
    """An ordering as a saliency map: H×W float64 (N − rank)/N in (0, 1] — 1 for the first
    region, 1/N for the last. N defaults to ``rank_map.max() + 1``.

    Used both for drawing an ordering and for scoring it with the per-pixel saliency metrics
    (which depend only on the ranking, or are invariant to this positive scaling). Inside a
    region (equal saliency) per-pixel metrics take pixels in raster order."""
    ranks = np.asarray(rank_map)
    if ranks.ndim != 2 or not np.issubdtype(ranks.dtype, np.integer):
        raise ValueError(f"rank map must be an H×W integer array, got {ranks.dtype} {ranks.shape}")
    if ranks.size == 0 or ranks.min() < 0:
        raise ValueError("rank map must be non-empty with ranks >= 0")
    n = int(ranks.max()) + 1 if num_regions is None else int(num_regions)
    return (n - ranks.astype(np.float64)) / n


def rank_map_from_region_images(regions: np.ndarray) -> np.ndarray:
    """H×W int32 rank map from the original format's N×H×W×3 ordered region images.

    A pixel's rank is the index of the first region image that is nonzero there; pixels
    no region image covers (including region pixels that are pure black (0,0,0), which
    that format cannot tell from "not in the region") get rank N−1.
    """
    if regions.ndim != 4 or regions.shape[-1] != 3:
        raise ValueError(f"expected N×H×W×3 region images, got shape {regions.shape}")
    covered = (regions != 0).any(axis=-1)  # N×H×W
    first = covered.argmax(axis=0)  # first True; 0 where none is True, fixed below
    return np.where(covered.any(axis=0), first, regions.shape[0] - 1).astype(np.int32)


def result_rank_map(result: "LoadedResult") -> np.ndarray:
    """The H×W rank map of a result: ours as stored, or derived from the original format."""
    if result.npy is None:
        raise ValueError(f"{result.json_path}: no npy beside the JSON; the regions are needed")
    if result.npy.ndim == 2:
        return result.npy
    return rank_map_from_region_images(result.npy)


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


def save_result(run_dir: str | Path, class_name: str, stem: str, record: dict, ranks: np.ndarray) -> Path:
    """npy first, JSON last: a JSON on disk means the image is finished. When the JSON cannot be
    written (a full disk: DiskFull), the npy is removed too. Temporary files that a killed
    process left while writing this image's files are removed first."""
    json_path, npy_path = result_paths(run_dir, class_name, stem)
    for path in (npy_path, json_path):
        for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            leftover.unlink(missing_ok=True)
    atomic_save_npy(npy_path, ranks)
    try:
        atomic_write_json(json_path, record)
    except BaseException:
        npy_path.unlink(missing_ok=True)
        raise
    return json_path


@dataclass
class LoadedResult:
    """One image's result read back: its record, cumulative areas (N,), and the raw npy."""

    json_path: Path
    record: dict
    areas: np.ndarray
    npy: np.ndarray | None


def find_result_files(run_dir: str | Path, require_any: bool = False) -> list[Path]:
    """Every ``json/<class>/<stem>.json`` under a run folder, sorted. Raises InputError naming
    the folder when it does not exist, is not a result folder, or (``require_any``) holds none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such folder")
    if not (run_dir / "json").is_dir():
        raise InputError(f"{run_dir}: not a result folder (no json/ inside)")
    paths = sorted((run_dir / "json").glob("*/*.json"))
    if require_any and not paths:
        raise InputError(f"{run_dir}: no result JSONs found (expected json/<class>/<stem>.json)")
    return paths


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
