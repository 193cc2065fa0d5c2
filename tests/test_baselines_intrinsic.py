"""The architectures' own explanations (baseline_attribution/intrinsic.py) on small random
B-cos and BagNet networks: B-cos contributions sum to the logit minus the logit bias (exact
dynamic linearity), BagNet patch logits average to the logit, the dense map is each pixel's
window run alone, and other models are refused."""
from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baseline_attribution import REGISTRY, AttributionModel, attribute, attribution_model
from baseline_attribution.intrinsic import bagnet_patch_map, bcos_contributions, upsample_patch_map
from submodular_attribution.adapters.classifier import build_classifier_scorer
from submodular_attribution.archs import REGISTRY as ARCHS
from submodular_attribution.archs import BcosConv2d, bagnet33, bcos_resnet50, x_resnet50
from submodular_attribution.common.errors import InputError

WIDTH = 8  # stem width of the test networks (64 published)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights, BN statistics measured on one random batch (so activations stay O(1))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / p[0].numel()))
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.rand(p.shape, generator=g) * 0.4 - 0.2)
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in norms:
            m.momentum = 1.0
        net.train()(torch.rand(4, 3, 64, 64, generator=g))
        for m in norms:
            m.momentum = 0.1
    return net.eval()


def as_model(net: nn.Module, batch_size: int = 16) -> AttributionModel:
    """The network scoring its input directly (identity normalisation)."""
    return AttributionModel(logits=net, num_classes=net.num_classes, device=torch.device("cpu"), module=net,
                            batch_size=batch_size)


@pytest.fixture(scope="module")
def bcos_net():
    return randomize(bcos_resnet50(6, width=WIDTH)).double()


@pytest.fixture(scope="module")
def bagnet_net():
    return randomize(bagnet33(6, width=WIDTH)).double()


def images(n, h, w, seed=0, dtype=torch.float64):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_both_are_registered():
    assert {"bcos", "bagnet"} <= set(REGISTRY)


# ---------------------------------------------------------------------------------------- B-cos

def test_bcos_map_sums_to_the_logit_minus_the_logit_bias(bcos_net):
    x, targets = images(3, 48, 40), torch.tensor([0, 5, 2])
    model = as_model(bcos_net)
    maps = attribute("bcos", model, x, targets)
    with torch.no_grad():
        logits = bcos_net(x).gather(1, targets[:, None]).squeeze(1)
    assert maps.shape == (3, 48, 40)
    bias = math.log(1 / 5)
    assert (logits - bias).abs().min() > 1e-3  # a real, non-trivial logit
    assert torch.allclose(maps.sum(dim=(1, 2)), logits - bias, rtol=1e-10, atol=1e-12)


def test_bcos_map_is_the_six_channel_sum_of_dynamic_linear_contributions(bcos_net):
    """W(x) = ∂logit/∂x̃ with the dynamic scalings frozen: contributions W(x) ⊙ x̃, x̃ = [x, 1 − x]."""
    x, targets = images(1, 32, 32, seed=1), torch.tensor([4])
    model = as_model(bcos_net)
    contributions = bcos_contributions(model, x, targets)
    assert contributions.shape == (1, 6, 32, 32)
    x6 = torch.cat([x, 1 - x], dim=1).requires_grad_(True)
    with bcos_net.explanation_mode():
        (w,) = torch.autograd.grad(bcos_net.forward_encoded(x6)[0, 4], x6)
    assert torch.allclose(contributions, w * x6.detach(), rtol=1e-12, atol=1e-14)
    assert torch.allclose(attribute("bcos", model, x, targets), contributions.sum(1), rtol=1e-12, atol=1e-14)
    # the gradient without explanation mode is another map (the scalings' own gradient adds in)
    x6.grad = None
    (plain,) = torch.autograd.grad(bcos_net.forward_encoded(x6)[0, 4], x6)
    assert not torch.allclose(plain, w, rtol=1e-3)
    assert not any(m.detach for m in bcos_net.modules() if isinstance(m, BcosConv2d))  # mode restored


def test_bcos_does_not_depend_on_the_batch_size(bcos_net):
    x, targets = images(4, 32, 32, seed=2), torch.tensor([1, 1, 3, 0])
    together = attribute("bcos", as_model(bcos_net, batch_size=4), x, targets)
    alone = attribute("bcos", as_model(bcos_net, batch_size=1), x, targets)
    assert torch.allclose(together, alone, rtol=1e-10, atol=1e-12)


