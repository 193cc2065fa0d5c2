"""Every per-task script end to end on a tiny random-init model of its architecture family,
saved to a temporary checkpoint and loaded by the real loading code."""
import shutil

import pytest
import torch

import SAM_mask_generate
from evals.auc import summarize_run
from submodular_attribution import (
    smdl_explanation_celeba, smdl_explanation_cub, smdl_explanation_imagenet_classifier,
    smdl_explanation_imagenet_clip, smdl_explanation_quilt, smdl_explanation_vggface2)
from submodular_attribution.adapters.classifier import build_classifier
from submodular_attribution.adapters.face import iresnet
from submodular_attribution.common.results import find_result_files, load_result
from submodular_attribution.regions.sam import build_tiny_sam
from tests.conftest import TINY_CLIP, save_tiny_clip

SAMPLES = ["samples/chelsea the cat.jpg", "samples/coffee.jpg"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two sample photos and a writer of evaluation lists with given labels."""
    root = tmp_path_factory.mktemp("data")
    (root / "samples").mkdir()
    for path in SAMPLES:
        shutil.copy(f"datasets/{path}", root / path)

    def write_list(labels, name="list.txt"):
        (root / name).write_text("".join(f"{p} {label}\n" for p, label in zip(SAMPLES, labels)))
        return root / name
    return root, write_list


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


def _run(module, tmp_path, *args):
    assert module.main([*args, "--save-dir", str(tmp_path / "out"), "--device", "cpu", "--batch-size", "16"]) == 0
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    results = [load_result(f) for f in find_result_files(run_dir)]
    assert len(results) == 2
    summary = summarize_run(run_dir)  # the evaluation reads what the script wrote
    assert 0 <= summary["insertion_auc"] <= 1 and 0 <= summary["deletion_auc"] <= 1
    return run_dir, results


def test_imagenet_clip_superpixels(tmp_path, data, clip_checkpoint):
    root, write_list = data
    (tmp_path / "names.txt").write_text("tabby cat\nespresso\nrocket\n")
    run_dir, results = _run(
        smdl_explanation_imagenet_clip, tmp_path, "--eval-list", str(write_list([0, 1])),
        "--model-name", TINY_CLIP, "--checkpoint", str(clip_checkpoint), "--class-names", str(tmp_path / "names.txt"),
        "--semantic-cache", str(tmp_path / "cache"), "--input-size", "32", "--division", "slico", "--region-size", "12",
        "--search", "bidirectional", "--pending-samples", "2")
    assert run_dir.name == "slico-0.0-0.05-20.0-1.0-pending-samples-2"  # published bidirectional CLIP λ
    assert results[0].record["effectiveness_score"] is not None
    assert list((tmp_path / "cache").glob("*.pt"))


def test_imagenet_clip_with_sam_label_maps(tmp_path, data, clip_checkpoint):
    root, write_list = data
    sam_ckpt = tmp_path / "sam.pth"
    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), sam_ckpt)
    eval_list = write_list([0, 2])
    masks = tmp_path / "masks"
    assert SAM_mask_generate.main(["--eval-list", str(eval_list), "--model-type", "vit_tiny", "--checkpoint",
                                   str(sam_ckpt), "--points-per-side", "4", "--input-size", "32", "32",
                                   "--device", "cpu", "--save-dir", str(masks)]) == 0
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    run_dir, results = _run(
        smdl_explanation_imagenet_clip, tmp_path, "--eval-list", str(eval_list), "--model-name", TINY_CLIP,
        "--checkpoint", str(clip_checkpoint), "--class-names", str(tmp_path / "names.txt"),
        "--semantic-cache", str(tmp_path / "cache"), "--input-size", "32", "32", "--division", "sam",
        "--sam-masks", str(masks))
    assert run_dir.name == "sam-0.0-0.05-1.0-1.0"
    assert results[0].record["division"] == {"algorithm": "sam", "label_maps": str(masks)}


def test_quilt(tmp_path, data, clip_checkpoint):
    _, write_list = data
    _, results = _run(smdl_explanation_quilt, tmp_path, "--eval-list", str(write_list([0, 2])),
                      "--model-name", TINY_CLIP, "--checkpoint", str(clip_checkpoint),
                      "--semantic-cache", str(tmp_path / "cache"), "--input-size", "32", "32",
                      "--division", "grid", "--region-size", "16")
    assert results[0].record["num_regions"] == 4


@pytest.mark.parametrize("module,num_classes,labels", [
    (smdl_explanation_imagenet_classifier, 1000, [281, 967]), (smdl_explanation_cub, 200, [0, 199])])
def test_classifier_tasks(tmp_path, data, module, num_classes, labels):
    _, write_list = data
    net, _ = build_classifier("resnet18", num_classes)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "r18.pth")
    run_dir, results = _run(module, tmp_path, "--eval-list", str(write_list(labels)), "--arch", "resnet18",
                            "--checkpoint", str(tmp_path / "r18.pth"), "--input-size", "48", "48",
                            "--division", "grid", "--region-size", "24")
    eff = results[0].record["effectiveness_score"]
    assert (eff is None) == (module is smdl_explanation_imagenet_classifier)  # λ2 = 0 vs CUB's λ2 = 1


@pytest.mark.parametrize("module", [smdl_explanation_celeba, smdl_explanation_vggface2])
def test_face_tasks(tmp_path, data, module):
    _, write_list = data
    torch.manual_seed(0)
    torch.save(iresnet("iresnet18").state_dict(), tmp_path / "face.pth")
    torch.save(torch.randn(3, 512), tmp_path / "prototypes.pt")
    run_dir, results = _run(module, tmp_path, "--eval-list", str(write_list([0, 2])), "--arch", "iresnet18",
                            "--checkpoint", str(tmp_path / "face.pth"), "--prototypes", str(tmp_path / "prototypes.pt"),
                            "--division", "grid", "--region-size", "56")
    assert results[0].npy.shape == (112, 112) and results[0].record["num_regions"] == 4


def test_wrong_weights_and_model_name_are_one_line_errors(tmp_path, data, capsys, clip_checkpoint):
    _, write_list = data
    eval_list = str(write_list([0, 1]))
    net, _ = build_classifier("resnet18", 10)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    args = ["--eval-list", eval_list, "--device", "cpu", "--save-dir", str(tmp_path / "out")]
    assert smdl_explanation_cub.main([*args, "--arch", "resnet18", "--checkpoint", str(tmp_path / "r18.pth")]) == 2
    assert "r18.pth: weights do not fit ResNet (shape mismatch: fc.weight" in capsys.readouterr().err
    assert smdl_explanation_cub.main([*args, "--arch", "resnt18", "--checkpoint", str(tmp_path / "r18.pth")]) == 2
    assert "unknown classifier 'resnt18'; did you mean: resnet18" in capsys.readouterr().err
    assert smdl_explanation_quilt.main([*args, "--checkpoint", str(tmp_path / "none.bin")]) == 2
    assert "none.bin: checkpoint not found" in capsys.readouterr().err
    assert smdl_explanation_imagenet_clip.main([*args, "--division", "sam"]) == 2
    assert "--division sam needs --sam-masks" in capsys.readouterr().err


def test_sam_inline_with_a_checkpoint(tmp_path, data, clip_checkpoint):
    _, write_list = data
    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), tmp_path / "sam.pth")
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    run_dir, results = _run(
        smdl_explanation_imagenet_clip, tmp_path, "--eval-list", str(write_list([0, 1])), "--model-name", TINY_CLIP,
        "--checkpoint", str(clip_checkpoint), "--class-names", str(tmp_path / "names.txt"),
        "--semantic-cache", str(tmp_path / "cache"), "--input-size", "32", "--division", "sam",
        "--sam-checkpoint", str(tmp_path / "sam.pth"), "--sam-model-type", "vit_tiny")
    assert results[0].record["division"]["model_type"] == "vit_tiny"
