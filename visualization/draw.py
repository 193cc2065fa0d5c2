"""Figures for a whole result folder — the function API behind ``python -m visualization``.

:func:`draw` takes an SMDL run folder (:func:`draw_run`) or a method-benchmark folder
(:func:`draw_benchmark`, recognised by its ``rows/``) and returns the files it wrote, all
under ``out_dir`` (default ``<folder>/figures``):

==============================================  =============================================
``explanations/<class>/<stem>.png``             heat-map over the photo in grey, best region set, curves
``mean_curves.png``                             mean insertion and deletion curves, SE bands
``animations/<class>/<stem>.gif`` (``.mp4``)    regions revealed in order, growing curve
``grids/<class>/<stem>.png``                    ``maps``: methods' saliency maps side by side
==============================================  =============================================

Bad input (a missing folder, a folder of neither kind, no usable result) is an
:class:`InputError`; one unusable file among many is skipped with one warning line on stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from submodular_attribution.common.atomic import ensure_dir
from submodular_attribution.common.curves import deletion_curve, insertion_curve
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.maps import read_map
from submodular_attribution.common.progress import Progress
from submodular_attribution.common.results import find_result_files, load_result, rank_map_saliency, result_rank_map

from .animation import animation_frames, ffmpeg_executable, save_gif, save_mp4
from .canvas import check_style
from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP, MAX_FRAMES
from .folders import find_photo, image_title, read_benchmark_rows, read_run_info, result_photo
from .grid import save_maps_grid
from .mean_curves import save_mean_curves
from .overlay import save_explanation_figure

NO_FFMPEG = ("note: --mp4 skipped: no ffmpeg found (pip install imageio-ffmpeg, or put ffmpeg on PATH); "
             "GIFs are unaffected")


def _limit(images: int | str) -> int | None:
    """``"all"`` → None (no limit); a count ≥ 0 → itself."""
    if images == "all":
        return None
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise InputError(f"--images {images}: expected 'all' or a count ≥ 0")
    return images


def _map_dirs(maps: Mapping[str, str | Path] | None) -> dict[str, Path]:
    dirs = {str(name): Path(folder) for name, folder in (maps or {}).items()}
    for name, folder in dirs.items():
        if not folder.is_dir():
            raise InputError(f"--maps {name}={folder}: no such folder")
    return dirs


def _folder(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such folder")
    return path


class _MapReader:
    """Maps of each method for one image, None where missing; counts what was missing."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs
        self.missing: dict[str, list[str]] = {name: [] for name in dirs}

    def __call__(self, class_name: str, stem: str) -> dict[str, np.ndarray | None]:
        found = {}
        for name, folder in self.dirs.items():
            try:
                found[name] = read_map(folder, class_name, stem)
            except InputError as err:
                found[name] = None
                self.missing[name].append(str(err))
        return found

    def report(self, total: int) -> None:
        for name, reasons in self.missing.items():
            if reasons:
                print(f"warning: --maps {name}: {len(reasons)} of {total} maps unusable (first: {reasons[0]})",
                      file=sys.stderr)


def draw(folder: str | Path, out_dir: str | Path | None = None, **options) -> list[Path]:
    """:func:`draw_benchmark` for a folder with ``rows/``, else :func:`draw_run`."""
    folder = _folder(folder)
    if (folder / "rows").is_dir():
        return draw_benchmark(folder, out_dir, **options)
    return draw_run(folder, out_dir, **options)


