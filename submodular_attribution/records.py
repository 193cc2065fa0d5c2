"""SMDL result records: the run folder's name and one image's JSON record (spec §6).

The files themselves (paths, rank maps, atomic writes, reading back) are
:mod:`submodular_attribution.common.results`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .common.results import FORMAT, cumulative_areas, rank_map
from .objective import Weights
from .search import SearchTrace
from .search_methods import SEARCHES


def run_folder_name(division: str, weights: Weights, search: str, options: dict | None = None, seed: int = 0) -> str:
    """``slico-0.0-0.05-1.0-1.0`` plus the search's suffix (``-pending-samples-8`` for the
    bidirectional search, ``-random-seed-0`` for the random control, …; see ``SEARCHES``)."""
    spec = SEARCHES[search]
    return f"{division}-{weights.folder_text()}{spec.suffix(spec.options(options), seed)}"


def build_record(
    trace: SearchTrace,
    labels: np.ndarray,
    weights: Weights,
    *,
    image: str,
    class_name: str,
    division: dict,
    search: str,
    options: dict | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[dict, np.ndarray]:
    """The JSON record (original keys + ours) and the rank map for one explained image.

    ``division``: the settings as ``RegionDivider.describe`` gives them, with
    ``"fallback": {"to": "grid", "reason": ...}`` only when slico/seeds could not divide an image
    of this size and grid cells were used instead. ``class_names`` (the model's C names in index
    order), when given, adds ``target_name``: the name of the explained class."""
    ranks = rank_map(labels, trace.order)
    best = int(np.argmax(trace.smdl_score))
    lambdas = weights.positional()
    named = class_names is not None and 0 <= trace.target < len(class_names)
    record = {
        "format": FORMAT,
        "image": image,
        "class": class_name,
        "target": trace.target,
        **({"target_name": str(class_names[trace.target])} if named else {}),
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
        "search": {"name": search, **SEARCHES[search].options(options)},
        "forward_passes": trace.forward_passes,
        "seconds": round(trace.seconds, 4),
    }
    return record, ranks
