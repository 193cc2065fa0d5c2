"""``python -m evals.attribution_benchmark`` with the paper's flags on the default benchmark, and the
``update_attribution`` option of incremental deletion."""
import json
import os

import numpy as np
import pytest
import torch

from baseline_attribution import attribute, attribution_model
from baseline_attribution.base import AttributionModel
from evals import attribution_benchmark as bench
from evals.saliency_metrics import incremental_deletion, single_deletion_score
from submodular_attribution.common.images import image_tensor, load_image_rgb
from submodular_attribution.common.lists import read_eval_list
from submodular_attribution.shapes import build_scorer, load_or_train_default, write_eval_set


# --------------------------------------------------------------------------- update_attribution

def pixel_model():
    """2×2 images, 2 classes: logit_0 = Σ_i w_i · red_i with distinct weights, logit_1 = 0."""
    w = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)

    def logits(x):
        return torch.stack([x[:, 0].reshape(len(x), -1) @ w, torch.zeros(len(x), dtype=x.dtype)], 1)

    return AttributionModel(logits=logits, num_classes=2, device=torch.device("cpu"), batch_size=8)


def test_update_attribution_recomputes_and_keeps_deleted_pixels_first():
    model = pixel_model()
    image = torch.full((3, 2, 2), 1.0, dtype=torch.float64)
    first = np.array([[0.0, 1.0], [2.0, 3.0]])  # ascending: pixel 0, 1, 2, 3
    seen = []

    def update(current):  # the reversed ranking: pixel 3 first
        seen.append(current.clone())
        return np.array([[3.0, 2.0], [1.0, 0.0]])

    score = incremental_deletion(model, image, 0, first, steps=4, baseline=0.0, update_attribution=update)
    # step 0 intact; step 1 deletes pixel 0 (first map); steps 2, 3 use the new map with pixel 0
    # forced first: {0, 3}, then {0, 3, 2}
    assert len(seen) == 2
    assert torch.equal(seen[0][0].flatten(), torch.tensor([0.0, 1, 1, 1], dtype=torch.float64))
    assert torch.equal(seen[1][0].flatten(), torch.tensor([0.0, 1, 1, 0], dtype=torch.float64))
    kept = [[0, 1, 2, 3], [1, 2, 3], [1, 2], [1]]
    w = [1.0, 2.0, 4.0, 8.0]
    expected = np.mean([1 / (1 + np.exp(-sum(w[i] for i in k))) for k in kept])
    assert score == pytest.approx(expected, abs=1e-12)
    # without the update: {0}, {0, 1}, {0, 1, 2}
    plain = incremental_deletion(model, image, 0, first, steps=4, baseline=0.0)
    kept = [[0, 1, 2, 3], [1, 2, 3], [2, 3], [3]]
    assert plain == pytest.approx(np.mean([1 / (1 + np.exp(-sum(w[i] for i in k))) for k in kept]), abs=1e-12)
    # a map that never changes scores as no update at all
    same = incremental_deletion(model, image, 0, first, steps=4, baseline=0.0, update_attribution=lambda c: first)
    assert same == pytest.approx(plain, abs=1e-12)


# --------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def shapes_two(tmp_path_factory):
    return write_eval_set(tmp_path_factory.mktemp("shapes_ab"), n=2)


def _command(protocol, ckpt, eval_list, output, *extra):
    args = ["--evaluation_protocol", protocol, "--model", "default", "--pretrained", "True",
            "--pretrained_ckpt", str(ckpt), "--batch_size", "16", "--device", "cpu", "--output", str(output)]
    if protocol == "single_deletion":
        args += ["--grid_rows_and_cols", "4"]
    else:
        args += ["--id_baseline", "zeros", "--id_steps", "4", "--id_order", "ascending", "--workers", "0"]
    if eval_list is not None:
        args += ["--eval-list", str(eval_list)]
    return args + list(extra)