def draw_run(run_dir: str | Path, out_dir: str | Path | None = None, images: int | str = "all", gif: bool = False,
             mp4: bool = False, colormap: str = DEFAULT_COLORMAP, alpha: float = DEFAULT_ALPHA,
             datasets: str | Path | None = None, maps: Mapping[str, str | Path] | None = None,
             max_frames: int = MAX_FRAMES, verbose: bool = True) -> list[Path]:
    """Figures of an SMDL run folder (our rank-map format or the original N×H×W×3 one).

    Mean curves use every readable image; per-image figures, animations (``gif``, ``mp4``) and
    map grids (``maps``: method name → saliency-map folder, ``<dir>/<class>/<stem>.npy``) the
    first ``images`` in sorted order. Photos are found from each record's ``"image"`` under
    ``datasets`` (default: the run's ``--datasets``, else its list's folder, from runs.jsonl);
    a photo not found is one warning line and the heat-map drawn alone. ``verbose`` prints
    where each kind of figure went. Returns the written paths."""
    run_dir = _folder(run_dir)
    check_style(colormap, alpha)
    limit = _limit(images)
    map_reader = _MapReader(_map_dirs(maps))
    paths = find_result_files(run_dir, require_any=True)
    out = ensure_dir(Path(out_dir) if out_dir is not None else run_dir / "figures", "--out")
    info = read_run_info(run_dir)
    roots = info.image_roots(datasets)
    ffmpeg = ffmpeg_executable() if mp4 else None
    if mp4 and ffmpeg is None:
        print(NO_FFMPEG, file=sys.stderr)

    written: dict[str, list[Path]] = {"explanations": [], "gif": [], "mp4": [], "grids": []}
    curves: dict[str, list] = {"insertion": [], "deletion": []}
    progress = Progress(len(paths), "figures", enabled=verbose and len(paths) > 5)
    drawn = 0
    for path in paths:
        try:
            result = load_result(path)
            insertion, deletion = insertion_curve(result), deletion_curve(result)
        except ValueError as err:
            print(f"warning: skipped {err}", file=sys.stderr)
            progress.update()
            continue
        curves["insertion"].append(insertion)
        curves["deletion"].append(deletion)
        if limit is None or drawn < limit:
            drawn += 1
            relative = path.relative_to(run_dir / "json").with_suffix("")
            try:
                _draw_image(result, relative, out, written, roots, info.context, gif, ffmpeg, colormap, alpha,
                            max_frames, map_reader)
            except (ValueError, RuntimeError) as err:
                print(f"warning: no figure for {path}: {str(err).splitlines()[0]}", file=sys.stderr)
        progress.update()
    progress.close()
    if not curves["insertion"]:
        raise InputError(f"{run_dir}: none of the {len(paths)} result files could be drawn")
    map_reader.report(drawn)

    count = len(curves["insertion"])
    title = f"{info.context + ': ' if info.context else ''}{run_dir.name}, {count} images"
    mean_path = save_mean_curves({kind: {"SMDL": c} for kind, c in curves.items()}, out / "mean_curves.png",
                                 title=title)
    if verbose:
        _say(written["explanations"], out / "explanations", "explanation figures", "png")
        print(f"mean insertion/deletion curves ({count} images): {mean_path}")
        _say(written["gif"], out / "animations", "GIF animations", "gif")
        _say(written["mp4"], out / "animations", "MP4 animations", "mp4")
        _say(written["grids"], out / "grids", "map grids", "png")
    return [*written["explanations"], mean_path, *written["gif"], *written["mp4"], *written["grids"]]


def _say(paths: list[Path], folder: Path, what: str, suffix: str) -> None:
    if paths:
        print(f"{what} ({len(paths)}): {folder}/<class>/<stem>.{suffix}")


