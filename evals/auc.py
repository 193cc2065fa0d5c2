"""Area-based insertion / deletion AUC of an SMDL result folder (spec §7).

The per-image curves and the trapezoid rule are :mod:`submodular_attribution.common.curves`
(x = cumulative area fraction, y = target-class softmax probability; nothing is re-run
through a model). A run's score is the mean over its images.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from submodular_attribution.common.curves import image_aucs, spread
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.progress import Progress
from submodular_attribution.common.results import find_result_files, load_result


def _mean_of(records: list[dict], key: str) -> float | None:
    """Mean of a numeric record field over the records that have it; None if none do."""
    values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return float(np.mean(values)) if values else None


def summarize_run(run_dir: str | Path, progress: bool = False, strict: bool = False) -> dict[str, Any]:
    """Mean area-based insertion / deletion AUC over every image of a run folder.

    Returns a JSON-serialisable dict: ``run_dir``, ``num_images`` (evaluated), ``insertion_auc``
    and ``deletion_auc`` (means over images), ``*_auc_std`` (sample std, ddof=1) and
    ``*_auc_sem`` (standard error), both None for a single image; ``forward_passes`` and
    ``seconds``: means over the records that store them (None if none do); ``skipped``: the
    number of unreadable or incomplete result files left out (each named in one warning line on
    stderr) and ``skipped_files``; ``per_image``: ``[{json, insertion_auc, deletion_auc}]`` with
    ``json`` relative to ``run_dir``.

    Raises InputError for a missing or empty folder, for a folder with no usable result, and,
    with ``strict``, for the first unusable file.
    """
    run_dir = Path(run_dir)
    paths = find_result_files(run_dir, require_any=True)

    bar = Progress(len(paths), "images", enabled=progress and len(paths) > 5)
    per_image, records, skipped = [], [], []
    for path in paths:
        try:
            result = load_result(path)
            insertion, deletion = image_aucs(result)
        except ValueError as err:
            if strict:
                raise InputError(f"{err} (--strict)") from None
            print(f"warning: skipped {err}", file=sys.stderr)
            skipped.append(path.relative_to(run_dir).as_posix())
            continue
        finally:
            bar.update()
        records.append(result.record)
        per_image.append(
            {"json": path.relative_to(run_dir).as_posix(), "insertion_auc": insertion, "deletion_auc": deletion}
        )
    bar.close()
    if not per_image:
        raise InputError(f"{run_dir}: none of the {len(paths)} result files could be evaluated")

    insertion = np.array([p["insertion_auc"] for p in per_image])
    deletion = np.array([p["deletion_auc"] for p in per_image])
    insertion_std, insertion_sem = spread(insertion)
    deletion_std, deletion_sem = spread(deletion)
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
        "skipped": len(skipped),
        "skipped_files": skipped,
        "per_image": per_image,
    }
