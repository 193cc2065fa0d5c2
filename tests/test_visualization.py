"""Figures for any result folder: ``python -m visualization`` and ``visualization.draw``.

Run folders are built by hand (our rank-map format through build_record/save_result, and the
original N×H×W×3 format) on 32×32 photos of 16 flat-coloured 8×8 blocks, one region each, so
an animation frame's canvas can be compared pixel for pixel with the photo.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from PIL import Image

import visualization
from evals.auc import summarize_run
from submodular_attribution.common.results import rank_map
from tests.test_eval_auc import write_original, write_ours
from visualization import draw_run, heat_over_grey, save_maps_grid
from visualization.animation import frame_counts
from visualization.cli import main
from visualization.folders import RunInfo, image_title
from visualization.mean_curves import curve_band, mean_curves_figure

CLASS = "n01440764"  # the class folder write_ours / write_original use
LABELS = (np.arange(32)[:, None] // 8) * 4 + np.arange(32)[None, :] // 8  # 16 blocks of 8×8
SCALE = 9  # animation canvases are upscaled to at least 288 rows: ⌈288 / 32⌉


def block_photo(seed: int) -> np.ndarray:
    """32×32×3 uint8: each block one flat, never-black colour (a GIF palette keeps them)."""
    colours = np.random.default_rng(seed).integers(40, 256, size=(16, 3), dtype=np.uint8)
    return colours[LABELS]


def write_run(run_dir: Path, count: int = 3, photos_dir: Path | None = None) -> dict[str, tuple]:
    """``count`` images img_0.. in our format; their photos saved under ``photos_dir`` when
    given. Returns stem → (photo, order, consistency, collaboration)."""
    made = {}
    for k in range(count):
        rng = np.random.default_rng(10 + k)
        order = rng.permutation(16).tolist()
        consistency = np.sort(rng.uniform(0.1, 0.95, 16))
        collaboration = np.sort(rng.uniform(0.1, 0.95, 16))
        stem = f"img_{k}"
        write_ours(run_dir, stem, LABELS, order, consistency.tolist(), collaboration.tolist(), org=0.9, baseline=0.05)
        photo = block_photo(k)
        if photos_dir is not None:
            photos_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo).save(photos_dir / f"{stem}.png")
        made[stem] = (photo, order, consistency, collaboration)
    return made


def write_runs_jsonl(run_dir: Path, arguments: dict) -> None:
    lines = ['{"arguments": {"cut short', json.dumps({"command": "x", "arguments": arguments})]
    (run_dir / "runs.jsonl").write_text("\n".join(lines) + "\n")


def gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB")))
    return frames


def canvas_of(frame: np.ndarray, height: int) -> np.ndarray:
    return frame[:, :height].astype(int)


def lines_starting(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def assert_one_error_line(argv: list[str], named: str, capsys) -> None:
    """``python -m visualization argv`` exits 2 with one ``error:`` line naming ``named``, last, and nothing else."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    errors = lines_starting(err, "error:")
    assert len(errors) == 1 and named in errors[0] and err.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in err and out == ""


# ---------------------------------------------------------------- a run folder, end to end


