"""The detection front ends end to end on 2 scenes of the default benchmark with a tiny
untrained detector (no training), the figures, the benchmark, and the one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from submodular_attribution import smdl_explanation_detection, smdl_explanation_grounding
from submodular_attribution.detection.shapes_data import DATA_VERSION, write_detection_eval_set
from submodular_attribution.detection.shapes_model import MODEL_VERSION, ShapesDetector
from submodular_attribution.detection.targets import read_detection_list

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    list_path = write_detection_eval_set(root / "data", n=2)
    torch.manual_seed(0)
    info = {"seed": 0, "data_version": DATA_VERSION, "model_version": MODEL_VERSION, "recall_iou50": 0.0}
    torch.save({"state_dict": ShapesDetector().state_dict(), "info": info}, root / "det.pt")
    return root, list_path


def _argv(root, list_path, *extra):
    return ["--eval-list", str(list_path), "--checkpoint", str(root / "det.pt"), "--save-dir", str(root / "out"),
            "--device", "cpu", "--search", "fast", "--region-size", "28", "--batch-size", "32", *extra]


def test_help_of_both_scripts(capsys):
    for module, words in ((smdl_explanation_detection, ["--model", "fasterrcnn_resnet50_fpn", "--num-classes"]),
                          (smdl_explanation_grounding, ["--checkpoint", "phrase"])):
        with pytest.raises(SystemExit) as stop:
            module.main(["--help"])
        assert stop.value.code == 0
        out = capsys.readouterr().out
        assert all(word in out for word in words + ["--search", "--images-at-once", "--lambda3"])


def test_detection_script_end_to_end(setup, capsys):
    from evals.auc import summarize_run
    from visualization.detection import draw_detection_run

    root, list_path = setup
    assert smdl_explanation_detection.main(_argv(root, list_path)) == 0
    run_dir = root / "out" / "slico-0.0-0.0-1.0-1.0-fast"
    items = read_detection_list(list_path)
    files = sorted((run_dir / "json").glob("*/*.json"))
    assert len(items) >= 2 and len(files) == len(items)
    for item in items:
        record = json.loads((run_dir / "json" / item.folder / f"{item.stem}.json").read_text())
        ranks = np.load(run_dir / "npy" / item.folder / f"{item.stem}.npy")
        assert record["target_box"] == list(item.box) and record["target_box_input"] == list(item.box)  # 112 → 112
        assert record["target_name"] == item.query and record["task"] == "detection"
        n = record["num_regions"]
        assert sorted(record["region_order"]) == list(range(n)) and ranks.max() == n - 1
        assert len(record["consistency_score"]) == n
        assert record["consistency_score"][-1] == pytest.approx(record["org_score"])
        assert 0.0 <= record["org_score"] <= 1.0
    summary = summarize_run(run_dir)
    assert summary["num_images"] == len(items)
    figures = draw_detection_run(run_dir)
    assert len(figures) == len(items) and all(p.stat().st_size > 0 for p in figures)
    # a rerun finds everything done
    capsys.readouterr()
    assert smdl_explanation_detection.main(_argv(root, list_path)) == 0
    assert f"{len(items)} of {len(items)} targets already done" in capsys.readouterr().err


def test_bad_input_is_one_line(setup, capsys, tmp_path):
    root, list_path = setup
    assert smdl_explanation_detection.main(_argv(root, list_path, "--lambda1", "0.5")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --lambda1/--lambda2") and "\n" not in err
    bad = list_path.parent / "bad.txt"
    bad.write_text("images/scene_000.png 0 0 10 10 red_disk\nimages/scene_000.png 100 100 120 110 red_disk\n")
    assert smdl_explanation_detection.main(_argv(root, bad)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bad}:2: box 100 100 120 110 lies outside the 112×112 image images/scene_000.png"
    bad.write_text("images/scene_000.png 0 0 10 10 purple_blob\n")
    assert smdl_explanation_detection.main(_argv(root, bad)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}:1: unknown class 'purple_blob'") and "\n" not in err


def test_detection_benchmark_runs_every_method(setup, tmp_path, capsys):
    from evals.detection_benchmark import main

    root, list_path = setup
    assert main(["--eval-list", str(list_path), "--checkpoint", str(root / "det.pt"), "--limit", "2",
                 "--methods", "smdl-fast,random,drise,gradcam", "--drise-masks", "40", "--region-size", "28",
                 "--out", str(tmp_path / "bench")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "bench" / "rows.jsonl").read_text().splitlines()]
    assert sorted({r["method"] for r in rows}) == ["drise", "gradcam", "random", "smdl-fast"] and len(rows) == 8
    for r in rows:
        assert 0 <= r["ins"] <= 1 and 0 <= r["del"] <= 1 and r["point_mask"] in (0.0, 1.0)
        assert 0 <= r["energy_box"] <= 1
    assert "| smdl-fast |" in (tmp_path / "bench" / "table.md").read_text()


def test_torchvision_model_through_the_script(setup, tmp_path):
    from submodular_attribution.detection.torchvision_detector import build_torchvision_detector

    root, list_path = setup
    first = list_path.read_text().splitlines()[0].split()
    one = list_path.parent / "one_by_index.txt"
    one.write_text(" ".join(first[:5]) + " 2\n")  # a class index of the 3-class head
    torch.manual_seed(0)
    torch.save(build_torchvision_detector("ssdlite320_mobilenet_v3_large", 3).state_dict(), tmp_path / "ssd.pth")
    argv = ["--model", "ssdlite320_mobilenet_v3_large", "--checkpoint", str(tmp_path / "ssd.pth"), "--num-classes", "3",
            "--eval-list", str(one), "--input-size", "112", "--division", "grid", "--region-size", "56",
            "--search", "greedy", "--save-dir", str(tmp_path / "out"), "--device", "cpu"]
    assert smdl_explanation_detection.main(argv) == 0
    (record_path,) = (tmp_path / "out" / "grid-0.0-0.0-1.0-1.0" / "json").glob("*/*.json")
    record = json.loads(record_path.read_text())
    assert record["target_class"] == 2 and record["num_regions"] == 4 and record["target_box"] == [float(v) for v in first[1:5]]
    assert sorted(record["region_order"]) == [0, 1, 2, 3] and 0.0 <= record["org_score"] <= 1.0


def test_images_at_once_gives_the_same_results(setup, tmp_path):
    root, list_path = setup
    orders = []
    for k in ("1", "8"):
        argv = _argv(root, list_path, "--images-at-once", k)
        argv[argv.index("--save-dir") + 1] = str(tmp_path / k)
        assert smdl_explanation_detection.main(argv) == 0
        files = sorted((tmp_path / k / "slico-0.0-0.0-1.0-1.0-fast" / "json").glob("*/*.json"))
        orders.append([(f.name, json.loads(f.read_text())["region_order"], json.loads(f.read_text())["consistency_score"])
                       for f in files])
    assert len(orders[0]) >= 2 and orders[0] == orders[1]