def _direct(ckpt, eval_list):
    net, _ = load_or_train_default(ckpt, device="cpu", seed=0)
    scorer = build_scorer(net, "cpu")
    model = attribution_model(scorer, batch_size=16)
    items = read_eval_list(eval_list)
    images = [image_tensor(load_image_rgb(eval_list.parent / i.path, (112, 112))) for i in items]
    mean = scorer.mean.reshape(1, 3, 1, 1)
    return model, items, images, mean


def test_single_deletion_command_matches_the_metric(tmp_path, shapes_two, trained_shapes, capsys):
    ckpt = trained_shapes[0]
    out = tmp_path / "sd.json"
    assert bench.main(_command("single_deletion", ckpt, shapes_two, out, "--explainer", "IxG",
                               "--nr_images", "2", "--attribution_transform", "abs")) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "single_deletion" and result["method"] == "ixg" and result["num_images"] == 2
    assert "Mean rank correlation" in capsys.readouterr().err
    model, items, images, mean = _direct(ckpt, shapes_two)
    for row, item, image in zip(result["per_image"], items, images):
        # the paper's IxG: normalised input × gradient = (x − μ) ⊙ ∇f, channel sum, then |·|
        sal = attribute("ixg", model, image[None], [item.label], baseline=mean)[0].abs()
        assert row["path"] == item.path
        assert row["score"] == pytest.approx(single_deletion_score(model, image, item.label, sal, grid=4), abs=1e-9)
    assert result["score"] == pytest.approx(np.mean([r["score"] for r in result["per_image"]]))
    # an existing result is kept unless --overwrite True
    mtime = os.stat(out).st_mtime_ns
    assert bench.main(_command("single_deletion", ckpt, shapes_two, out, "--explainer", "IxG")) == 0
    assert os.stat(out).st_mtime_ns == mtime and "evaluation skipped" in capsys.readouterr().err


def test_incremental_deletion_command_and_update_counts(tmp_path, shapes_two, trained_shapes):
    ckpt = trained_shapes[0]
    plain, updated = tmp_path / "plain.json", tmp_path / "updated.json"
    assert bench.main(_command("incremental_deletion", ckpt, shapes_two, plain, "--explainer", "Gradient")) == 0
    assert bench.main(_command("incremental_deletion", ckpt, shapes_two, updated, "--explainer", "Gradient",
                               "--id_update_attribution", "True")) == 0
    plain, updated = json.loads(plain.read_text()), json.loads(updated.read_text())
    assert plain["explain_calls"] == 2  # one map per image
    assert updated["explain_calls"] == 2 * (1 + 4 - 2)  # plus a recomputation before steps 2 and 3
    assert updated["settings"]["id_update_attribution"] is True
    model, items, images, _ = _direct(ckpt, shapes_two)
    for row, item, image in zip(updated["per_image"], items, images):
        explain = lambda x, t=item.label: attribute("saliency", model, x[None], [t], absolute=False)[0]  # noqa: E731
        expected = incremental_deletion(model, image, item.label, explain(image), steps=4,
                                        baseline=tuple(model.pixel_mean), update_attribution=explain)
        assert row["score"] == pytest.approx(expected, abs=1e-9)
    assert all(0 <= r["score"] <= 1 for r in plain["per_image"])


def test_default_benchmark_without_data_flags(tmp_path, trained_shapes, monkeypatch):
    monkeypatch.setenv("SMDL_HOME", str(tmp_path))  # the default set is written there, not into the checkout
    out = tmp_path / "default.json"
    assert bench.main(_command("single_deletion", trained_shapes[0], None, out, "--explainer", "IxG-SG",
                               "--nr_images", "2")) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "shapes" and result["num_images"] == 2 and result["method"] == "ixg-sg"


