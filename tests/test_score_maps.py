"""evals.score_maps (any maps folder through the metric registry) and the re-calibration paper's
command line (evals.recalibration_cli, and its flags in the map generator), on the shipped shapes CNN."""
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from baseline_attribution import generate_explanation_maps as generate
from baseline_attribution.models import attribution_model
from evals import recalibration_cli, score_maps
from evals.saliency_metrics import diffid, insertion_deletion, mufidelity
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.images import image_tensor
from submodular_attribution.common.lists import ListItem, read_eval_list
from submodular_attribution.shapes import build_scorer, load_or_train_default, write_eval_set
from submodular_attribution.tasks import get_model_task

LINE = re.compile(r"^(\w+): (-?\d+\.\d{4}|nan) ± (\d+\.\d{4}|nan) \((\d+) images\)$", re.M)


@pytest.fixture(scope="module")
def shapes_list(tmp_path_factory):
    return write_eval_set(tmp_path_factory.mktemp("shapes"), n=3)


@pytest.fixture(scope="module")
def gradcam_maps(tmp_path_factory, shapes_list, trained_shapes):
    folder = tmp_path_factory.mktemp("maps") / "gradcam"
    assert generate.main(["--method", "gradcam", "--eval-list", str(shapes_list), "--checkpoint",
                          str(trained_shapes[0]), "--save-dir", str(folder), "--device", "cpu"]) == 0
    return folder


def _flags(shapes_list, trained_shapes):
    return ["--eval-list", str(shapes_list), "--checkpoint", str(trained_shapes[0]), "--device", "cpu"]


def test_scores_match_the_metric_functions(gradcam_maps, shapes_list, trained_shapes, capsys):
    assert score_maps.main(["--maps", str(gradcam_maps), "--metric", "diffid", "mufidelity", "--metric", "insertion",
                            *_flags(shapes_list, trained_shapes)]) == 0
    printed = {m[0]: m for m in LINE.findall(capsys.readouterr().out)}
    summary = json.loads((gradcam_maps / "scores.json").read_text())  # the default --out
    assert list(summary["metrics"]) == ["diffid", "mufidelity", "insertion_auc"]

    net, _ = load_or_train_default(trained_shapes[0], seed=0)
    model = attribution_model(build_scorer(net, "cpu"))
    task, root = get_model_task("shapes"), shapes_list.parent
    direct = {"diffid": [], "mufidelity": [], "insertion_auc": []}
    rows = {row["image"]: row for row in summary["per_image"]}
    for item in read_eval_list(shapes_list):
        x = image_tensor(task.read_input(root / item.path, (112, 112)))
        saliency = np.load(gradcam_maps / str(item.label) / f"{item.stem}.npy")
        values = {"diffid": diffid(model, x, item.label, saliency)["diffid"],
                  "mufidelity": mufidelity(model, x, item.label, saliency),
                  "insertion_auc": insertion_deletion(model, x, item.label, saliency)["auc_ins"]}
        assert rows[item.path]["values"] == pytest.approx(values, rel=1e-9, abs=1e-12)
        for name, value in values.items():
            direct[name].append(value)
    for name, values in direct.items():
        assert summary["metrics"][name]["mean"] == pytest.approx(np.mean(values), rel=1e-9)
        assert summary["metrics"][name]["images"] == 3
        _, mean, sem, count = printed[name]
        assert (mean, sem, count) == (f"{np.mean(values):.4f}", f"{stats.sem(values):.4f}", "3")


def test_bad_maps_are_reported_and_skipped(tmp_path, gradcam_maps, shapes_list, trained_shapes, capsys):
    maps = tmp_path / "maps"
    shutil.copytree(gradcam_maps, maps, ignore=shutil.ignore_patterns("*.json*"))
    items = read_eval_list(shapes_list)
    wrong, garbled = (maps / str(i.label) / f"{i.stem}.npy" for i in items[:2])
    np.save(wrong, np.ones((112, 56), np.float32))  # not the input's aspect ratio
    garbled.write_bytes(b"not a numpy file")
    out = tmp_path / "summary.json"
    assert score_maps.main(["--maps", str(maps), "--metric", "diffid", "--out", str(out),
                            *_flags(shapes_list, trained_shapes)]) == 1
    captured = capsys.readouterr()
    assert f"{wrong}: map 112×56 does not match the input 112×112" in captured.err
    assert f"{garbled}: unreadable saliency map" in captured.err
    assert LINE.findall(captured.out)[0][0::3] == ("diffid", "1")
    summary = json.loads(out.read_text())
    assert [r["image"] for r in summary["per_image"]] == [items[2].path] and summary["failed"] == 2
    failures = [json.loads(line) for line in (maps / "failures.jsonl").read_text().splitlines()]
    assert [f["image"] for f in failures] == [items[0].path, items[1].path]
    # --strict stops at the first bad map instead
    assert score_maps.main(["--maps", str(maps), "--strict", *_flags(shapes_list, trained_shapes)]) == 2


