"""The offline HTML report: ``python -m visualization --explanation-dir RUN [RUN2] --html OUT``.

Run folders are built by hand (tests.test_visualization's 32×32 photos of 16 flat blocks, one
region each), so every number on the page has a known answer: the record's AUCs, forwards and
order, and the rank map the page composites.
"""
from __future__ import annotations

import base64
import json
import math
import os
import statistics
from pathlib import Path

import cv2
import numpy as np
import pytest

from submodular_attribution.common.curves import image_aucs
from submodular_attribution.common.results import load_result, rank_map
from tests.test_eval_auc import write_original, write_ours
from tests.test_visualization import (CLASS, LABELS, assert_one_error_line, block_photo, lines_starting,
                                     write_runs_jsonl)
from visualization.cli import main
from visualization.report.build import build_report, read_data, read_detail


def make_run(run_dir: Path, photos: Path, stems: list[str], seed: int = 0) -> dict[str, dict]:
    """One image per stem (16 regions, forwards 100 + 7·k), photos saved under ``photos``;
    returns stem → its order, consistency and forwards."""
    made = {}
    photos.mkdir(parents=True, exist_ok=True)
    for k, stem in enumerate(stems):
        rng = np.random.default_rng(seed * 100 + k)
        order = rng.permutation(16).tolist()
        consistency = np.sort(rng.uniform(0.1, 0.95, 16)).tolist()
        collaboration = np.sort(rng.uniform(0.1, 0.95, 16)).tolist()
        write_ours(run_dir, stem, LABELS, order, consistency, collaboration, org=0.9, baseline=0.05,
                   forward_passes=100 + 7 * k + seed)
        cv2.imwrite(str(photos / f"{stem}.png"), block_photo(k)[..., ::-1])
        made[stem] = {"order": order, "consistency": consistency, "forwards": 100 + 7 * k + seed}
    write_runs_jsonl(run_dir, {"eval_list": str(photos / "list.txt"), "datasets": None, "task": "shapes",
                               "arch": "tinynet", "search": "greedy"})
    return made


@pytest.fixture
def run(tmp_path):
    made = make_run(tmp_path / "run", tmp_path / "data", [f"img_{k}" for k in range(4)])
    return tmp_path / "run", made


def decode_ranks(uri: str) -> np.ndarray:
    data = base64.b64decode(uri.split(",", 1)[1])
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return bgr[..., 2].astype(int) * 256 + bgr[..., 1]  # rank = 256·R + G


