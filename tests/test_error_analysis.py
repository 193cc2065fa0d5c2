"""Error analysis and ID-SDS tools: split_predictions, highest_confidence, finetune_id_sds.

The shapes model here is a randomly initialised ShapesCNN saved in the task's checkpoint
format (no training), so its predictions are computed in the test itself.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evals import finetune_id_sds, highest_confidence, split_predictions
from evals.finetune_id_sds import (ID_SDS_RECIPE, delete_random_cells, finetune_cell_deletion, image_folder_items,
                                   make_optimizer, zero_point)
from evals.saliency_metrics import highest_confidence_saliency
from submodular_attribution.common.images import image_tensor
from submodular_attribution.common.images import load_image_rgb
from submodular_attribution.common.lists import read_eval_list
from submodular_attribution.common.results import save_result
from submodular_attribution.regions import grid_division
from submodular_attribution.shapes import (CLASS_NAMES, DATA_VERSION, MEAN, MODEL_VERSION, STD, ShapesCNN,
                                           write_eval_set)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def shapes_case(tmp_path_factory):
    """6 evaluation images and a random (untrained) ShapesCNN checkpoint the task accepts."""
    folder = tmp_path_factory.mktemp("error_analysis")
    list_path = write_eval_set(folder / "data", n=6)
    torch.manual_seed(0)
    net = ShapesCNN().eval()
    info = {"seed": 0, "data_version": DATA_VERSION, "model_version": MODEL_VERSION,
            "class_names": list(CLASS_NAMES), "val_accuracy": 0.0}
    checkpoint = folder / "random_shapes.pt"
    torch.save({"state_dict": net.state_dict(), "info": info}, checkpoint)
    return list_path, checkpoint, net


@torch.no_grad()
def _probs(net: nn.Module, path: Path) -> torch.Tensor:
    x = image_tensor(load_image_rgb(path, (112, 112)))[None]
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return net(x).softmax(-1)[0].double()


# --------------------------------------------------------------------------- split_predictions

def test_split_predictions_partitions_the_list(shapes_case, tmp_path, capsys):
    list_path, checkpoint, net = shapes_case
    root = list_path.parent
    items = read_eval_list(list_path)
    probs = [_probs(net, root / item.path) for item in items]
    preds = [int(p.argmax()) for p in probs]
    # labels chosen so that even lines are right and odd lines wrong, whatever the random net says
    labels = [pred if i % 2 == 0 else (pred + 1) % len(CLASS_NAMES) for i, pred in enumerate(preds)]
    my_list = tmp_path / "list" / "mine.txt"
    my_list.parent.mkdir()
    my_list.write_text("".join(f"{item.path} {label}\n" for item, label in zip(items, labels)))

    out = tmp_path / "split"
    code = split_predictions.main(["--model", "shapes", "--eval-list", str(my_list), "--datasets", str(root),
                                   "--checkpoint", str(checkpoint), "--save-dir", str(out), "--batch-size", "4"])
    assert code == 0
    assert "accuracy: 0.5000 (3 of 6 correct, 3 misclassified)" in capsys.readouterr().out

    correct = [(i.path, i.label) for i in read_eval_list(out / "correct.txt")]
    wrong = [(i.path, i.label) for i in read_eval_list(out / "misclassified.txt")]
    expected = [(item.path, label) for item, label in zip(items, labels)]
    assert correct == expected[0::2] and wrong == expected[1::2]  # partition, true labels kept, list order
    assert not any(name.startswith(".") for name in (p.name for p in out.iterdir()))  # no temp files left

    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "label", "prediction", "p_label", "p_prediction"]
    assert [r["path"] for r in rows] == [item.path for item in items]
    for row, label, pred, p in zip(rows, labels, preds, probs):
        assert int(row["label"]) == label and int(row["prediction"]) == pred
        assert float(row["p_label"]) == pytest.approx(float(p[label]), abs=1e-5)
        assert float(row["p_prediction"]) == pytest.approx(float(p.max()), abs=1e-5)
        assert (float(row["p_prediction"]) >= float(row["p_label"]))


def test_split_predictions_skips_and_reports_an_unreadable_image(shapes_case, tmp_path, capsys):
    list_path, checkpoint, _ = shapes_case
    root = tmp_path / "data"
    shutil.copytree(list_path.parent, root)
    items = read_eval_list(list_path)
    (root / items[1].path).write_bytes(b"not an image")
    out = tmp_path / "split"
    code = split_predictions.main(["--model", "shapes", "--eval-list", str(root / list_path.name),
                                   "--checkpoint", str(checkpoint), "--save-dir", str(out)])
    assert code == 1  # the others are split, but the run says that one is missing
    captured = capsys.readouterr()
    assert f"of {len(items) - 1} correct" in captured.out and "1 unreadable images left out" in captured.err
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["image"] for f in failures] == [items[1].path]
    with open(out / "predictions.csv", newline="") as handle:
        assert [r["path"] for r in csv.DictReader(handle)] == [i.path for i in items if i is not items[1]]


def test_split_predictions_errors(shapes_case, tmp_path, capsys):
    list_path, checkpoint, _ = shapes_case
    assert split_predictions.main(["--model", "shapes", "--eval-list", str(list_path),
                                   "--checkpoint", str(checkpoint)]) == 2
    assert "--save-dir is required" in capsys.readouterr().err
    assert split_predictions.main(["--model", "shapes", "--eval-list", str(tmp_path / "nope.txt"),
                                   "--checkpoint", str(checkpoint), "--save-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.txt: evaluation list not found" in err


# --------------------------------------------------------------------------- highest_confidence

def _write_result(run_dir: Path, cls: str, stem: str, sizes: list[int], consistency: list[float],
                  with_areas: bool = True) -> None:
    """A 4×4 rank map whose regions have the given pixel counts (in ordering position order)."""
    ranks = np.repeat(np.arange(len(sizes)), sizes).astype(np.int16).reshape(4, 4)
    record = {"consistency_score": consistency, "baseline_score": 0.05, "org_score": 0.9,
              "collaboration_score": [0.5] * len(sizes)}
    if with_areas:
        record["region_areas"] = (np.cumsum(sizes) / 16).tolist()
    save_result(run_dir, cls, stem, record, ranks)


@pytest.fixture
def result_folder(tmp_path):
    run = tmp_path / "run"
    _write_result(run, "0", "a", [4, 4, 4, 4], [0.2, 0.6, 0.5, 0.9])  # areas .25 .5 .75 1
    _write_result(run, "1", "b", [2, 6, 8], [0.4, 0.3, 0.8], with_areas=False)  # .125 .5 1, from the npy
    _write_result(run, "1", "c", [8, 8], [0.7, 0.1])  # .5 1: nothing fits 0.25
    return run


def test_highest_confidence_of_result_folder(result_folder, capsys):
    assert highest_confidence.main(["--explanation-dir", str(result_folder), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    table = "\n".join(out[:-1])
    assert "highest confidence" in table and len(out) - 1 == 1 + 4
    rows = {row["budget"]: row for row in summary["budgets"]}
    expected = {  # (mean confidence, mean area, images, undefined)
        0.25: ((0.2 + 0.4) / 2, (0.25 + 0.125) / 2, 2, 1),
        0.5: ((0.6 + 0.4 + 0.7) / 3, (0.5 + 0.125 + 0.5) / 3, 3, 0),
        0.75: ((0.6 + 0.4 + 0.7) / 3, (0.5 + 0.125 + 0.5) / 3, 3, 0),
        1.0: ((0.9 + 0.8 + 0.7) / 3, (1.0 + 1.0 + 0.5) / 3, 3, 0),
    }
    assert sorted(rows) == sorted(expected)
    for budget, (conf, area, images, undefined) in expected.items():
        row = rows[budget]
        assert row["highest_confidence"] == pytest.approx(conf)
        assert row["area"] == pytest.approx(area)
        assert (row["images"], row["undefined"]) == (images, undefined)
    assert summary["num_images"] == 3 and summary["mode"] == "ordering"
    per_image = {entry["image"]: entry["values"] for entry in summary["per_image"]}
    assert per_image["json/1/c.json"]["0.25"] == [None, None]
    assert f"{(0.2 + 0.4) / 2:.4f}" in table

    # the empty image counts only when asked: baseline 0.05 at area 0 now fits 0.25 for c
    assert highest_confidence.main(["--explanation-dir", str(result_folder), "--json", "--include-empty",
                                    "--budgets", "0.25"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["budgets"][0]
    assert row["highest_confidence"] == pytest.approx((0.2 + 0.4 + 0.05) / 3) and row["undefined"] == 0


def test_highest_confidence_bad_input(tmp_path, result_folder, capsys):
    cases = [
        ["--explanation-dir", str(tmp_path / "missing")],
        ["--explanation-dir", str(tmp_path)],  # no json/ inside
        [],  # neither source
        ["--explanation-dir", str(result_folder), "--budgets", "1.5"],
    ]
    for argv in cases:
        assert highest_confidence.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    (result_folder / "json" / "0" / "a.json").write_text("{not json")
    assert highest_confidence.main(["--explanation-dir", str(result_folder)]) == 2
    assert "a.json" in capsys.readouterr().err
    (result_folder / "json" / "0" / "a.json").write_text(json.dumps({"region_areas": [0.5, 1.0]}))
    assert highest_confidence.main(["--explanation-dir", str(result_folder)]) == 2
    assert "consistency_score" in capsys.readouterr().err


def test_highest_confidence_of_saliency_maps(shapes_case, tmp_path, capsys):
    from submodular_attribution.common.maps import save_map
    from baseline_attribution.models import attribution_model
    from submodular_attribution.shapes import build_scorer

    list_path, checkpoint, net = shapes_case
    root = list_path.parent
    items = read_eval_list(list_path)[:2]
    short = tmp_path / "two.txt"
    short.write_text("".join(f"{i.path} {i.label}\n" for i in items))
    rng = np.random.default_rng(0)
    maps = tmp_path / "maps"
    saliencies = [rng.random((112, 112)).astype(np.float32) for _ in items]
    for item, saliency in zip(items, saliencies):
        save_map(maps, str(item.label), item.stem, saliency)

    assert highest_confidence.main(["--maps", str(maps), "--model", "shapes", "--eval-list", str(short),
                                    "--datasets", str(root), "--checkpoint", str(checkpoint), "--json",
                                    "--n-points", "11", "--budgets", "0.25", "1.0"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "saliency" and summary["num_images"] == 2

    model = attribution_model(build_scorer(net), batch_size=64)
    direct = [highest_confidence_saliency(model, image_tensor(load_image_rgb(root / i.path, (112, 112))), i.label,
                                          s, (0.25, 1.0), 11) for i, s in zip(items, saliencies)]
    for row in summary["budgets"]:
        b = row["budget"]
        assert row["highest_confidence"] == pytest.approx(np.mean([d[b][0] for d in direct]), abs=1e-6)
        assert row["area"] == pytest.approx(np.mean([d[b][1] for d in direct]), abs=1e-9)

    # a missing map is a one-line error
    (maps / str(items[1].label) / f"{items[1].stem}.npy").unlink()
    assert highest_confidence.main(["--maps", str(maps), "--model", "shapes", "--eval-list", str(short),
                                    "--datasets", str(root), "--checkpoint", str(checkpoint)]) == 2
    assert "saliency map not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- ID-SDS fine-tuning

class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def _toy_data(n: int = 64, size: int = 16, seed: int = 0):
    """Class 0: reddish images, class 1: bluish ones, with noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.4 * torch.rand(n, 3, size, size, generator=g)
    images[labels == 0, 0] += 0.3
    images[labels == 1, 2] += 0.3
    return images.clamp(0, 1), labels