def test_map_formats(tmp_path):
    item = ListItem(path="images/red_disk/red_disk_000.png", label=0, line=1)
    smooth = np.add.outer(np.arange(56.0), np.arange(56.0) ** 2)
    # the original SMDL layout (<list path without suffix>.npy), an H×W×1 Xplique map
    original = tmp_path / "images" / "red_disk" / "red_disk_000.npy"
    original.parent.mkdir(parents=True)
    np.save(original, smooth[..., None])
    saliency, path, stretched = score_maps.read_saliency(tmp_path, item, (112, 112))
    assert path == original and stretched == (56, 56)
    assert np.array_equal(saliency, cv2.resize(smooth, (112, 112), interpolation=cv2.INTER_LINEAR))
    # ours wins over the original layout; per-channel maps are averaged over channels
    ours = tmp_path / "0" / "red_disk_000.npy"
    ours.parent.mkdir()
    np.save(ours, np.stack([smooth, 2 * smooth, 3 * smooth]))
    saliency, path, stretched = score_maps.read_saliency(tmp_path, item, (56, 56))
    assert path == ours and stretched is None and np.allclose(saliency, 2 * smooth)
    for bad, message in ((np.ones(56), "expected an H×W map"), (np.full((56, 56), np.nan), "non-finite")):
        np.save(ours, bad)
        with pytest.raises(InputError, match=message):
            score_maps.read_saliency(tmp_path, item, (56, 56))
    with pytest.raises(InputError, match="saliency map not found"):
        score_maps.read_saliency(tmp_path, ListItem(path="x/y.png", label=3, line=2), (56, 56))


def test_paper_command_line_end_to_end(tmp_path, shapes_list, trained_shapes, capsys):
    flags = _flags(shapes_list, trained_shapes)
    assert recalibration_cli.main(["-attr_method=IG_Uniform", "-metric", "DiffID", "-k", "2", "-bg_size", "2",
                                   "--save-dir", str(tmp_path / "paper"), *flags]) == 0
    lines = LINE.findall(capsys.readouterr().out)
    assert [(name, count) for name, _, _, count in lines] == [("diffid", "3")]
    # their IG_Uniform -k 2 -bg_size 2 (est_method valid_ip by default) is our re-calibrated ig-uniform
    assert generate.main(["--method", "ig-uniform", "--option", "steps=2", "--option", "n_refs=2", "--option",
                          "recalibrate=True", "--save-dir", str(tmp_path / "ours"), *flags]) == 0
    for ours in sorted((tmp_path / "ours").glob("*/*.npy")):
        assert np.array_equal(np.load(ours), np.load(tmp_path / "paper" / ours.relative_to(tmp_path / "ours")))
    assert json.loads((tmp_path / "paper" / "scores.json").read_text())["metrics"]["diffid"]["images"] == 3

    assert recalibration_cli.main(["-attr_method", "InputGrad", "-metric", "visualize", "--num-vis", "1",
                                   "--save-dir", str(tmp_path / "grad"), *flags]) == 0
    figures = list((tmp_path / "grad" / "figures").rglob("*.png"))
    assert len(figures) == 1 and cv2.imread(str(figures[0])) is not None


def test_paper_flags_translate_and_fail_in_one_line(tmp_path, monkeypatch, capfd):
    assert generate.paper_argv(["-attr_method", "IntGrad", "-model", "vgg16", "-dataset", "ImageNet"])[:8] == \
        ["--method", "ig", "-est_method", "valid_ip", "--model", "imagenet_classifier", "--arch", "vgg16"]
    assert generate.paper_argv(["-attr_method=InputGrad", "-dataset", "shapes"]) == \
        ["--method", "saliency", "--model", "shapes"]
    for main, metric in ((generate.main, []), (recalibration_cli.main, ["-metric", "DiffID"])):
        assert main(["-attr_method", "Random", *metric]) == 2
        err = capfd.readouterr().err
        assert err.startswith("error: -attr_method Random: unknown; choose from InputGrad, SmoothGrad") \
            and err.count("\n") == 1
    # with -metric the generator hands its command line to the evaluation layer's entry point
    assert generate.main(["-attr_method", "Random", "-metric", "DiffID"]) == 2
    err = capfd.readouterr().err
    assert "-metric: running python -m evals.recalibration_cli" in err
    assert "error: -attr_method Random: unknown; choose from InputGrad" in err
    monkeypatch.setenv("SMDL_HOME", str(tmp_path))  # no ckpt/resnet34-imagenet.pth there
    samples = Path(__file__).resolve().parents[1] / "datasets" / "imagenet_samples.txt"
    assert generate.main(["-attr_method", "IntGrad", "-model", "resnet34", "-dataset", "ImageNet",
                          "--eval-list", str(samples), "--device", "cpu"]) == 2
    assert f"{tmp_path / 'ckpt' / 'resnet34-imagenet.pth'}: checkpoint not found" in capfd.readouterr().err