def test_page_data_matches_the_records(run, tmp_path, capsys):
    run_dir, made = run
    out = tmp_path / "report"
    assert main(["--explanation-dir", str(run_dir), "--html", str(out)]) == 0
    stdout, err = capsys.readouterr()
    assert not lines_starting(err, "warning") and "report (4 images: 4 drawn" in stdout
    assert {"index.html", "report.js", "report.css", "data.js", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert not (run_dir / "figures").exists()  # --html alone draws no PNG figures

    data = read_data(out)
    rows = {row["key"]: row for row in data["rows"]}
    assert sorted(rows) == [f"{CLASS}/img_{k}" for k in range(4)]
    for stem, known in made.items():
        key = f"{CLASS}/{stem}"
        result = load_result(run_dir / "json" / CLASS / f"{stem}.json")
        cell = rows[key]["runs"][0]
        assert (cell["ins"], cell["del"]) == pytest.approx(image_aucs(result), abs=1e-12)
        assert cell["fw"] == known["forwards"] and cell["n"] == 16 and rows[key]["target"] == 3
        detail = read_detail(out, key)
        shown = detail["runs"][0]
        assert shown["order"] == known["order"]
        assert shown["yi"] == pytest.approx([0.05] + known["consistency"], abs=1e-6)  # baseline, then step k
        assert shown["x"][-1] == pytest.approx(1.0) and len(shown["x"]) == 17
        assert np.array_equal(decode_ranks(shown["ranks"]), rank_map(LABELS, known["order"]))
        assert detail["photo"].startswith("data:image/jpeg;base64,")  # found through runs.jsonl's eval_list
        assert (out / "thumbs" / "0" / CLASS / f"{stem}.jpg").stat().st_size > 0

    summary = data["runs"][0]
    insertion = [rows[key]["runs"][0]["ins"] for key in sorted(rows)]
    assert summary["ins"]["mean"] == pytest.approx(statistics.mean(insertion))
    assert summary["ins"]["se"] == pytest.approx(statistics.stdev(insertion) / math.sqrt(4))
    assert summary["fw"]["mean"] == pytest.approx(statistics.mean(m["forwards"] for m in made.values()))
    assert summary["settings"]["search"]["name"] == "greedy" and summary["settings"]["division"] == {"name": "test"}
    record = json.loads((run_dir / "json" / CLASS / "img_0.json").read_text())
    assert summary["settings"]["lambdas"] == [record[f"lambda{i}"] for i in range(1, 5)] == [0.0, 0.05, 1.0, 1.0]
    assert summary["settings"]["model"] == "shapes tinynet"


def test_nothing_reaches_for_the_network(run, tmp_path):
    out = tmp_path / "report"
    build_report([run[0]], out, verbose=False)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 5 + 2 * 4
    for path in files:
        text = path.read_bytes().lower()
        for needle in (b"http://", b"https://", b"//cdn", b"fetch(", b"xmlhttprequest"):
            assert needle not in text, f"{path} holds {needle!r}"


def test_rebuild_redraws_only_changed_images(run, tmp_path):
    run_dir, _ = run
    out = tmp_path / "report"
    first = build_report([run_dir], out, verbose=False)
    assert (first.drawn, first.unchanged) == (4, 0)
    files = sorted((out / "thumbs").rglob("*.jpg")) + sorted((out / "details").rglob("*.js"))
    stamps = {p: p.stat().st_mtime_ns for p in files}

    again = build_report([run_dir], out, verbose=False)
    assert (again.drawn, again.unchanged) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps

    # One record rewritten (another ordering, 3 forwards), one image added: only those two drawn.
    write_ours(run_dir, "img_2", LABELS, list(range(16)), np.linspace(0.2, 0.9, 16).tolist(),
               np.linspace(0.1, 0.8, 16).tolist(), org=0.9, baseline=0.05, forward_passes=3)
    make_run(tmp_path / "more", tmp_path / "data", ["img_9"])
    os.replace(tmp_path / "more" / "json" / CLASS / "img_9.json", run_dir / "json" / CLASS / "img_9.json")
    os.replace(tmp_path / "more" / "npy" / CLASS / "img_9.npy", run_dir / "npy" / CLASS / "img_9.npy")
    third = build_report([run_dir], out, verbose=False)
    assert (third.drawn, third.unchanged, third.images) == (2, 3, 5)
    changed = {p for p in files if p.stat().st_mtime_ns != stamps[p]}
    assert changed == {out / "thumbs" / "0" / CLASS / "img_2.jpg", out / "details" / CLASS / "img_2.js"}
    rows = {row["key"]: row for row in read_data(out)["rows"]}
    assert rows[f"{CLASS}/img_2"]["runs"][0]["fw"] == 3
    assert read_detail(out, f"{CLASS}/img_2")["runs"][0]["order"] == list(range(16))

    # Another colour map changes every thumbnail: everything is drawn again.
    assert build_report([run_dir], out, colormap="viridis", verbose=False).drawn == 5


def test_two_runs_common_images_and_differences(tmp_path, capsys):
    first = make_run(tmp_path / "a" / "greedy", tmp_path / "data", ["img_0", "img_1", "img_2"], seed=0)
    second = make_run(tmp_path / "b" / "fast", tmp_path / "data", ["img_0", "img_1", "img_2", "img_3"], seed=1)
    out = tmp_path / "report"
    assert main(["--explanation-dir", str(tmp_path / "a" / "greedy"), str(tmp_path / "b" / "fast"),
                 "--html", str(out)]) == 0
    warnings = lines_starting(capsys.readouterr().err, "warning")
    assert len(warnings) == 1 and "the 3 common to all" in warnings[0] and "fast has 1 more" in warnings[0]

    data = read_data(out)
    assert [r["label"] for r in data["runs"]] == ["greedy", "fast"] and data["note"] in warnings[0]
    assert [r["results"] for r in data["runs"]] == [3, 4]
    for row in data["rows"]:
        ins = [cell["ins"] for cell in row["runs"]]
        deletion = [cell["del"] for cell in row["runs"]]
        assert row["d"] == [{"ins": pytest.approx(ins[1] - ins[0]), "del": pytest.approx(deletion[1] - deletion[0])}]
        stem = row["stem"]
        assert [cell["fw"] for cell in row["runs"]] == [first[stem]["forwards"], second[stem]["forwards"]]
        orders = [shown["order"] for shown in read_detail(out, row["key"])["runs"]]
        assert orders == [first[stem]["order"], second[stem]["order"]]
        assert (out / "thumbs" / "1" / CLASS / f"{stem}.jpg").is_file()


def test_failures_are_listed_and_marked_when_a_rerun_finished_them(run, tmp_path):
    run_dir, _ = run
    lines = [{"time": "t", "image": "img_1.png", "class": 0, "list_line": 2, "reason": "OSError: truncated"},
             {"time": "t", "image": "gone.png", "class": 0, "list_line": 5, "reason": "no such file"}]
    (run_dir / "failures.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"cut')
    build_report([run_dir], tmp_path / "report", verbose=False)
    failures = read_data(tmp_path / "report")["runs"][0]["failures"]
    assert [(f["image"], f["reason"], f["resolved"]) for f in failures] == [
        ("img_1.png", "OSError: truncated", True), ("gone.png", "no such file", False)]


def test_original_format_and_a_missing_photo(tmp_path, capsys):
    original, ours = tmp_path / "original", tmp_path / "ours"
    order = np.random.default_rng(3).permutation(16)
    ranks = np.empty(16, dtype=int)
    ranks[order] = np.arange(16)
    scores = {"consistency_score": np.linspace(0.2, 0.9, 16).tolist(),
              "collaboration_score": np.linspace(0.1, 0.95, 16).tolist()}
    write_original(original, "orig", ranks[LABELS], scores, image=block_photo(7))
    build_report([original], tmp_path / "a", verbose=False)
    assert not lines_starting(capsys.readouterr().err, "warning")  # the region images hold the photo
    detail = read_detail(tmp_path / "a", f"{CLASS}/orig")
    assert np.array_equal(decode_ranks(detail["runs"][0]["ranks"]), ranks[LABELS]) and detail["photo"]
    assert detail["runs"][0]["yi"][1:] == pytest.approx(scores["consistency_score"], abs=1e-6)  # 6 decimals

    make_run(ours, tmp_path / "data", ["img_0", "img_1"])
    (tmp_path / "data" / "img_1.png").unlink()
    build_report([ours], tmp_path / "b", verbose=False)
    warnings = lines_starting(capsys.readouterr().err, "warning")
    assert len(warnings) == 1 and "1 of 2 photos not found (first: image img_1.png not found" in warnings[0]
    assert read_detail(tmp_path / "b", f"{CLASS}/img_1")["photo"] is None
    assert (tmp_path / "b" / "thumbs" / "0" / CLASS / "img_1.jpg").is_file()  # the heat-map alone


def test_figure_flags_draw_the_pngs_too(run, tmp_path, capsys):
    run_dir, _ = run
    assert main(["--explanation-dir", str(run_dir), "--html", str(tmp_path / "report"), "--images", "1"]) == 0
    assert (tmp_path / "report" / "index.html").is_file()
    assert sorted(p.name for p in (run_dir / "figures" / "explanations" / CLASS).iterdir()) == ["img_0.png"]


def _missing(tmp_path: Path) -> tuple[list[str], str]:
    return ["--explanation-dir", str(tmp_path / "nope"), "--html", str(tmp_path / "out")], str(tmp_path / "nope")


def _no_results(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "run" / "json" / CLASS).mkdir(parents=True)
    return ["--explanation-dir", str(tmp_path / "run"), "--html", str(tmp_path / "out")], "no result JSONs"


def _nothing_readable(tmp_path: Path) -> tuple[list[str], str]:
    make_run(tmp_path / "run", tmp_path / "data", ["img_0"])
    (tmp_path / "run" / "json" / CLASS / "img_0.json").write_text("[1, 2]")
    return ["--explanation-dir", str(tmp_path / "run"), "--html", str(tmp_path / "out")], "none of the 1 results"


def _disjoint_runs(tmp_path: Path) -> tuple[list[str], str]:
    make_run(tmp_path / "a", tmp_path / "data", ["img_0"])
    make_run(tmp_path / "b", tmp_path / "data", ["img_1"])
    return ["--explanation-dir", str(tmp_path / "a"), str(tmp_path / "b"), "--html", str(tmp_path / "out")], \
        "share no image"


def _benchmark_folder(tmp_path: Path) -> tuple[list[str], str]:
    (tmp_path / "bench" / "rows").mkdir(parents=True)
    return ["--explanation-dir", str(tmp_path / "bench"), "--html", str(tmp_path / "out")], "method-benchmark"


def _several_without_html(tmp_path: Path) -> tuple[list[str], str]:
    make_run(tmp_path / "a", tmp_path / "data", ["img_0"])
    return ["--explanation-dir", str(tmp_path / "a"), str(tmp_path / "a")], "--explanation-dir: 2 folders"


@pytest.mark.parametrize("make_bad", [_missing, _no_results, _nothing_readable, _disjoint_runs, _benchmark_folder,
                                      _several_without_html])
def test_bad_input_is_one_error_line(tmp_path, capsys, make_bad):
    assert_one_error_line(*make_bad(tmp_path), capsys)
