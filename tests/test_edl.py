"""The published evidential (EDL) networks load with their key names as published and give the
evidential confidence 1 − C/Σ(exp(clamp(s·z, −10, 10)) + 1) of the original code (s = 5 for
faces, 1 for CUB).

Published layouts (SMDL-Attribution): ``edl-101-10177.pth`` / ``edl-101-8631.pth`` are the state
dicts of an insightface IR-ResNet-100 with ``fc2: Linear(512, C)``; ``cub-resnet101-edl.pth`` is a
torchvision ResNet-101 with ``fc: Linear(2048, 200)``. Their full shapes are checked on the meta
device (no memory); the file round trips use shallow networks of the same classes.
"""
import math

import pytest
import torch
import torchvision
from torch import nn

from submodular_attribution.adapters import face
from submodular_attribution.adapters.edl import (
    CUB_EDL_SCALE, FACE_EDL_SCALE, EvidentialNetwork, attach_cub_edl, load_cub_edl,
)
from submodular_attribution.adapters.face import IRESNETS, FaceScorer, IResNet, IResNetEDL, PrototypeHead, build_face_scorer, load_face_uncertainty
from submodular_attribution.common.errors import InputError
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.objective import edl_confidence

torch.set_num_threads(1)

# the published insightface IR-ResNet-100 EDL network, key → shape (a sample of every kind)
FACE_EDL_KEYS = {
    "conv1.weight": (64, 3, 3, 3), "bn1.running_var": (64,), "prelu.weight": (64,),
    "layer1.0.bn1.weight": (64,), "layer1.0.conv1.weight": (64, 64, 3, 3), "layer1.0.prelu.weight": (64,),
    "layer1.0.conv2.weight": (64, 64, 3, 3), "layer1.0.bn3.bias": (64,), "layer1.0.downsample.0.weight": (64, 64, 1, 1),
    "layer2.12.conv2.weight": (128, 128, 3, 3), "layer3.29.bn3.running_mean": (256,),
    "layer4.0.downsample.1.weight": (512,), "layer4.2.conv2.weight": (512, 512, 3, 3), "bn2.weight": (512,),
    "fc.weight": (512, 512 * 7 * 7), "fc.bias": (512,), "features.running_var": (512,),
}


def _hand_confidence(bias: list[float], scale: float) -> float:
    """1 − C/Σα with α = exp(clamp(scale·z, −10, 10)) + 1, computed term by term."""
    alphas = [math.exp(min(max(scale * b, -10.0), 10.0)) + 1.0 for b in bias]
    return 1.0 - len(bias) / sum(alphas)


@pytest.mark.parametrize("classes", [10177, 8631])
def test_face_edl_network_has_the_published_keys_and_shapes(classes):
    with torch.device("meta"):
        net = IResNetEDL(IRESNETS["iresnet100"], classes)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for key, shape in {**FACE_EDL_KEYS, "fc2.weight": (classes, 512), "fc2.bias": (classes,)}.items():
        assert shapes[key] == shape, key
    assert "layer2.13.conv1.weight" not in shapes and "layer3.29.conv1.weight" in shapes  # 3, 13, 30, 3 blocks


def test_cub_edl_network_is_torchvision_resnet101_with_200_classes():
    with torch.device("meta"):
        reference = torchvision.models.resnet101(num_classes=200)
    shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert shapes["fc.weight"] == (200, 2048) and shapes["layer3.22.conv3.weight"] == (1024, 256, 1, 1)


def _face_edl_file(path, bias, widths=(4, 8, 8, 8), prefix="module."):
    """A shallow IR-ResNet EDL file, saved as DataParallel does; fc2 is zero, so z = bias."""
    torch.manual_seed(0)
    net = IResNetEDL((1, 1, 1, 1), len(bias), widths=widths)
    with torch.no_grad():
        net.fc2.weight.zero_()
        net.fc2.bias.copy_(torch.tensor(bias))
    torch.save({f"{prefix}{k}": v for k, v in net.state_dict().items()}, path)
    return net


def test_face_edl_file_gives_the_published_confidence(tmp_path):
    bias = [0.0, math.log(2.0) / 5.0, 10.0]  # 5·z = 0, ln 2, 50 (clamped to 10)
    _face_edl_file(tmp_path / "edl.pth", bias)
    edl = load_face_uncertainty(tmp_path / "edl.pth")
    assert isinstance(edl, EvidentialNetwork) and edl.num_classes == 3 and edl.scale == FACE_EDL_SCALE == 5.0
    images = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        z = edl(images)
    torch.testing.assert_close(z, 5.0 * torch.tensor([bias, bias]))
    expected = 1.0 - 3.0 / (2.0 + 3.0 + math.exp(10.0) + 1.0)  # α = 1+1, 2+1, e^10+1
    assert expected == pytest.approx(_hand_confidence(bias, 5.0))
    torch.testing.assert_close(edl_confidence(z.double()), torch.full((2,), expected, dtype=torch.float64))


def test_face_scorer_runs_the_edl_network_on_the_images(tmp_path):
    net = _face_edl_file(tmp_path / "edl.pth", [0.0, 0.0, 0.0], prefix="")
    with torch.no_grad():
        net.fc2.weight.normal_()  # now z depends on the image
    torch.save(net.state_dict(), tmp_path / "edl.pth")
    torch.manual_seed(2)
    backbone = IResNet((1, 1, 1, 1), widths=(4, 8, 8, 8))
    scorer = FaceScorer(backbone, PrototypeHead(torch.randn(3, 512)), load_face_uncertainty(tmp_path / "edl.pth"))
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))  # resized to 112 by both
    with torch.inference_mode():
        out = scorer(images)
        resized = nn.functional.interpolate(images, size=(112, 112), mode="bilinear", antialias=True, align_corners=False)
        expected = 5.0 * net.eval()((resized - 0.5) / 0.5)
    torch.testing.assert_close(out.evidence_logits, expected, rtol=1e-5, atol=1e-5)