def test_cli_draws_every_figure_of_a_run(tmp_path, capsys):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    made = write_run(run_dir, photos_dir=data)
    write_runs_jsonl(run_dir, {"eval_list": str(data / "list.txt"), "datasets": None, "task": "shapes",
                               "arch": "tinynet"})
    assert main(["--explanation-dir", str(run_dir), "--gif"]) == 0
    out, err = capsys.readouterr()
    figures = run_dir / "figures"  # the default --out
    assert not lines_starting(err, "warning"), err  # every photo found through runs.jsonl's eval_list

    for stem in made:
        png = figures / "explanations" / CLASS / f"{stem}.png"
        pixels = imread(png)
        assert pixels.ndim == 3 and pixels.shape[1] > 3 * pixels.shape[0] / 2  # three panels side by side
    assert imread(figures / "mean_curves.png").ndim == 3
    assert not list(figures.rglob(".*.tmp"))  # atomic writes left no temporary file behind
    # It says where it wrote what.
    assert f"{figures / 'explanations'}/<class>/<stem>.png" in out and "explanation figures (3)" in out
    assert f"mean insertion/deletion curves (3 images): {figures / 'mean_curves.png'}" in out
    assert f"GIF animations (3): {figures / 'animations'}/<class>/<stem>.gif" in out

    # The animation: one frame per region; frame k shows exactly the first k+1 regions.
    photo, order, consistency, _ = made["img_1"]
    frames = gif_frames(figures / "animations" / CLASS / "img_1.gif")
    assert len(frames) == 16 == len(frame_counts(16))
    height = 32 * SCALE
    assert all(f.shape[0] == height and f.shape[1] > height for f in frames)
    ranks = rank_map(LABELS, order)
    whole = photo.repeat(SCALE, 0).repeat(SCALE, 1).astype(int)
    assert np.abs(canvas_of(frames[-1], height) - whole).mean() < 2.0  # the whole photo, up to the palette
    first = np.where((ranks < 1)[..., None], photo, 0).repeat(SCALE, 0).repeat(SCALE, 1).astype(int)
    assert np.abs(canvas_of(frames[0], height) - first).mean() < 2.0  # one region on black
    assert (canvas_of(frames[0], height).sum(-1) == 0).mean() == pytest.approx(15 / 16, abs=0.01)


def test_api_returns_the_written_files_and_caps_the_frames(tmp_path, capsys):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    write_run(run_dir, count=2, photos_dir=data)
    out_dir = tmp_path / "figs"
    written = draw_run(run_dir, out_dir, images=1, gif=True, datasets=data, max_frames=5, verbose=False)
    names = sorted(p.relative_to(out_dir).as_posix() for p in written)
    assert names == [f"animations/{CLASS}/img_0.gif", f"explanations/{CLASS}/img_0.png", "mean_curves.png"]
    assert all(p.is_file() for p in written)
    assert capsys.readouterr().out == ""  # verbose=False
    # 16 regions, at most 5 frames: every 4th count, ending with all of them.
    assert frame_counts(16, 5) == [4, 8, 12, 16]
    assert len(gif_frames(out_dir / "animations" / CLASS / "img_0.gif")) == 4


def test_frame_counts():
    assert frame_counts(16) == list(range(1, 17))
    assert frame_counts(150) == list(range(3, 151, 3))
    counts = frame_counts(121)  # step 3, then 121 itself
    assert len(counts) <= 60 and counts[-1] == 121 and counts[:2] == [3, 6]
    with pytest.raises(ValueError):
        frame_counts(0)


# ---------------------------------------------------------------- mean curves


def test_standard_error_band_is_std_over_root_n():
    curves = [
        (np.array([0.0, 1.0]), np.array([0.0, 1.0])),  # 0.5 at x = 0.5
        (np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0])),  # 1.0
        (np.array([0.0, 1.0]), np.array([0.2, 0.2])),  # 0.2
    ]
    at_half = [0.5, 1.0, 0.2]
    sem = statistics.stdev(at_half) / math.sqrt(3)
    assert sem == pytest.approx(0.2333333, abs=1e-6)
    band = curve_band(curves)
    assert band.x[50] == pytest.approx(0.5)
    assert band.mean[50] == pytest.approx(statistics.mean(at_half))
    assert band.sem[50] == pytest.approx(sem)
    assert band.mean_auc == pytest.approx((0.5 + 0.75 + 0.2) / 3)  # per-image trapezoid AUCs

    # The band drawn is that one: its outline passes through mean ± SE at x = 0.5.
    fig = mean_curves_figure({"insertion": {"SMDL": curves}})
    (se,) = [c for c in fig.axes[0].collections if c.get_gid() == "insertion:SMDL:se"]
    vertices = se.get_paths()[0].vertices
    ys = sorted({round(y, 9) for x, y in vertices if abs(x - 0.5) < 1e-12})
    assert ys == pytest.approx([band.mean[50] - sem, band.mean[50] + sem])
    assert any(c.get_gid() == "insertion:SMDL:auc" for c in fig.axes[0].collections)  # area shaded
    assert curve_band(curves[:1]).sem is None  # one image: no band