def _draw_image(result, relative: Path, out: Path, written: dict[str, list[Path]], roots: list[Path],
                context: str | None, gif: bool, ffmpeg: str | None, colormap: str, alpha: float,
                max_frames: int, map_reader: _MapReader) -> None:
    """Every per-image figure of one result, appended to ``written``."""
    photo, reason = result_photo(result, roots)
    if photo is None:
        print(f"warning: {result.json_path}: {reason}; drew the ordering heat-map alone", file=sys.stderr)
    title = image_title(result.record, relative.name, context)
    written["explanations"].append(save_explanation_figure(
        photo, result, out / "explanations" / f"{relative}.png", title=title, colormap=colormap, alpha=alpha))
    if gif or ffmpeg:
        frames = animation_frames(photo, result, title, max_frames, colormap)
        if gif:
            written["gif"].append(save_gif(frames, out / "animations" / f"{relative}.gif"))
        if ffmpeg:
            try:
                written["mp4"].append(save_mp4(frames, out / "animations" / f"{relative}.mp4", ffmpeg))
            except RuntimeError as err:
                print(f"warning: no MP4 for {result.json_path}: {err}", file=sys.stderr)
    if map_reader.dirs:
        maps = {"SMDL ordering": rank_map_saliency(result_rank_map(result), len(result.areas)),
                **map_reader(relative.parent.name, relative.name)}
        written["grids"].append(save_maps_grid(photo, maps, out / "grids" / f"{relative}.png", title=title,
                                               colormap=colormap, alpha=alpha))


def draw_benchmark(bench_dir: str | Path, out_dir: str | Path | None = None, images: int | str = "all",
                   gif: bool = False, mp4: bool = False, colormap: str = DEFAULT_COLORMAP,
                   alpha: float = DEFAULT_ALPHA, datasets: str | Path | None = None,
                   maps: Mapping[str, str | Path] | None = None, max_frames: int = MAX_FRAMES,
                   verbose: bool = True) -> list[Path]:
    """Figures of an ``evals.benchmark`` folder: mean insertion and deletion curves per method
    with standard-error bands, and with ``maps`` one grid per image (the first ``images``)
    comparing the methods' maps over the photo (in grey). ``gif``, ``mp4`` and ``max_frames`` apply to
    run folders only. Returns the written paths."""
    bench_dir = _folder(bench_dir)
    check_style(colormap, alpha)
    limit = _limit(images)
    map_reader = _MapReader(_map_dirs(maps))
    info = read_run_info(bench_dir)
    rows = read_benchmark_rows(bench_dir, info)
    out = ensure_dir(Path(out_dir) if out_dir is not None else bench_dir / "figures", "--out")
    if gif or mp4:
        print("note: --gif/--mp4 animate SMDL run folders; a benchmark folder has no orderings to animate",
              file=sys.stderr)

    panels: dict[str, dict[str, list]] = {"insertion": {}, "deletion": {}}
    for row in rows:
        c = row.data["curves"]
        panels["insertion"].setdefault(row.method, []).append((c["x_ins"], c["y_ins"]))
        panels["deletion"].setdefault(row.method, []).append((c["x_del"], c["y_del"]))
    count = len({(row.class_name, row.stem) for row in rows})
    title = f"{info.context + ': ' if info.context else ''}{bench_dir.name}, {count} images"
    mean_path = save_mean_curves(panels, out / "mean_curves.png", title=title, shade_auc=False)
    written = [mean_path]

    grids = []
    if map_reader.dirs:
        by_image = {(row.class_name, row.stem): row.data for row in rows}
        selected = sorted(by_image)[: limit]
        roots = info.image_roots(datasets)
        for class_name, stem in selected:
            found = map_reader(class_name, stem)
            shapes = [m.shape for m in found.values() if m is not None]
            photo, reason = find_photo(by_image[(class_name, stem)], roots, shapes[0] if shapes else None)
            if photo is None:
                print(f"warning: {class_name}/{stem}: {reason}; drew the maps alone", file=sys.stderr)
            record = by_image[(class_name, stem)]
            grids.append(save_maps_grid(photo, found, out / "grids" / class_name / f"{stem}.png",
                                        title=image_title(record, stem, info.context), colormap=colormap,
                                        alpha=alpha))
        map_reader.report(len(selected))
    if verbose:
        print(f"mean insertion/deletion curves ({len(panels['insertion'])} methods, {count} images): {mean_path}")
        _say(grids, out / "grids", "map grids", "png")
    return written + grids
