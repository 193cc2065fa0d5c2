"""SMDL result records: the run folder's name and one image's JSON record (spec §6).

The files themselves (paths, rank maps, atomic writes, reading back) are
:mod:`submodular_attribution.common.results`.
"""
from __future__ import annotations

import numpy as np

from .common.results import FORMAT, cumulative_areas, rank_map
from .objective import Weights
from .search import SearchTrace


def run_folder_name(division: str, weights: Weights, search: str, pending_samples: int = 8, seed: int = 0) -> str:
    """``slico-0.0-0.05-1.0-1.0`` (+ ``-pending-samples-8`` for bidirectional, ``-random-seed-0`` for random)."""
    name = f"{division}-{weights.folder_text()}"
    if search == "bidirectional":
        name += f"-pending-samples-{pending_samples}"
    elif search == "random":
        name += f"-random-seed-{seed}"
    return name


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