def test_mean_curves_legend_gives_the_reported_auc(tmp_path):
    run_dir = tmp_path / "run"
    write_run(run_dir)
    from submodular_attribution.common.curves import deletion_curve, insertion_curve
    from submodular_attribution.common.results import iter_results

    results = list(iter_results(run_dir))
    fig = mean_curves_figure({"insertion": {"SMDL": [insertion_curve(r) for r in results]},
                              "deletion": {"SMDL": [deletion_curve(r) for r in results]}})
    summary = summarize_run(run_dir)
    legends = [ax.get_legend().get_texts()[0].get_text() for ax in fig.axes]
    assert legends == [f"mean AUC {summary['insertion_auc']:.4f} (n=3)",
                       f"mean AUC {summary['deletion_auc']:.4f} (n=3)"]


# ---------------------------------------------------------------- formats and fallbacks


def test_original_format_folder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    photo = block_photo(7)
    order = np.random.default_rng(3).permutation(16)
    ranks = np.empty(16, dtype=int)
    ranks[order] = np.arange(16)
    scores = {"consistency_score": np.linspace(0.2, 0.9, 16).tolist(),
              "collaboration_score": np.linspace(0.1, 0.95, 16).tolist()}  # no org/baseline scores
    write_original(run_dir, "orig", ranks[LABELS], scores, image=photo)
    assert main(["--explanation-dir", str(run_dir), "--out", str(tmp_path / "figs"), "--gif"]) == 0
    out, err = capsys.readouterr()
    assert not lines_starting(err, "warning")  # the region images hold the photo: no --datasets needed
    assert imread(tmp_path / "figs" / "explanations" / CLASS / "orig.png").ndim == 3
    frames = gif_frames(tmp_path / "figs" / "animations" / CLASS / "orig.gif")
    assert len(frames) == 16
    whole = photo.repeat(SCALE, 0).repeat(SCALE, 1).astype(int)
    assert np.abs(canvas_of(frames[-1], 32 * SCALE) - whole).mean() < 2.0
    assert "mean insertion/deletion curves (1 images)" in out


def test_missing_photo_falls_back_to_the_heat_map_with_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_run(run_dir, count=1)  # no photo anywhere, no runs.jsonl
    assert main(["--explanation-dir", str(run_dir), "--gif"]) == 0
    out, err = capsys.readouterr()
    warnings = lines_starting(err, "warning")
    assert len(warnings) == 1, err
    assert str(run_dir / "json" / CLASS / "img_0.json") in warnings[0] and "heat-map alone" in warnings[0]
    assert "--datasets" in warnings[0]  # says how to fix it
    assert (run_dir / "figures" / "explanations" / CLASS / "img_0.png").is_file()
    frames = gif_frames(run_dir / "figures" / "animations" / CLASS / "img_0.gif")
    assert len(frames) == 16 and (canvas_of(frames[-1], 32 * SCALE).sum(-1) > 0).all()  # heat-map revealed


