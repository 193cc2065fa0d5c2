"""Write the offline HTML report of one or more run folders (see the package docstring).

Each build keeps ``manifest.json`` beside the page: per image, what its results looked like
(:meth:`Run.signature`) and its table row. An image whose signature is unchanged (and whose
files are still there) is not read or redrawn again, so rebuilding after a run grew redraws
only the new images.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from submodular_attribution.common.atomic import atomic_write, atomic_write_json, atomic_write_text, ensure_dir
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.progress import Progress
from submodular_attribution.common.results import result_rank_map

from ..canvas import check_style
from ..defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP
from ..folders import result_photo
from . import pictures
from .runs import Run, common_keys, failures, image_numbers, label_runs, load, open_run, settings, summary

ASSETS = Path(__file__).parent / "assets"
MANIFEST_VERSION = 1
DETAIL_CALLBACK = "SMDL_REPORT_DETAIL"
DATA_GLOBAL = "SMDL_REPORT"


@dataclass(frozen=True)
class BuildStats:
    """What a build did: ``drawn`` images (re)drawn, ``unchanged`` taken from the last build,
    ``skipped`` unreadable in some run; ``index`` the page."""

    index: Path
    images: int
    drawn: int
    unchanged: int
    skipped: int


def detail_path(out: Path, key: str) -> Path:
    return out / "details" / f"{key}.js"


def thumb_path(out: Path, run_index: int, key: str) -> Path:
    return out / "thumbs" / str(run_index) / f"{key}.jpg"


def _read_manifest(out: Path, settings_key: dict) -> dict:
    """The last build's images, or {} when there is none or it was built with other settings."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("settings") != settings_key:
        return {}
    images = manifest.get("images")
    return images if isinstance(images, dict) else {}


def _draw_image(key: str, runs: list[Run], out: Path, colormap: str, alpha: float) -> tuple[dict, str | None]:
    """Read one image in every run, write its thumbnails and detail script; returns its row and
    why its photo was not found (None when it was). A result that cannot be read is a
    ValueError naming its file."""
    class_name, stem = key.split("/", 1)
    cells, details, first, note = [], [], None, None
    for index, run in enumerate(runs):
        result = load(run, key)
        cell, detail = image_numbers(result)
        ranks = result_rank_map(result)
        photo = first
        if photo is None or photo.shape[:2] != ranks.shape:
            photo, why = result_photo(result, run.roots)
            if index == 0:
                first, note = photo, why
            elif photo is not None and first is not None:  # another input size: this run's own photo
                detail["photo"] = pictures.data_uri(pictures.photo_jpeg(photo), "image/jpeg")
        detail["ranks"] = pictures.data_uri(pictures.rank_png(ranks), "image/png")
        detail["size"] = list(ranks.shape)
        thumb = pictures.thumbnail(photo, ranks, cell["n"], colormap, alpha)
        atomic_write(thumb_path(out, index, key), lambda handle, data=thumb: handle.write(data))
        cells.append(cell)
        details.append(detail)
        if index == 0:
            record = result.record
    payload = {"key": key, "photo": None if first is None else pictures.data_uri(pictures.photo_jpeg(first),
                                                                                "image/jpeg"),
               "photo_note": note, "runs": details}
    atomic_write_text(detail_path(out, key), f"{DETAIL_CALLBACK}({json.dumps(payload)});\n")
    row = {"key": key, "cls": class_name, "stem": stem, "image": record.get("image"),
           "target": record.get("target"), "tname": record.get("target_name"), "runs": cells}
    return row, note


def _files_there(out: Path, key: str, runs: int) -> bool:
    return detail_path(out, key).is_file() and all(thumb_path(out, i, key).is_file() for i in range(runs))