def test_build_face_scorer_loads_a_published_style_edl_file(tmp_path, monkeypatch):
    monkeypatch.setitem(face.IRESNETS, "iresnet_tiny", (1, 1, 1, 1))
    torch.manual_seed(4)
    torch.save(IResNet((1, 1, 1, 1)).state_dict(), tmp_path / "backbone.pth")
    torch.save(torch.randn(3, 512), tmp_path / "protos.pt")
    bias = [1.0, -1.0, 0.5]
    _face_edl_file(tmp_path / "edl.pth", bias)
    scorer = build_face_scorer("iresnet_tiny", tmp_path / "backbone.pth", prototypes=tmp_path / "protos.pt",
                               uncertainty_head=tmp_path / "edl.pth")
    with torch.inference_mode():
        out = scorer(torch.rand(1, 3, 112, 112))
    assert edl_confidence(out.evidence_logits.double()).item() == pytest.approx(_hand_confidence(bias, 5.0), rel=1e-6)
    _face_edl_file(tmp_path / "edl4.pth", [0.0] * 4)
    with pytest.raises(InputError, match=r"edl4\.pth: evidential head has 4 classes but .*protos\.pt has 3"):
        build_face_scorer("iresnet_tiny", tmp_path / "backbone.pth", prototypes=tmp_path / "protos.pt",
                          uncertainty_head=tmp_path / "edl4.pth")
    torch.save({"fc2.weight": torch.zeros(3, 512)}, tmp_path / "broken.pth")  # looks like neither kind
    with pytest.raises(InputError, match=r"broken\.pth"):
        load_face_uncertainty(tmp_path / "broken.pth")


def _cub_edl_file(path, bias):
    """torchvision resnet18 (the loader reads the depth from the keys; 101 as published)."""
    torch.manual_seed(5)
    net = torchvision.models.resnet18(num_classes=len(bias))
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.copy_(torch.tensor(bias))
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)


def test_cub_edl_gives_the_published_confidence_and_attaches_to_a_classifier(tmp_path):
    bias = [2.0, -3.0, 12.0]  # scale 1: evidence e², e⁻³, e¹⁰ (clamped)
    _cub_edl_file(tmp_path / "cub-edl.pth", bias)
    edl = load_cub_edl(tmp_path / "cub-edl.pth")
    assert edl.scale == CUB_EDL_SCALE == 1.0 and edl.input_size == 224 and edl.num_classes == 3
    torch.manual_seed(6)
    classifier = ClassifierScorer(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)), num_classes=3)
    scorer = attach_cub_edl(classifier, tmp_path / "cub-edl.pth")
    images = torch.rand(2, 3, 8, 8)
    with torch.inference_mode():
        out, plain = scorer(images), classifier(images)
    torch.testing.assert_close(out.probs, plain.probs)
    expected = 1.0 - 3.0 / (math.exp(2.0) + math.exp(-3.0) + math.exp(10.0) + 3.0)
    assert expected == pytest.approx(_hand_confidence(bias, 1.0))
    torch.testing.assert_close(edl_confidence(out.evidence_logits.double()), torch.full((2,), expected, dtype=torch.float64))
    assert scorer.num_classes == 3 and scorer.device == classifier.device  # the rest is the classifier's
    assert attach_cub_edl(classifier, None) is classifier
    four = ClassifierScorer(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)), num_classes=4)
    with pytest.raises(InputError, match=r"cub-edl\.pth: evidential network has 3 classes but the model has 4"):
        attach_cub_edl(four, tmp_path / "cub-edl.pth")
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "nofc.pth")
    with pytest.raises(InputError, match=r"nofc\.pth: not an evidential network"):
        load_cub_edl(tmp_path / "nofc.pth")


def test_cub_task_offers_the_evidential_network_and_attaches_it(tmp_path):
    from submodular_attribution.families import classifier_model
    from submodular_attribution.frontend import base_parser
    from submodular_attribution.tasks import get_model_task

    def flags(task):
        return {a for action in base_parser(task, "p", "d")._actions for a in action.option_strings}

    assert "--uncertainty-head" in flags(get_model_task("cub"))
    assert "--uncertainty-head" not in flags(get_model_task("imagenet_classifier"))

    torch.manual_seed(7)
    net = torchvision.models.squeezenet1_1(num_classes=3)
    torch.save(net.state_dict(), tmp_path / "squeeze.pth")
    _cub_edl_file(tmp_path / "cub-edl.pth", [2.0, -3.0, 12.0])
    task = classifier_model(name="t", description="d", arch="squeezenet1_1", checkpoint="x", num_classes=3,
                            uncertainty=True)
    args = base_parser(task, "p", "d").parse_args(
        ["--checkpoint", str(tmp_path / "squeeze.pth"), "--uncertainty-head", str(tmp_path / "cub-edl.pth"),
         "--input-size", "64", "64"])
    scorer = task.build_scorer(args, torch.device("cpu"), False)
    with torch.inference_mode():
        out = scorer(torch.rand(2, 3, 64, 64))
    expected = 1.0 - 3.0 / (math.exp(2.0) + math.exp(-3.0) + math.exp(10.0) + 3.0)
    torch.testing.assert_close(edl_confidence(out.evidence_logits.double()), torch.full((2,), expected, dtype=torch.float64))
    args.uncertainty_head = None  # without the flag: the plain classifier
    assert getattr(task.build_scorer(args, torch.device("cpu"), False)(torch.rand(1, 3, 64, 64)), "evidence_logits", None) is None