def _normalize(x):
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def test_delete_random_cells_uses_the_sds_grid():
    images = torch.rand(40, 3, 12, 8)
    out, which = delete_random_cells(images, grid=4, p_delete=1.0, baseline=(0.1, 0.2, 0.3),
                                     generator=torch.Generator().manual_seed(0))
    cells = torch.as_tensor(grid_division(12, 8, 4, 4))
    for img, new, cell in zip(images, out, which.tolist()):
        assert 0 <= cell < 16
        inside = cells == cell
        assert torch.equal(new[:, ~inside], img[:, ~inside])
        assert torch.allclose(new[:, inside], torch.tensor([0.1, 0.2, 0.3])[:, None].expand(3, int(inside.sum())))
    same, none = delete_random_cells(images, p_delete=0.0)
    assert torch.equal(same, images) and (none == -1).all()
    _, half = delete_random_cells(torch.zeros(2000, 3, 8, 8), p_delete=0.5, generator=torch.Generator().manual_seed(1))
    assert 0.45 < float((half >= 0).float().mean()) < 0.55


def test_zero_point_is_the_normalisation_mean():
    assert zero_point(None) == (0.0, 0.0, 0.0)
    assert zero_point(_normalize) == pytest.approx(MEAN, abs=1e-6)
    with pytest.raises(ValueError, match="not a per-channel affine map"):
        zero_point(lambda x: x * x - 0.25)


