"""Area-based insertion / deletion AUC of SMDL result folders (spec §7).

For one explained image with N ordered regions, step t = 1..N reveals (insertion) or
removes (deletion) the first t regions of the ordering. The curves are

* x: ``[0] + areas``, the cumulative fraction of image pixels covered by the first t
  regions (N+1 points in [0, 1]; the x axis is *area*, not the step index t);
* insertion y: ``[baseline_score] + consistency_score``, the target-class probability of
  the baseline (black) image, then of insert(first t regions);
* deletion y: ``[org_score] + (1 − collaboration_score)``, the target-class probability
  of the full image, then of the image with the first t regions deleted.

All scores are the softmax probabilities (not logits) of the target class stored in the
result JSON; nothing is re-run through a model. Each image's AUC is the trapezoid rule
over x; a run's score is the mean over its images. Areas come from
:func:`submodular_attribution.results.load_result` (``region_areas`` in our JSON, or
the npy beside it for the original format).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from submodular_attribution.results import LoadedResult, find_result_files, load_result


def _scores(result: LoadedResult, key: str) -> np.ndarray:
    """The per-step score list ``key`` of the record as (N,) float64, checked against the areas."""
    value = result.record.get(key)
    if value is None:
        raise ValueError(f"{result.json_path}: missing key {key!r}")
    try:
        scores = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{result.json_path}: {key} is not a list of numbers") from None
    if scores.shape != result.areas.shape:
        raise ValueError(
            f"{result.json_path}: {key} has {scores.size} entries but the regions give "
            f"{result.areas.size} cumulative areas"
        )
    return scores


def _reference(result: LoadedResult, key: str) -> float:
    """``org_score`` / ``baseline_score``; the original code's JSONs do not always have them."""
    value = result.record.get(key)
    if value is None:
        raise ValueError(f"{result.json_path}: missing key {key!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{result.json_path}: {key} is not a number") from None


def _area_axis(result: LoadedResult) -> np.ndarray:
    return np.concatenate([[0.0], np.asarray(result.areas, dtype=np.float64)])


def insertion_curve(result: LoadedResult) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each (N+1,) float64: x = [0] + cumulative area fractions,
    y = [baseline_score] + consistency_score (target probability when the first t regions
    are inserted into the black baseline)."""
    y = np.concatenate([[_reference(result, "baseline_score")], _scores(result, "consistency_score")])
    return _area_axis(result), y


def deletion_curve(result: LoadedResult) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each (N+1,) float64: x = [0] + cumulative area fractions,
    y = [org_score] + (1 − collaboration_score) (target probability when the first t
    regions are deleted from the full image)."""
    y = np.concatenate([[_reference(result, "org_score")], 1.0 - _scores(result, "collaboration_score")])
    return _area_axis(result), y


def trapezoid_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid rule Σ (x[i+1] − x[i])·(y[i] + y[i+1])/2 over 1-D arrays of equal length.

    x is expected non-decreasing (cumulative areas); 0.0 for fewer than two points.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    # Written out rather than np.trapz, which numpy 2 renamed to np.trapezoid.
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def image_aucs(result: LoadedResult) -> tuple[float, float]:
    """(insertion AUC, deletion AUC) of one image."""
    return trapezoid_auc(*insertion_curve(result)), trapezoid_auc(*deletion_curve(result))


def _spread(values: np.ndarray) -> tuple[float | None, float | None]:
    """(sample standard deviation, standard error of the mean); None with fewer than 2 values."""
    if values.size < 2:
        return None, None
    std = float(np.std(values, ddof=1))
    return std, std / math.sqrt(values.size)


def _mean_of(records: list[dict], key: str) -> float | None:
    """Mean of a numeric record field over the records that have it; None if none do."""
    values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return float(np.mean(values)) if values else None


def summarize_run(run_dir: str | Path, progress: bool = False) -> dict[str, Any]:
    """Mean area-based insertion / deletion AUC over every image of a run folder.

    Returns a JSON-serialisable dict: ``run_dir``, ``num_images``, ``insertion_auc`` and
    ``deletion_auc`` (means over images), ``*_auc_std`` (sample std, ddof=1) and
    ``*_auc_sem`` (std/√n), both None for a single image; ``forward_passes`` and
    ``seconds``: means over the records that store them (None if none do); ``per_image``:
    ``[{json, insertion_auc, deletion_auc}]`` with ``json`` relative to ``run_dir``.

    Raises FileNotFoundError for a missing / non-result folder and ValueError (naming the
    file) for an empty folder or a bad result.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such folder")
    paths = find_result_files(run_dir)
    if not paths:
        raise ValueError(f"{run_dir}: no result JSONs found")

    from tqdm import tqdm

    # disable=None: the bar shows only on a terminal; tiny runs need none.
    bar = tqdm(paths, desc="images", unit="img", disable=None if progress and len(paths) > 5 else True)
    per_image, records = [], []
    for path in bar:
        result = load_result(path)
        insertion, deletion = image_aucs(result)
        records.append(result.record)
        per_image.append(
            {"json": path.relative_to(run_dir).as_posix(), "insertion_auc": insertion, "deletion_auc": deletion}
        )

    insertion = np.array([p["insertion_auc"] for p in per_image])
    deletion = np.array([p["deletion_auc"] for p in per_image])
    insertion_std, insertion_sem = _spread(insertion)
    deletion_std, deletion_sem = _spread(deletion)
    return {
        "run_dir": str(run_dir),
        "num_images": len(per_image),
        "insertion_auc": float(insertion.mean()),
        "deletion_auc": float(deletion.mean()),
        "insertion_auc_std": insertion_std,
        "deletion_auc_std": deletion_std,
        "insertion_auc_sem": insertion_sem,
        "deletion_auc_sem": deletion_sem,
        "forward_passes": _mean_of(records, "forward_passes"),
        "seconds": _mean_of(records, "seconds"),
        "per_image": per_image,
    }