@pytest.mark.parametrize("flag,value,message", [
    ("--explainer", "Nope", "--explainer Nope: unknown"),
    ("--model", "resnet9000", "--model resnet9000: unknown"),
    ("--evaluation_protocol", "accuracy", "--evaluation_protocol accuracy"),
    ("--attribution_transform", "square", "--attribution_transform square"),
])
def test_bad_names_are_one_line_errors(tmp_path, shapes_two, trained_shapes, capsys, flag, value, message):
    # argparse keeps the last of a repeated flag
    args = _command("single_deletion", trained_shapes[0], shapes_two, tmp_path / "x.json", "--explainer", "IxG",
                    flag, value)
    assert bench.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "x.json").exists()


def test_explainer_that_does_not_fit_the_model_is_one_line(tmp_path, shapes_two, trained_shapes, capsys):
    args = _command("single_deletion", trained_shapes[0], shapes_two, tmp_path / "x.json", "--explainer", "CheferLRP")
    assert bench.main(args) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error")]
    assert err == ["error: --explainer CheferLRP does not apply to --model default: chefer-lrp supports timm "
                   "VisionTransformer-style models only, got ShapesCNN"]


def test_every_paper_explainer_maps_to_a_method():
    for name, explain in bench.EXPLAINERS.items():
        assert explain.method.split(" ")[0], name
    assert bench.resolve_explainer("Grad-CAM++") is bench.EXPLAINERS["Grad-CAMpp"]
    assert bench.PAPER_MODELS["vit_base_patch16_224"] == "timm:vit_base_patch16_224"
    assert {"fixup_resnet50", "x_resnet50", "x_vgg16", "bcos_resnet50", "bagnet33"} <= set(bench.PAPER_MODELS)


def test_paper_model_checkpoint_and_data_dir(tmp_path, capsys):
    """A paper-style run: ``--model resnet18`` from a ``.pth.tar`` whose ``state_dict`` keys carry
    ``module.`` (as the published fine-tuned files), ImageNet-style ``--data_dir`` with ``val/``."""
    import cv2

    from submodular_attribution.adapters.classifier import build_classifier

    torch.manual_seed(0)
    net, _ = build_classifier("resnet18", 1000)
    ckpt = tmp_path / "resnet18_imagenet1000_lr0.001_epochs30_step10_checkpoint_best.pth.tar"
    torch.save({"epoch": 30, "state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, ckpt)
    for i, name in enumerate(["n01440764", "n01443537"]):
        (tmp_path / "imagenet" / "val" / name).mkdir(parents=True)
        pixels = (np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "imagenet" / "val" / name / f"img{i}.png"), pixels)
    out = tmp_path / "r18.json"
    args = ["--evaluation_protocol", "single_deletion", "--grid_rows_and_cols", "2", "--data_dir",
            str(tmp_path / "imagenet"), "--model", "resnet18", "--pretrained", "True", "--pretrained_ckpt", str(ckpt),
            "--explainer", "Grad-CAM", "--batch_size", "128", "--input-size", "32", "--device", "cpu",
            "--output", str(out)]
    assert bench.main(args) == 0
    result = json.loads(out.read_text())
    assert result["arch"] == "resnet18" and [r["label"] for r in result["per_image"]] == [0, 1]
    # the same weights give the same numbers through the library directly
    from submodular_attribution.models import ClassifierScorer

    model = attribution_model(ClassifierScorer(net.eval(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                                               num_classes=1000), batch_size=128)
    image = image_tensor(load_image_rgb(tmp_path / "imagenet" / "val" / "n01440764" / "img0.png", (32, 32)))
    sal = attribute("gradcam", model, image[None], [0])[0]
    assert result["per_image"][0]["score"] == pytest.approx(single_deletion_score(model, image, 0, sal, grid=2),
                                                            abs=1e-6, nan_ok=True)
    # a paper model without weights is one line
    assert bench.main([*args[:8], "--pretrained", "False", "--pretrained_ckpt", "none", "--explainer", "IxG",
                       "--output", str(tmp_path / "y.json")]) == 2
    assert "give --pretrained_ckpt FILE" in capsys.readouterr().err
