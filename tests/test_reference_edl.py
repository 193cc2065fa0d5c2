"""Our evidential (EDL) networks against the original SMDL-Attribution code's own outputs.

``fixtures/reference/edl.npz`` was made by ``fixtures/reference/make_edl.py`` from the original
``models/iresnet_edl.py`` + ``FaceSubModularExplanation`` (face, 10,177 classes) and torchvision's
ResNet-101 + ``CubSubModularExplanationV2`` (CUB, 200 classes) with seeded weights
(``seeded.py``; the face ``fc2.weight`` then × ``face_fc2_gain``) on two seeded uint8 RGB
images (noise in 4×4 blocks) each at the input size. Here the same weights go into a file laid out as published
(face keys with DataParallel's ``module.``, CUB keys plain), our loader reads it, and the images
go through our preprocessing (pixel/255 in, ``EvidentialNetwork`` normalises) and network.

Tolerances (float32 on both sides): scaled logits s·z within 1e-4 relative + 1e-4·max|s·z|
absolute; evidence exp(clamp(s·z, −10, 10)) within 2.5e-3 relative (what that error on s·z
allows); uncertainty u = C/Σ(evidence + 1) within 1e-4 relative. Seen here: bit-identical up to
the float32 product s·z (≤ 5e-7; u ≤ 1e-7 relative); a channels-last input (another conv
algorithm) moved the face s·z by 9.5e-5 (8e-6 of its max), its evidence by 9.5e-5 and u by 2.5e-6
relative, well inside.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from fixtures.reference.seeded import fill_torch_state
from submodular_attribution.adapters.edl import EvidentialNetwork, load_cub_edl
from submodular_attribution.adapters.face import IRESNETS, IResNetEDL, load_face_uncertainty
from submodular_attribution.objective import edl_confidence

FIXTURE = Path(__file__).parent / "fixtures" / "reference" / "edl.npz"

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def _layout(ref, name):
    ranks, dims = ref[f"{name}_shape_ranks"], ref[f"{name}_shapes"].tolist()
    ends = np.cumsum(ranks).tolist()
    return {str(k): tuple(dims[e - r:e]) for k, r, e in zip(ref[f"{name}_keys"], ranks.tolist(), ends)}


def _published_file(net, ref, name, path, prefix, fc2_gain=1.0):
    """Seed ``net`` as the generator seeded the reference (``fc2.weight`` × ``fc2_gain``), check
    it has the reference's layout, save its state dict with ``prefix`` on every key."""
    fill_torch_state(net, int(ref["weight_seed"]))
    if fc2_gain != 1.0:
        with torch.no_grad():
            net.fc2.weight.mul_(fc2_gain)  # in float32, as the generator did
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == _layout(ref, name)
    torch.save({prefix + k: v for k, v in net.state_dict().items()}, path)


def _compare(edl, ref, name):
    assert isinstance(edl, EvidentialNetwork)
    assert edl.scale == float(ref[f"{name}_scale"]) and edl.num_classes == int(ref[f"{name}_num_classes"])
    assert edl.input_size == int(ref[f"{name}_input_size"])
    # B×3×H×W RGB in [0, 1], contiguous as ToTensor makes it (a channels-last view changes the rounding)
    images = torch.from_numpy(ref[f"{name}_images"]).permute(0, 3, 1, 2).contiguous().float() / 255
    with torch.inference_mode():
        scaled = edl(images).double()
    expected = float(ref[f"{name}_scale"]) * torch.from_numpy(ref[f"{name}_logits"]).double()
    torch.testing.assert_close(scaled, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    evidence = torch.exp(torch.clamp(scaled, -10.0, 10.0))  # the evidence inside edl_confidence
    torch.testing.assert_close(evidence, torch.from_numpy(ref[f"{name}_evidence"]).double(), rtol=2.5e-3, atol=0.0)
    uncertainty = 1.0 - edl_confidence(scaled)
    torch.testing.assert_close(uncertainty, torch.from_numpy(ref[f"{name}_uncertainty"]).double(), rtol=1e-4, atol=0.0)


def test_reference_edl_iresnet100_celeba(ref, tmp_path):
    with torch.device("meta"):  # no initialisation: every value is seeded below
        net = IResNetEDL(IRESNETS["iresnet100"], int(ref["face_num_classes"]))
    net = net.to_empty(device="cpu")
    _published_file(net, ref, "face", tmp_path / "edl-101-10177.pth", prefix="module.",
                    fc2_gain=float(ref["face_fc2_gain"]))
    del net
    _compare(load_face_uncertainty(tmp_path / "edl-101-10177.pth"), ref, "face")


def test_reference_edl_cub_resnet101(ref, tmp_path):
    with torch.device("meta"):
        net = torchvision.models.resnet101(weights=None, num_classes=int(ref["cub_num_classes"]))
    net = net.to_empty(device="cpu")
    _published_file(net, ref, "cub", tmp_path / "cub-resnet101-edl.pth", prefix="")
    del net
    _compare(load_cub_edl(tmp_path / "cub-resnet101-edl.pth"), ref, "cub")
