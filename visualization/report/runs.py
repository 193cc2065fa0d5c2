"""What the report reads from each result folder: its images, settings, failures and, per
image, the numbers and arrays the page shows.

An image is keyed ``"<class>/<stem>"`` (its path under ``json/``), so the same image in several
runs (searches, methods, models over one list) lines up by key.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from submodular_attribution.common.curves import deletion_curve, insertion_curve, spread, trapezoid_auc
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.results import LoadedResult, find_result_files, load_result

from ..folders import RunInfo, read_run_info


@dataclass
class Run:
    """One SMDL run folder as the report sees it: ``paths`` maps image key → result JSON."""

    folder: Path
    label: str
    info: RunInfo
    roots: list[Path]
    paths: dict[str, Path] = field(default_factory=dict)

    def npy_path(self, key: str) -> Path:
        class_name, stem = key.split("/", 1)
        return self.folder / "npy" / class_name / f"{stem}.npy"

    def signature(self, key: str) -> list:
        """What decides whether an image must be redrawn: size and mtime of its JSON and npy, and
        where its photo is looked for. (A photo edited in place is not noticed.)"""
        sig: list = []
        for path in (self.paths[key], self.npy_path(key)):
            try:
                stat = path.stat()
                sig += [stat.st_mtime_ns, stat.st_size]
            except OSError:
                sig += [None, None]
        return sig + [[str(root) for root in self.roots]]


def open_run(folder: str | Path, datasets: str | Path | None = None) -> Run:
    """A run folder with at least one result JSON; anything else is an InputError naming it."""
    folder = Path(folder)
    if (folder / "rows").is_dir() and not (folder / "json").is_dir():
        raise InputError(f"{folder}: a method-benchmark folder; the --html report needs SMDL run folders "
                         "(json/ + npy/)")
    paths = find_result_files(folder, require_any=True)
    info = read_run_info(folder)
    run = Run(folder, folder.name, info, info.image_roots(datasets))
    run.paths = {f"{p.parent.name}/{p.stem}": p for p in paths}
    return run


def label_runs(runs: list[Run]) -> None:
    """Folder names as labels; where two runs share a name, their parent folder is prefixed."""
    for run in runs:
        if sum(other.folder.name == run.folder.name for other in runs) > 1:
            run.label = f"{run.folder.parent.name}/{run.folder.name}"


def common_keys(runs: list[Run]) -> tuple[list[str], str | None]:
    """(image keys every run holds, sorted; a note saying how the runs differ, or None). The
    note is also printed as one warning line."""
    keys = set(runs[0].paths)
    for run in runs[1:]:
        keys &= set(run.paths)
    if not keys:
        raise InputError("the runs share no image (" + ", ".join(f"{r.folder}: {len(r.paths)}" for r in runs)
                         + "); compare runs over the same list")
    note = None
    if any(len(run.paths) != len(keys) for run in runs):
        extra = ", ".join(f"{run.label} has {len(run.paths) - len(keys)} more" for run in runs
                          if len(run.paths) != len(keys))
        note = f"the runs hold different images; the report shows the {len(keys)} common to all ({extra})"
        print(f"warning: {note}", file=sys.stderr)
    return sorted(keys), note


def _rounded(values: np.ndarray, digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


def image_numbers(result: LoadedResult) -> tuple[dict, dict]:
    """(table row cell, detail) of one run's result for one image.

    Row: ``ins``/``del`` the trapezoid AUCs of the insertion/deletion curves, ``fw`` forward
    passes, ``n`` regions, ``s`` seconds. Detail: the curves (``x`` area, ``yi`` insertion and
    ``yd`` deletion probability, N+1 points each: index k is "first k regions"), the region
    order, and ``best`` = the k of the record's best SMDL score (its max index + 1)."""
    record = result.record
    x, y_ins = insertion_curve(result)
    _, y_del = deletion_curve(result)
    best = record.get("smdl_score_max_index")
    row = {"ins": trapezoid_auc(x, y_ins), "del": trapezoid_auc(x, y_del), "fw": record.get("forward_passes"),
           "n": int(len(result.areas)), "s": record.get("seconds")}
    detail = {"x": _rounded(x), "yi": _rounded(y_ins), "yd": _rounded(y_del),
              "order": [int(r) for r in record.get("region_order") or []],
              "best": int(best) + 1 if isinstance(best, int) else None}
    return row, detail


def load(run: Run, key: str) -> LoadedResult:
    return load_result(run.paths[key])


def settings(run: Run) -> dict:
    """The run's settings as shown in the summary: from its first readable record (division,
    search and options, λ), and runs.jsonl (task, model, checkpoint) where it has them."""
    record: dict = {}
    for path in run.paths.values():
        try:
            record = json.loads(path.read_text())
            break
        except (OSError, ValueError):
            continue
    args = run.info.arguments
    division = record.get("division") or args.get("division_resolved") or args.get("division")
    search = record.get("search") or {"name": args.get("search")}
    lambdas = [record.get(f"lambda{i}", args.get(f"lambda{i}")) for i in range(1, 5)]
    checkpoint = args.get("checkpoint")
    model = " ".join(filter(None, [run.info.context, Path(checkpoint).name if checkpoint else None]))
    return {"division": division, "search": search, "lambdas": lambdas, "model": model or None}


def failures(run: Run) -> list[dict]:
    """``failures.jsonl`` entries (image, class, reason, time), unreadable lines skipped; each
    marked ``resolved`` when the image has a result now (a later rerun finished it)."""
    path = run.folder / "failures.jsonl"
    if not path.is_file():
        return []
    done = {key.split("/", 1)[1] for key in run.paths}
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            image = str(entry.get("image", ""))
            entries.append({"image": image, "class": entry.get("class"), "reason": str(entry.get("reason", "")),
                            "time": entry.get("time"), "resolved": Path(image).stem in done})
    return entries


def summary(values: list[float]) -> dict:
    """Mean and standard error (None for fewer than 2) of per-image numbers."""
    clean = [v for v in values if v is not None]
    if not clean:
        return {"mean": None, "se": None, "n": 0}
    return {"mean": float(np.mean(clean)), "se": spread(clean)[1], "n": len(clean)}
