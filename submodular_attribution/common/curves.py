"""Insertion / deletion curves of a result and their area under the curve (spec §7).

For one explained image with N ordered regions, step t = 1..N reveals (insertion) or
removes (deletion) the first t regions of the ordering:

* x: ``[0] + areas``, the cumulative fraction of image pixels covered by the first t
  regions (N+1 points in [0, 1]; the axis is *area*, not the step index t);
* insertion y: ``[baseline_score] + consistency_score``, the target-class probability of
  the baseline (black) image, then of insert(first t regions);
* deletion y: ``[org_score] + (1 − collaboration_score)``, the target-class probability
  of the full image, then of the image with the first t regions deleted.

Scores are the softmax probabilities (not logits) stored in the result JSON. Folders of
the original research code often lack ``org_score`` and ``baseline_score``; both follow
exactly from the last step (all N regions): p_t(image) = consistency[N−1] and
p_t(black) = 1 − collaboration[N−1].
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

from .results import LoadedResult


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


def _number(result: LoadedResult, key: str) -> float | None:
    value = result.record.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{result.json_path}: {key} is not a number") from None


def org_score(result: LoadedResult) -> float:
    """p_t(full image): ``org_score``, else the consistency after all N regions."""
    stored = _number(result, "org_score")
    return stored if stored is not None else float(_scores(result, "consistency_score")[-1])


def baseline_score(result: LoadedResult) -> float:
    """p_t(black image): ``baseline_score``, else 1 − collaboration after all N regions."""
    stored = _number(result, "baseline_score")
    return stored if stored is not None else float(1.0 - _scores(result, "collaboration_score")[-1])


def _area_axis(result: LoadedResult) -> np.ndarray:
    return np.concatenate([[0.0], np.asarray(result.areas, dtype=np.float64)])


def insertion_curve(result: LoadedResult) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each (N+1,) float64: x = [0] + cumulative area fractions,
    y = [p_t(black)] + consistency_score (target probability when the first t regions
    are inserted into the black baseline)."""
    y = np.concatenate([[baseline_score(result)], _scores(result, "consistency_score")])
    return _area_axis(result), y


def deletion_curve(result: LoadedResult) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each (N+1,) float64: x = [0] + cumulative area fractions,
    y = [p_t(image)] + (1 − collaboration_score) (target probability when the first t
    regions are deleted from the full image)."""
    y = np.concatenate([[org_score(result)], 1.0 - _scores(result, "collaboration_score")])
    return _area_axis(result), y


def trapezoid_auc(x, y) -> float:
    """Trapezoid rule over 1-D arrays of equal length (x non-decreasing); 0.0 below two points."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    return float(integrate.trapezoid(y, x)) if x.size > 1 else 0.0


def image_aucs(result: LoadedResult) -> tuple[float, float]:
    """(insertion AUC, deletion AUC) of one image."""
    return trapezoid_auc(*insertion_curve(result)), trapezoid_auc(*deletion_curve(result))


def spread(values) -> tuple[float | None, float | None]:
    """(sample standard deviation, standard error of the mean), both with ddof=1; None with
    fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size < 2:
        return None, None
    return float(np.std(values, ddof=1)), float(stats.sem(values, ddof=1))


def mean_finite(scores) -> tuple[float, int]:
    """(mean of the finite values, number of non-finite values dropped); NaN when none is finite.

    Averages per-image correlations (SDS, MuFidelity, Sensitivity-N) so that undefined ones are
    dropped explicitly and counted, never silently."""
    values = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    dropped = int(values.size - finite.sum())
    return (float(values[finite].mean()) if finite.any() else math.nan), dropped