def test_one_unreadable_result_is_skipped_with_one_warning(tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_run(run_dir, count=2)
    bad = run_dir / "json" / CLASS / "img_1.json"
    bad.write_text("{not json")
    assert main(["--explanation-dir", str(run_dir), "--images", "0"]) == 0
    out, err = capsys.readouterr()
    skipped = lines_starting(err, "warning: skipped")
    assert len(skipped) == 1 and str(bad) in skipped[0]
    assert "mean insertion/deletion curves (1 images)" in out
    assert not (run_dir / "figures" / "explanations").exists()  # --images 0: mean curves only


def test_mp4_without_ffmpeg_says_so_once(tmp_path, capsys, monkeypatch):
    import visualization.draw as draw_module

    monkeypatch.setattr(draw_module, "ffmpeg_executable", lambda: None)
    run_dir = tmp_path / "run"
    write_run(run_dir, count=2)
    assert main(["--explanation-dir", str(run_dir), "--images", "0", "--mp4"]) == 0
    err = capsys.readouterr().err
    assert len(lines_starting(err, "note: --mp4 skipped")) == 1 and "ffmpeg" in err
    assert not list((run_dir / "figures").rglob("*.mp4"))


def test_mp4_frames_reach_ffmpeg(tmp_path, capsys, monkeypatch):
    """A stand-in ffmpeg writes the number of raw RGB bytes it was sent into its output file."""
    import visualization.draw as draw_module

    fake = tmp_path / "ffmpeg"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nwc -c | tr -d " " > "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(draw_module, "ffmpeg_executable", lambda: str(fake))
    run_dir = tmp_path / "run"
    write_run(run_dir, count=1)
    assert main(["--explanation-dir", str(run_dir), "--gif", "--mp4"]) == 0
    out = capsys.readouterr().out
    assert f"MP4 animations (1): {run_dir / 'figures' / 'animations'}/<class>/<stem>.mp4" in out
    frames = gif_frames(run_dir / "figures" / "animations" / CLASS / "img_0.gif")
    height, width = frames[0].shape[:2]
    sent = 16 + 1500 // 150 - 1  # every frame, then the last repeated to hold it 1.5 s
    expected = sent * (height + height % 2) * (width + width % 2) * 3  # sides padded to even
    assert int((run_dir / "figures" / "animations" / CLASS / "img_0.mp4").read_text()) == expected


def test_title_names_task_model_and_target():
    info = RunInfo({"task": "imagenet_classifier", "arch": "resnet101", "datasets": "/data", "eval_list": "l/x.txt"})
    assert info.context == "imagenet_classifier resnet101"
    assert info.image_roots() == [Path("/data"), Path("l")]
    assert info.image_roots("/other") == [Path("/other")]
    assert image_title({"target": 3, "class": "3"}, "cat", info.context) == \
        "cat · imagenet_classifier resnet101 · target 3"
    assert image_title({"target": 3, "target_name": "goldfish", "class": "n01443537"}, "fish") == \
        "fish · goldfish · class n01443537"


# ---------------------------------------------------------------- bad input


def _missing(tmp_path: Path) -> tuple[list[str], str]:
    return ["--explanation-dir", str(tmp_path / "nope")], str(tmp_path / "nope")


def _not_a_result_folder(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "npy").mkdir()
    return ["--explanation-dir", str(tmp_path)], "not a result folder"


def _empty_json(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "json" / CLASS).mkdir(parents=True)
    return ["--explanation-dir", str(tmp_path)], "no result JSONs"


def _nothing_readable(tmp_path: Path) -> tuple[list[str], str]:
    write_run(tmp_path, count=1)
    (tmp_path / "json" / CLASS / "img_0.json").write_text("[1, 2]")
    return ["--explanation-dir", str(tmp_path)], "none of the 1 result files"


def _bad_colormap(tmp_path: Path) -> tuple[list[str], str]:
    write_run(tmp_path, count=1)
    return ["--explanation-dir", str(tmp_path), "--colormap", "no-such-map"], "--colormap no-such-map"


def _missing_maps(tmp_path: Path) -> tuple[list[str], str]:
    write_run(tmp_path, count=1)
    return ["--explanation-dir", str(tmp_path), "--maps", f"gradcam={tmp_path / 'nope'}"], "--maps gradcam="


@pytest.mark.parametrize("make_bad", [_missing, _not_a_result_folder, _empty_json, _nothing_readable, _bad_colormap,
                                      _missing_maps])
def test_bad_input_is_one_error_line(tmp_path, capsys, make_bad):
    assert_one_error_line(*make_bad(tmp_path), capsys)


# ---------------------------------------------------------------- a benchmark folder


def _row(method: str, image: str, y_ins: list[float], y_del: list[float]) -> dict:
    x = np.linspace(0.0, 1.0, len(y_ins)).tolist()
    return {"method": method, "image": image, "target": 0, "insertion_auc": 0.5,
            "curves": {"x_ins": x, "y_ins": y_ins, "x_del": x, "y_del": y_del}}


def test_benchmark_folder_mean_curves_and_map_grids(tmp_path, capsys):
    bench, data = tmp_path / "bench", tmp_path / "data"
    for method, key in (("smdl", "aaa"), ("rise", "bbb")):
        for k, stem in enumerate(("a", "b")):
            path = bench / "rows" / method / key / "0" / f"{stem}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_row(method, f"images/{stem}.png", [0.1, 0.5 + 0.1 * k, 0.9],
                                            [0.9, 0.3, 0.1 * k])))
        (bench / "rows" / method / key / "config.json").write_text("{}")  # beside the rows, not a row
    (bench / "rows" / "rise" / "bbb" / "0" / "c.json").write_text("{}")  # a row without curves
    (data / "images").mkdir(parents=True)
    Image.fromarray(block_photo(0)).save(data / "images" / "a.png")
    maps = tmp_path / "gradcam"
    (maps / "0").mkdir(parents=True)
    np.save(maps / "0" / "a.npy", np.random.default_rng(0).random((32, 32)).astype(np.float32))

    argv = ["--explanation-dir", str(bench), "--datasets", str(data), "--maps", f"gradcam={maps}", "--images", "1"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    skipped = lines_starting(err, "warning: skipped")
    assert len(skipped) == 1 and "c.json" in skipped[0]
    assert imread(bench / "figures" / "mean_curves.png").ndim == 3
    grid = imread(bench / "figures" / "grids" / "0" / "a.png")
    assert grid.ndim == 3 and grid.shape[1] > 1.5 * grid.shape[0]  # photo beside the map
    assert "(2 methods, 2 images)" in out and f"{bench / 'figures' / 'grids'}/<class>/<stem>.png" in out


# ---------------------------------------------------------------- heat-maps over the photo's grey

RED = np.zeros((32, 32, 3), dtype=np.uint8)
RED[..., 0] = 255
# Under "autumn", 1 is yellow (255, 255, 0) and 0 is red (255, 0, 0). Pure red's luminance is
# 0.299 · 255 = 76.2, 76 as OpenCV rounds it. At alpha 0.6, the first region (heat 1) must read
# 0.6 · (255, 255, 0) + 0.4 · 76 = (183.4, 183.4, 30.4) → (183, 183, 30): yellow over grey. Over the
# colour photo it read 0.6 · (255, 255, 0) + 0.4 · (255, 0, 0) = (255, 153, 0): orange, which the
# colour bar gives to 0.6, not to 1. Heat 0 gives 0.6 · (255, 0, 0) + 0.4 · 76 = (183, 30, 30).
# The colour bar holds only (255, v, 0): no blend over grey (blue 30) can be mistaken for it.
STYLE = {"colormap": "autumn", "alpha": 0.6}
YELLOW_OVER_GREY, RED_OVER_GREY = (183, 183, 30), (183, 30, 30)


def holds_colour(png: Path, rgb: tuple[int, int, int], tolerance: int = 1) -> bool:
    """Whether some pixel of the PNG lies within ``tolerance`` of ``rgb`` in every channel."""
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return bool((np.abs(pixels - np.array(rgb)).max(-1) <= tolerance).any())


def test_heat_over_grey_blends_the_colour_map_with_the_luminance():
    photo = RED.copy()
    blended = heat_over_grey(photo, np.ones((32, 32)), **STYLE)
    assert blended.dtype == np.uint8 and blended.shape == (32, 32, 3)
    assert (blended == YELLOW_OVER_GREY).all()
    assert (heat_over_grey(photo, np.zeros((4, 4)), **STYLE) == RED_OVER_GREY).all()  # a small map is stretched
    assert np.array_equal(photo, RED)  # the photo is not changed
    # A grey photo is its own luminance; alpha 0 leaves it, alpha 1 is the colour map alone.
    grey = np.full((2, 2, 3), 100, dtype=np.uint8)
    assert (heat_over_grey(grey, np.ones((2, 2)), "autumn", 0.0) == 100).all()
    assert (heat_over_grey(grey, np.ones((2, 2)), "autumn", 1.0) == (255, 255, 0)).all()
    # No photo: the colour-mapped heat-map alone.
    assert (heat_over_grey(None, np.full((2, 3), 0.5), "gray") == 128).all()
    with pytest.raises(ValueError, match="uint8 RGB"):
        heat_over_grey(RED.astype(float), np.ones((32, 32)))


@pytest.fixture
def spy(monkeypatch):
    """Calls of heat_over_grey, wherever a figure module took it from."""
    calls = []
    real = visualization.canvas.heat_over_grey

    def recording(image, heat, *args, **kwargs):
        calls.append((None if image is None else np.array(image), np.array(heat)))
        return real(image, heat, *args, **kwargs)

    for module in ("overlay", "grid", "detection", "spectrogram"):
        monkeypatch.setattr(f"visualization.{module}.heat_over_grey", recording)
    return calls


def test_the_command_line_figure_draws_through_heat_over_grey(tmp_path, capsys, spy):
    run_dir, data = tmp_path / "run", tmp_path / "data"
    write_run(run_dir, count=1)
    data.mkdir()
    Image.fromarray(RED).save(data / "img_0.png")
    assert main(["--explanation-dir", str(run_dir), "--datasets", str(data), "--colormap", "autumn",
                 "--alpha", "0.6"]) == 0
    (photo, heat), = spy
    assert np.array_equal(photo, RED) and heat.max() == 1.0
    png = run_dir / "figures" / "explanations" / CLASS / "img_0.png"
    assert holds_colour(png, YELLOW_OVER_GREY)


def test_the_api_plot_draws_through_heat_over_grey(tmp_path, spy):
    import torch

    import submodular_attribution as smdl

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    exp = smdl.explain(model, RED, target=0, division=LABELS, search="greedy", device="cpu")
    png = exp.plot(tmp_path / "plot.png", **STYLE)
    (photo, heat), = spy
    assert np.array_equal(photo, RED) and np.array_equal(heat, exp.saliency)
    assert holds_colour(png, YELLOW_OVER_GREY)


def test_the_maps_grid_draws_through_heat_over_grey(tmp_path, spy):
    """Pure blue: luminance 0.114 · 255 = 29.1, 29; a flat map is all 0 after min–max scaling, red
    under autumn: 0.6 · (255, 0, 0) + 0.4 · 29 = (164.6, 11.6, 11.6) → (165, 12, 12). The photo's
    own panel stays blue."""
    blue = np.zeros((32, 32, 3), dtype=np.uint8)
    blue[..., 2] = 255
    png = save_maps_grid(blue, {"flat": np.full((7, 7), 0.3)}, tmp_path / "grid.png", **STYLE)
    assert len(spy) == 1 and holds_colour(png, (165, 12, 12)) and holds_colour(png, (0, 0, 255))


def test_no_figure_blends_a_heat_map_over_the_colour_photo_itself():
    """Every overlay goes through heat_over_grey: no imshow(..., alpha=...) and no cv2.addWeighted."""
    import ast

    for path in sorted(Path(visualization.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr != "addWeighted", path.name
                if node.func.attr == "imshow":
                    assert "alpha" not in {k.arg for k in node.keywords}, f"{path.name}:{node.lineno}"
