"""Our five attribution-benchmark architectures against the benchmark's own model code.

``fixtures/reference/idsds_archs.npz`` holds what github.com/visinf/idsds at 8e84200 computes
(made by ``fixtures/reference/make_idsds_archs.py``, whose docstring says how): per model the
published state-dict layout, and the logits of its evaluation wrapper (``StandardModel`` /
``BcosModel``) in eval mode, in float64, for two seeded 64×64 images, with every weight set to
``seeded_value(key, shape, seed)`` (B-cos: running variances scaled by the stored factors).

Each test takes the path of a user's published checkpoint: our net's state dict, filled with the
same seeded values, is saved as ``{"state_dict": …}`` with DataParallel's ``module.`` prefix
(``module.model.`` for B-cos) under the published file name, and loaded by
``build_classifier_scorer`` (strict ``load_state``, prefix stripped). The stored RGB [0, 1]
images go through ``ClassifierScorer.model_input``, our float32 normalisation (ImageNet
mean/std; B-cos: none, the net adds the inverse channels itself), which the reference applied
with ``torchvision.transforms.Normalize`` in float32 (mean/std checked equal below); then, as
the reference, the loaded net runs in float64 (``.double()`` converts the float32 weights
exactly). In float32 the deep B-cos net amplifies rounding to ±7e-4 in its logits (identical
code on both sides gives that), more than a patch-norm eps of 1e-5 instead of 1e-6 changes them
(2e-4); in float64 the two are 1e-12 and 2e-4 apart.

Tolerance: |ours − reference| ≤ 1e-8·s + 1e-10·|reference| elementwise, s = the largest distance
of a reference logit from its image's mean logit (1.9, 4.0, 0.043, 10.8, 7.5 for the five); the
deviations seen are 0 to 2e-12.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.reference.seeded import fill_torch_state, seeded_value
from submodular_attribution.adapters.classifier import build_classifier_scorer
from submodular_attribution.archs import REGISTRY

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "reference" / "idsds_archs.npz"
RTOL, SPREAD_TOL = 1e-10, 1e-8


@pytest.fixture(scope="module")
def stored() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def parse_layout(lines: np.ndarray) -> dict[str, tuple[int, ...]]:
    """``"key:d0,d1"`` lines → {key: shape}."""
    out = {}
    for line in lines.tolist():
        key, _, dims = line.rpartition(":")
        out[key] = tuple(int(d) for d in dims.split(",") if d)
    return out


def write_published_checkpoint(name: str, stored: dict, path: Path) -> None:
    """Our net with the seeded weights, saved as the benchmark's train.py saves it."""
    seed, prefix = int(stored[f"{name}__seed"]), str(stored[f"{name}__prefix"])
    with torch.device("meta"):  # no random init: every tensor is overwritten
        net = REGISTRY[name].build(1000)
    net = net.to_empty(device="cpu")
    fill_torch_state(net, seed)
    state = net.state_dict()
    with torch.no_grad():
        for key, factor in zip(stored[f"{name}__rescale_keys"].tolist(), stored[f"{name}__rescale"].tolist()):
            value = seeded_value(key, tuple(state[key].shape), seed) * factor  # float64, then cast, as the generator
            state[key].copy_(torch.from_numpy(value).to(state[key].dtype))
    torch.save({"epoch": 30, "state_dict": {prefix + k: v for k, v in state.items()}}, path)


def check_against_reference(name: str, stored: dict, tmp_path: Path) -> float:
    """Load our net through the published-checkpoint path and compare; returns the largest deviation."""
    path = tmp_path / REGISTRY[name].checkpoint
    write_published_checkpoint(name, stored, path)
    scorer = build_classifier_scorer(name, path, 1000)
    path.unlink()  # up to 550 MB (x_vgg16)

    layout = {k: tuple(v.shape) for k, v in scorer.net.state_dict().items()}
    assert layout == parse_layout(stored[f"{name}__layout"])
    assert REGISTRY[name].mean == tuple(stored[f"{name}__mean"].tolist())
    assert REGISTRY[name].std == tuple(stored[f"{name}__std"].tolist())

    images = torch.from_numpy(stored["images"])
    with torch.no_grad():
        ours = scorer.net.double()(scorer.model_input(images).double()).numpy()
    reference = stored[f"{name}__logits"]
    spread = float(np.abs(reference - reference.mean(axis=1, keepdims=True)).max())
    tolerance = SPREAD_TOL * spread + RTOL * np.abs(reference)
    # the fixture discriminates: the two images' logits differ far beyond the tolerance
    assert np.abs(reference[0] - reference[1]).max() > 100 * tolerance.max()
    deviation = np.abs(ours - reference)
    assert ours.shape == reference.shape == (2, 1000)
    assert (deviation <= tolerance).all(), (
        f"{name}: largest deviation {deviation.max():.3g} (tolerance there {tolerance.flat[deviation.argmax()]:.3g}), "
        f"logit spread {spread:.3g}")
    return float(deviation.max())


@pytest.mark.reference
def test_reference_fixup_resnet50(stored, tmp_path):
    check_against_reference("fixup_resnet50", stored, tmp_path)


@pytest.mark.reference
def test_reference_x_resnet50(stored, tmp_path):
    check_against_reference("x_resnet50", stored, tmp_path)


@pytest.mark.reference
def test_reference_x_vgg16(stored, tmp_path):
    check_against_reference("x_vgg16", stored, tmp_path)


@pytest.mark.reference
def test_reference_bcos_resnet50(stored, tmp_path):
    check_against_reference("bcos_resnet50", stored, tmp_path)


@pytest.mark.reference
def test_reference_bagnet33(stored, tmp_path):
    check_against_reference("bagnet33", stored, tmp_path)
