"""What a result folder tells the figures: its last invocation's arguments (``runs.jsonl``),
where its photos are, titles, and a method benchmark's cached rows.

Two kinds of folder are drawn:

* an SMDL run: ``json/<class>/<stem>.json`` + ``npy/<class>/<stem>.npy`` (see
  :mod:`submodular_attribution.common.results`);
* a method benchmark (``evals.benchmark``): ``rows/<method>/<key>/<class>/<stem>.json``, each
  row's ``"curves"`` holding ``x_ins, y_ins, x_del, y_del``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from submodular_attribution.common.errors import InputError
from submodular_attribution.common.images import load_image_rgb
from submodular_attribution.common.results import LoadedResult, result_rank_map

CURVE_KEYS = ("x_ins", "y_ins", "x_del", "y_del")


@dataclass(frozen=True)
class RunInfo:
    """The arguments of a folder's last readable ``runs.jsonl`` line ({} without one)."""

    arguments: dict

    @property
    def context(self) -> str | None:
        """Task and model as known: ``"imagenet_classifier resnet101"``, ``"shapes"``, or None."""
        parts = []
        for key in ("task", "model", "arch", "model_name"):
            value = self.arguments.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
        return " ".join(parts) or None

    def image_roots(self, datasets: str | Path | None = None) -> list[Path]:
        """Where the records' relative image paths may start: ``datasets`` when given, else the
        run's ``--datasets``, else its evaluation list's folder (the scripts' own rule)."""
        if datasets is not None:
            return [Path(datasets)]
        roots = []
        if self.arguments.get("datasets"):
            roots.append(Path(self.arguments["datasets"]))
        if self.arguments.get("eval_list"):
            roots.append(Path(self.arguments["eval_list"]).parent)
        return roots


def read_run_info(folder: str | Path) -> RunInfo:
    """The last line of ``<folder>/runs.jsonl`` that parses and holds ``arguments``."""
    path = Path(folder) / "runs.jsonl"
    if not path.is_file():
        return RunInfo({})
    arguments: dict = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: provenance only, the figures don't need it
        if isinstance(entry, dict) and isinstance(entry.get("arguments"), dict):
            arguments = entry["arguments"]
    return RunInfo(arguments)


def find_photo(record: dict, roots: list[Path], size: tuple[int, int] | None) -> tuple[np.ndarray | None, str | None]:
    """(H×W×3 uint8 RGB photo, resized to ``size`` = (H, W) when given, None) or (None, why
    not), from the record's ``"image"`` path (absolute, or relative to one of ``roots``)."""
    image = record.get("image")
    if not isinstance(image, str) or not image:
        return None, "the record names no image"
    candidates = [Path(image)] if Path(image).is_absolute() else [root / image for root in roots]
    if not candidates:
        return None, f"image {image}: no image root known (pass --datasets)"
    for path in candidates:
        if path.is_file():
            load = load_image_rgb
            if path.suffix.lower() == ".wav":  # an audio task's item: the spectrogram image the model saw
                from submodular_attribution.audio.features import load_spectrogram_image as load
            try:
                return load(path, size), None
            except InputError as err:
                return None, str(err)
    where = "" if Path(image).is_absolute() else f" under {', '.join(str(r) for r in roots)} (pass --datasets)"
    return None, f"image {image} not found{where}"


def result_photo(result: LoadedResult, roots: list[Path]) -> tuple[np.ndarray | None, str | None]:
    """The photo of a result: the original format's region images hold it (their union,
    exact up to pure-black pixels); our format's record names it (see :func:`find_photo`)."""
    if result.npy is not None and result.npy.ndim == 4:
        return result.npy.max(axis=0).astype(np.uint8), None
    return find_photo(result.record, roots, tuple(result_rank_map(result).shape))


def image_title(record: dict, stem: str, context: str | None = None) -> str:
    """``"<stem> · <task model> · <target name or target k> · class <c>"`` from what is known."""
    parts = [stem]
    if context:
        parts.append(context)
    if record.get("target_name"):
        parts.append(str(record["target_name"]))
    elif record.get("target") is not None:
        parts.append(f"target {record['target']}")
    if record.get("class") is not None and str(record.get("class")) != str(record.get("target")):
        parts.append(f"class {record['class']}")
    return " · ".join(parts)


@dataclass(frozen=True)
class Row:
    """One benchmark row: its method label, class folder, stem and contents."""

    method: str
    class_name: str
    stem: str
    data: dict


def _row_folders(rows_dir: Path, info: RunInfo) -> dict[str, Path]:
    """Method label → rows folder. A method with several configuration keys is drawn from the
    key the last invocation used (``row_folders`` in runs.jsonl); without one, every key is
    drawn as ``"<method> [<key>]"``."""
    chosen = info.arguments.get("row_folders") or {}
    folders = {}
    for method_dir in sorted(p for p in rows_dir.iterdir() if p.is_dir()):
        keys = sorted(p for p in method_dir.iterdir() if p.is_dir())
        preferred = [k for k in keys if k.name == chosen.get(method_dir.name)]
        if preferred or len(keys) == 1:
            folders[method_dir.name] = (preferred or keys)[0]
        else:
            folders.update({f"{method_dir.name} [{k.name}]": k for k in keys})
    return folders


def read_benchmark_rows(folder: str | Path, info: RunInfo) -> list[Row]:
    """Every usable row of a benchmark folder; an unreadable row or one without curves is
    skipped with one warning line naming it. No usable row at all is an InputError."""
    rows_dir = Path(folder) / "rows"
    rows, seen = [], 0
    for method, key_dir in _row_folders(rows_dir, info).items():
        for path in sorted(key_dir.glob("*/*.json")):
            seen += 1
            try:
                data = json.loads(path.read_text())
                curves = data["curves"]
                if not all(len(curves[k]) >= 2 for k in CURVE_KEYS):
                    raise ValueError("curves shorter than two points")
            except (OSError, ValueError, KeyError, TypeError) as err:
                reason = f"missing {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
                print(f"warning: skipped {path}: unusable benchmark row ({reason})", file=sys.stderr)
                continue
            rows.append(Row(method, path.parent.name, path.stem, data))
    if not rows:
        raise InputError(f"{rows_dir}: no usable benchmark rows (found {seen} row files)")
    return rows