def test_bcos_through_the_classifier_scorer(tmp_path, monkeypatch):
    """Via the adapter (mean 0, std 1: the image in [0, 1] is what the net encodes), float32."""
    net = randomize(bcos_resnet50(4, width=WIDTH))
    path = tmp_path / "bcos.pth.tar"
    torch.save({"state_dict": {"module.model." + k: v for k, v in net.state_dict().items()}, "epoch": 30}, path)
    spec = ARCHS["bcos_resnet50"]
    monkeypatch.setitem(ARCHS, "bcos_resnet50", dataclasses.replace(spec, build=functools.partial(spec.build, width=WIDTH)))
    scorer = build_classifier_scorer("bcos_resnet50", path, 4)
    model = attribution_model(scorer)
    x = images(2, 32, 32, seed=3, dtype=torch.float32)
    maps = attribute("bcos", model, x, [2, 3])
    with torch.no_grad():
        logits = scorer.logits(x)[[0, 1], [2, 3]]
    assert torch.allclose(maps.sum(dim=(1, 2)), logits - math.log(1 / 3), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------- BagNet

def test_bagnet_patch_logits_average_to_the_logit(bagnet_net):
    x, targets = images(2, 64, 72, seed=4), torch.tensor([3, 1])
    model = as_model(bagnet_net)
    coarse = bagnet_patch_map(model, x, targets)
    assert coarse.shape == (2, 4, 5)  # ⌊(64 − 33)/8⌋ + 1, ⌊(72 − 33)/8⌋ + 1
    with torch.no_grad():
        logits = bagnet_net(x).gather(1, targets[:, None]).squeeze(1)
    bias = bagnet_net.fc.bias.detach()[targets]
    # Σ_ij (p_ij − b_t) = h·w·(logit_t − b_t): the map sums to the logit up to the bias term
    assert torch.allclose((coarse - bias[:, None, None]).sum(dim=(1, 2)), 20 * (logits - bias), rtol=1e-10)
    assert torch.allclose(coarse.mean(dim=(1, 2)), logits, rtol=1e-10, atol=1e-12)


def test_bagnet_dense_map_is_each_pixels_window_run_alone(bagnet_net):
    x, targets = images(2, 40, 36, seed=5), torch.tensor([0, 5])
    maps = attribute("bagnet", as_model(bagnet_net, batch_size=1), x, targets)
    assert maps.shape == (2, 40, 36)
    padded = F.pad(x, (16, 16, 16, 16))
    with torch.no_grad():
        for b, r, c in [(0, 0, 0), (1, 39, 35), (0, 17, 3), (1, 8, 24)]:
            alone = bagnet_net(padded[b:b + 1, :, r:r + 33, c:c + 33])[0, targets[b]]
            assert float(maps[b, r, c]) == pytest.approx(float(alone), rel=1e-10, abs=1e-10)


def test_bagnet_coarse_map_is_upsampled_from_the_window_centres(bagnet_net):
    x, targets = images(1, 64, 64, seed=6), torch.tensor([2])
    model = as_model(bagnet_net)
    coarse = bagnet_patch_map(model, x, targets)[0]  # 4×4, centres at 16, 24, 32, 40
    up = attribute("bagnet", model, x, targets, dense=False)[0]
    assert up.shape == (64, 64)
    for i, ci in enumerate((16, 24, 32, 40)):
        for j, cj in enumerate((16, 24, 32, 40)):
            assert float(up[ci, cj]) == pytest.approx(float(coarse[i, j]), rel=1e-6, abs=1e-9)
    assert float(up[20, 16]) == pytest.approx(float(coarse[0:2, 0].mean()), rel=1e-6)  # halfway
    assert torch.allclose(up[:16, 16], coarse[0, 0].expand(16), rtol=1e-6)  # beyond: nearest centre
    assert torch.allclose(up[63, 41:], coarse[3, 3].expand(23), rtol=1e-6)


def test_bagnet_through_the_classifier_scorer_explains_the_normalised_input(tmp_path, monkeypatch):
    """Via the adapter (ImageNet normalisation inside the scorer), float32: the patch logits of the
    normalised image average to the scorer's logit; the dense map pads the normalised input."""
    net = randomize(bagnet33(4, width=WIDTH))
    path = tmp_path / "bagnet33.pth.tar"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}, "epoch": 30}, path)
    spec = ARCHS["bagnet33"]
    monkeypatch.setitem(ARCHS, "bagnet33", dataclasses.replace(spec, build=functools.partial(spec.build, width=WIDTH)))
    scorer = build_classifier_scorer("bagnet33", path, 4)
    model = attribution_model(scorer)
    x = images(1, 40, 40, seed=7, dtype=torch.float32)
    with torch.no_grad():
        logit = scorer.logits(x)[0, 1]
        normalised = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
        window = scorer.net(F.pad(normalised, (16, 16, 16, 16))[:, :, 5:38, 9:42])[0, 1]
    assert float(bagnet_patch_map(model, x, torch.tensor([1])).mean()) == pytest.approx(float(logit), rel=1e-5)
    assert float(attribute("bagnet", model, x, [1])[0, 5, 9]) == pytest.approx(float(window), rel=1e-4, abs=1e-5)


def test_upsample_patch_map_of_a_single_patch_is_constant():
    up = upsample_patch_map(torch.tensor([[[2.5]]]), (33, 40), 33, 8)
    assert torch.equal(up, torch.full((1, 33, 40), 2.5))


# --------------------------------------------------------------------------------- other models

@pytest.mark.parametrize("method,needs", [("bcos", "B-cos network"), ("bagnet", "BagNet")])
def test_other_models_are_refused_with_one_line(method, needs):
    other = x_resnet50(3, width=WIDTH).eval()
    x = images(1, 40, 40, dtype=torch.float32)
    with pytest.raises(InputError, match=f"{method}: needs a {needs}.*, got XResNet; use another attribution method"):
        attribute(method, as_model(other), x, [0])
    no_module = AttributionModel(logits=other, num_classes=3, device=torch.device("cpu"))
    with pytest.raises(InputError, match="without a network"):
        attribute(method, no_module, x, [0])