def _remove_stale(out: Path, old: dict, kept: set[str], runs: int) -> None:
    """Files of images the last build had and this one has not (the list shrank)."""
    for key in set(old) - kept:
        detail_path(out, key).unlink(missing_ok=True)
        for index in range(runs):
            thumb_path(out, index, key).unlink(missing_ok=True)


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, datasets: str | Path | None = None,
                 colormap: str = DEFAULT_COLORMAP, alpha: float = DEFAULT_ALPHA, extremes: int = 8,
                 verbose: bool = True) -> BuildStats:
    """Write ``<out_dir>/index.html`` and its files for the SMDL run folders ``run_dirs``
    (several: the images common to all, compared side by side; the first is the reference of
    the differences). ``datasets`` is the photos' root (default: each run's, from runs.jsonl);
    ``extremes`` the worst and best images by insertion AUC shown first. Bad input (a missing
    folder, one without results, runs sharing no image, nothing readable) is an InputError."""
    if not run_dirs:
        raise InputError("--explanation-dir: give at least one run folder")
    check_style(colormap, alpha)
    runs = [open_run(folder, datasets) for folder in run_dirs]
    label_runs(runs)
    keys, note = common_keys(runs)
    out = ensure_dir(out_dir, "--html")
    settings_key = {"version": MANIFEST_VERSION, "runs": [str(run.folder.resolve()) for run in runs],
                    "colormap": colormap, "alpha": alpha}
    old = _read_manifest(out, settings_key)

    images: dict[str, dict] = {}
    drawn = unchanged = skipped = 0
    no_photo: list[str] = []
    progress = Progress(len(keys), "report", enabled=verbose)
    for key in keys:
        signature = [run.signature(key) for run in runs]
        before = old.get(key)
        if isinstance(before, dict) and before.get("sig") == signature and _files_there(out, key, len(runs)):
            images[key] = before
            unchanged += 1
        else:
            try:
                row, why = _draw_image(key, runs, out, colormap, alpha)
                images[key] = {"sig": signature, "row": row}
                drawn += 1
                no_photo += [why] if why else []
            except ValueError as err:
                print(f"warning: skipped {str(err).splitlines()[0]}", file=sys.stderr)
                skipped += 1
        progress.update()
    progress.close()
    if no_photo:
        print(f"warning: {len(no_photo)} of {drawn} photos not found (first: {no_photo[0]}); those images show "
              "the ordering's colours instead", file=sys.stderr)
    if not images:
        raise InputError(f"{runs[0].folder}: none of the {len(keys)} results could be read")
    _remove_stale(out, old, set(images), len(runs))

    rows = [entry["row"] for entry in images.values()]
    _write_page(out, runs, rows, note, colormap, alpha, extremes)
    atomic_write_json(out / "manifest.json", {"settings": settings_key, "images": images})
    index = out / "index.html"
    if verbose:
        print(f"report ({len(rows)} images: {drawn} drawn, {unchanged} unchanged since the last build"
              f"{f', {skipped} unreadable' if skipped else ''}): {index}")
    return BuildStats(index, len(rows), drawn, unchanged, skipped)


def _write_page(out: Path, runs: list[Run], rows: list[dict], note: str | None, colormap: str, alpha: float,
                extremes: int) -> None:
    for row in rows:  # differences against the first run, for the sortable Δ columns
        first = row["runs"][0]
        row["d"] = [{"ins": cell["ins"] - first["ins"], "del": cell["del"] - first["del"]} for cell in row["runs"][1:]]
    data = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "note": note,
        "colormap": colormap, "lut": pictures.colormap_table(colormap), "alpha": alpha,
        "extremes": extremes, "page_size": 100,
        "runs": [{"label": run.label, "folder": str(run.folder), "results": len(run.paths),
                  "settings": settings(run), "failures": failures(run),
                  "ins": summary([row["runs"][i]["ins"] for row in rows]),
                  "del": summary([row["runs"][i]["del"] for row in rows]),
                  "fw": summary([row["runs"][i]["fw"] for row in rows])} for i, run in enumerate(runs)],
        "rows": rows,
    }
    atomic_write_text(out / "data.js", f"window.{DATA_GLOBAL} = {json.dumps(data)};\n")
    for name in ("report.js", "report.css", "index.html"):
        atomic_write(out / name, lambda handle, data=(ASSETS / name).read_bytes(): handle.write(data))


def read_data(out_dir: str | Path) -> dict:
    """The page's data as written (``data.js`` without its assignment), e.g. for tests."""
    text = (Path(out_dir) / "data.js").read_text()
    return json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))


def read_detail(out_dir: str | Path, key: str) -> dict:
    """One image's detail script's data."""
    text = detail_path(Path(out_dir), key).read_text().strip()
    return json.loads(text[len(DETAIL_CALLBACK) + 1:-2])