def test_make_optimizer_has_the_id_sds_recipe():
    net = TinyCNN()
    optimizer, scheduler = make_optimizer(net)
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (1e-3, 0.9, 1e-4)
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert (scheduler.step_size, scheduler.gamma) == (10, 0.1)
    lrs = []
    for _ in range(30):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == lrs[9] == 1e-3
    assert lrs[10] == pytest.approx(1e-4) and lrs[19] == pytest.approx(1e-4) and lrs[20] == pytest.approx(1e-5)
    assert ID_SDS_RECIPE == {"grid": 4, "p_delete": 0.5, "epochs": 30, "lr": 1e-3, "momentum": 0.9,
                             "weight_decay": 1e-4, "step_size": 10, "gamma": 0.1, "batch_size": 32}


def test_finetune_cell_deletion_learns_and_keeps_the_recipe():
    images, labels = _toy_data()
    torch.manual_seed(0)
    net = TinyCNN()
    deleted, _ = delete_random_cells(images, grid=4, p_delete=1.0, baseline=MEAN,
                                     generator=torch.Generator().manual_seed(5))

    def evaluate():
        net.eval()
        with torch.no_grad():
            logits = net(_normalize(deleted))
        return float(nn.functional.cross_entropy(logits, labels)), float((logits.argmax(1) == labels).float().mean())

    loss_before, acc_before = evaluate()
    result = finetune_cell_deletion(net, images, labels, epochs=2, lr=0.05, batch_size=16, normalize=_normalize,
                                    progress=False)
    loss_after, acc_after = evaluate()
    assert result.net is net and not net.training
    assert loss_after < loss_before and acc_after >= acc_before
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(0.2 < h["deleted"] < 0.8 for h in result.history)
    group = result.optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-4)
    assert (result.scheduler.step_size, result.scheduler.gamma) == (10, 0.1)

    # defaults are the recipe; the same seed gives the same weights
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(TinyCNN())
        res = finetune_cell_deletion(nets[-1], images, labels, epochs=1, normalize=_normalize, progress=False)
        assert res.optimizer.param_groups[0]["initial_lr"] == 1e-3
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
        assert torch.equal(a, b)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_finetune_cli_writes_a_loadable_checkpoint(shapes_case, tmp_path, capsys):
    from submodular_attribution.shapes import load_or_train_default

    list_path, checkpoint, _ = shapes_case
    output = tmp_path / "ckpt" / "shapes-id-sds.pth"
    assert finetune_id_sds.main(["--model", "shapes", "--eval-list", str(list_path), "--checkpoint", str(checkpoint),
                                 "--output", str(output), "--epochs", "1", "--batch-size", "3"]) == 0
    assert str(output) in capsys.readouterr().out
    saved = torch.load(output, map_location="cpu", weights_only=True)
    net = ShapesCNN()
    net.load_state_dict(saved["state_dict"])  # strict: same architecture
    recipe = saved["info"]["id_sds"]["recipe"]
    assert {k: recipe[k] for k in ("lr", "momentum", "weight_decay", "step_size", "gamma", "grid", "p_delete")} == \
        {"lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4, "step_size": 10, "gamma": 0.1, "grid": 4, "p_delete": 0.5}
    assert recipe["epochs"] == 1 and saved["info"]["id_sds"]["num_images"] == 6
    assert not torch.equal(saved["state_dict"]["head.weight"],
                           torch.load(checkpoint, weights_only=True)["state_dict"]["head.weight"])

    # the task's --checkpoint loads it as is (no retraining, file untouched)
    digest = _sha(output)
    loaded, _ = load_or_train_default(output, verbose=False)
    assert torch.equal(loaded.state_dict()["head.weight"], saved["state_dict"]["head.weight"])
    assert _sha(output) == digest
    assert split_predictions.main(["--model", "shapes", "--eval-list", str(list_path), "--checkpoint", str(output),
                                   "--save-dir", str(tmp_path / "split")]) == 0
    assert _sha(output) == digest and "accuracy:" in capsys.readouterr().out


def test_finetune_cli_image_folder_and_errors(shapes_case, tmp_path, capsys):
    list_path, checkpoint, _ = shapes_case
    folder = tmp_path / "train"
    for item in read_eval_list(list_path):
        target = folder / CLASS_NAMES[item.label] / Path(item.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(list_path.parent / item.path, target)
    (folder / "blue_cross" / "notes.txt").write_text("not an image")
    items, classes = image_folder_items(folder)
    assert classes == sorted(CLASS_NAMES) and len(items) == 6
    assert all(classes[i.label] == Path(i.path).parent.name for i in items)

    output = tmp_path / "folder-id-sds.pth"
    assert finetune_id_sds.main(["--model", "shapes", "--image-folder", str(folder), "--checkpoint", str(checkpoint),
                                 "--output", str(output), "--epochs", "1", "--batch-size", "6"]) == 0
    ShapesCNN().load_state_dict(torch.load(output, weights_only=True)["state_dict"])
    capsys.readouterr()

    errors = [
        (["--model", "imagenet_clip", "--eval-list", str(list_path)], "needs a classifier network"),
        (["--model", "shapes", "--checkpoint", str(checkpoint)], "exactly one of --image-folder or --eval-list"),
        (["--model", "shapes", "--eval-list", str(list_path), "--checkpoint", str(checkpoint),
          "--output", str(checkpoint)], "would overwrite the base checkpoint"),
        (["--model", "shapes", "--image-folder", str(tmp_path / "none"), "--checkpoint", str(checkpoint)],
         "no such folder"),
        (["--model", "shapes", "--eval-list", str(list_path), "--checkpoint", str(checkpoint), "--epochs", "0"],
         "--epochs must be >= 1"),
    ]
    for argv, message in errors:
        assert finetune_id_sds.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
