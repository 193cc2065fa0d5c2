"""The attribution benchmark's architectures (submodular_attribution/archs): the published
state-dict layout, the published checkpoint format through the classifier adapter, and the
architecture facts each paper states (no BatchNorm / no bias, homogeneity and IxG = IG for
X-DNNs, BagNet's 33-px receptive field, B-cos layers as dynamic linear maps).

Small widths (stem width 8 instead of 64) keep the forward passes fast; the full-size layouts are
checked on the meta device (no memory, no compute)."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from submodular_attribution import archs
from submodular_attribution.adapters.classifier import build_classifier, build_classifier_scorer
from submodular_attribution.archs import REGISTRY
from submodular_attribution.archs.bcos import BcosConv2d, UncenteredBatchNorm2d
from submodular_attribution.common.errors import InputError

NAMES = ["fixup_resnet50", "x_resnet50", "x_vgg16", "bcos_resnet50", "bagnet33", "bcos_resnet18", "bagnet9"]

# sha256[:16] of the sorted "key:shape" lines of each model's state dict (1000 classes), and the
# number of keys, computed by running the benchmark's own model code (github.com/visinf/idsds at
# 8e84200: models/xdnns/xfixup_resnet.py, models/xdnns/xvgg.py, models/bagnets/pytorchnet.py,
# models/bcos_v2/bcos_resnet.py inside its BcosModel wrapper) wrapped in DataParallel as its
# train.py does, with the ``module.`` / ``module.model.`` prefixes removed.
PUBLISHED_LAYOUT = {
    "fixup_resnet50": ("d7189ec24718391e", 169),
    "x_resnet50": ("1c9daa481fbbeab0", 54),
    "x_vgg16": ("c507cda3ba58e7dc", 16),
    "bcos_resnet50": ("7bdc1e9e5743ecd7", 266),
    "bagnet33": ("2ef891db6093ac1d", 321),
    "bcos_resnet18": ("696507efa811863c", 101),  # their bcos_resnet.resnet18, bagnets' bagnet9
    "bagnet9": ("2bf47e514c2a4418", 321),
}
# what train.py's DataParallel (and, for B-cos, the BcosModel wrapper) put before every key
PUBLISHED_PREFIX = {name: "module." for name in NAMES} | {"bcos_resnet50": "module.model.", "bcos_resnet18": "module.model."}
SMALL = 8  # stem width of the test models


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def layout_hash(state: dict) -> tuple[str, int]:
    lines = sorted(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16], len(lines)


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random non-zero weights everywhere (Fixup/X-DNN initialisation zeroes the last layers,
    which would make every output 0), BN statistics away from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / p[0].numel()))
            elif name.endswith("scale") or name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.rand(p.shape, generator=g) * 0.4 - 0.2)
        for name, b in net.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.rand(b.shape, generator=g) * 0.4 - 0.2)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if norms:  # BN statistics of real activations, so that deep nets neither vanish nor explode
        for m in norms:
            m.momentum = 1.0
        with torch.no_grad():
            net.train()(torch.rand(4, 3, 64, 64, generator=g))
        for m in norms:
            m.momentum = 0.1
    return net.eval()


def small(name: str, num_classes: int = 5, seed: int = 0) -> nn.Module:
    return randomize(REGISTRY[name].build(num_classes, width=SMALL), seed)


@pytest.fixture
def small_registry(monkeypatch):
    """The registry's builders at the test width (the adapter looks names up in this dict)."""
    for name in NAMES:
        spec = REGISTRY[name]
        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(spec, build=functools.partial(spec.build, width=SMALL)))


def save_published(net: nn.Module, path, prefix: str) -> None:
    """The benchmark's train.py checkpoint: DataParallel keys, optimiser and scheduler state and
    the argparse namespace."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)
    torch.save({"epoch": 30, "state_dict": {prefix + k: v for k, v in net.state_dict().items()},
                "best_acc1": torch.tensor(75.9), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "args": argparse.Namespace(model="x", lr=0.001, pretrained=True, number_classes=1000)}, path)


def normalise(images: torch.Tensor, name: str) -> torch.Tensor:
    spec = REGISTRY[name]
    return (images - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)


# ------------------------------------------------------------------------------ published layout

@pytest.mark.parametrize("name", NAMES)
def test_full_size_state_dict_matches_the_published_code(name):
    with torch.device("meta"):
        net = REGISTRY[name].build(1000)
    assert layout_hash(net.state_dict()) == PUBLISHED_LAYOUT[name]


def test_layout_hash_notices_a_renamed_key():
    with torch.device("meta"):
        state = REGISTRY["x_resnet50"].build(1000).state_dict()
    state["classifier.weight"] = state.pop("fc.weight")
    assert layout_hash(state) != PUBLISHED_LAYOUT["x_resnet50"]


@pytest.mark.parametrize("name", NAMES)
def test_published_checkpoint_round_trips_through_the_adapter(name, small_registry, tmp_path):
    net, prep = build_classifier(name, 5)
    randomize(net)
    assert prep["input_size"] == (224, 224)
    path = tmp_path / (REGISTRY[name].checkpoint or f"{name}.pth.tar")
    if REGISTRY[name].checkpoint:
        assert path.name.endswith("_imagenet1000_lr0.001_epochs30_step10_checkpoint_best.pth.tar")
    save_published(net, path, PUBLISHED_PREFIX[name])
    scorer = build_classifier_scorer(name, path, 5)
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(normalise(images, name))
        got = scorer.logits(images)
        out = scorer(images)
    assert got.shape == (2, 5)
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(expected[0], expected[1])  # the outputs depend on the image
    assert torch.allclose(out.probs, expected.softmax(-1), atol=1e-6)
    assert out.embeddings is not None and out.embeddings.shape[0] == 2  # the head was found


def test_bcos_takes_unnormalised_rgb_and_the_others_imagenet_statistics():
    assert REGISTRY["bcos_resnet50"].mean == (0.0, 0.0, 0.0) and REGISTRY["bcos_resnet50"].std == (1.0, 1.0, 1.0)
    assert REGISTRY["bcos_resnet18"].mean == (0.0, 0.0, 0.0)
    for name in ["fixup_resnet50", "x_resnet50", "x_vgg16", "bagnet33", "bagnet9"]:
        assert REGISTRY[name].mean == (0.485, 0.456, 0.406)


def test_a_checkpoint_of_another_architecture_is_a_one_line_error(small_registry, tmp_path):
    path = tmp_path / "w.pth.tar"
    save_published(build_classifier("x_resnet50", 5)[0], path, "module.")
    with pytest.raises(InputError, match=r"w\.pth\.tar: weights do not fit FixupResNet \(missing keys: bias1"):
        build_classifier_scorer("fixup_resnet50", path, 5)


def test_names_sizes_and_classes_are_checked():
    with pytest.raises(InputError, match="did you mean: x_resnet50"):
        build_classifier("x_resnet5", 5)
    with pytest.raises(InputError, match="bagnet33: input size 32×32 is below its minimum 33×33"):
        build_classifier("bagnet33", 5, input_size=(32, 32))
    with pytest.raises(InputError, match="at least 2 classes"):
        build_classifier("bcos_resnet50", 1)


# ------------------------------------------------------------------------ architecture facts

def _full(name):
    with torch.device("meta"):
        return REGISTRY[name].build(1000)


@pytest.mark.parametrize("name", ["x_resnet50", "x_vgg16"])
def test_x_nets_have_no_batchnorm_and_no_bias(name):
    net = _full(name)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert not [k for k in net.state_dict() if "bias" in k]
    assert all(m.bias is None for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_fixup_has_no_batchnorm_and_only_scalar_biases_and_multipliers():
    net = _full("fixup_resnet50")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv2d))
    scalars = [k for k, v in net.state_dict().items() if v.shape == (1,)]
    assert len(scalars) == 16 * 7 + 2  # bias1a/1b/2a/2b/3a/3b + scale per bottleneck; bias1, bias2
    assert net.fc.bias is not None


def test_fixup_initialisation_zeroes_each_branch_end_and_the_classifier():
    net = archs.fixup_resnet50(10, width=SMALL)
    assert all(float(b.conv3.weight.detach().abs().sum()) == 0 for layer in (net.layer1, net.layer4) for b in layer)
    assert float(net.fc.weight.detach().abs().sum()) == 0 and float(net.layer1[0].conv1.weight.detach().abs().sum()) > 0
    # with every branch zero, each block is relu(shortcut): the net's output is exactly 0
    assert torch.equal(net(torch.rand(1, 3, 64, 64)), torch.zeros(1, 10))


def test_bcos_is_built_of_bcos_convolutions_and_uncentred_bias_free_batchnorm():
    net = _full("bcos_resnet50")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, BcosConv2d) and m.bias is None for m in convs)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(isinstance(m, UncenteredBatchNorm2d) and m.bias is None for m in norms)
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in net.modules())
    assert net.conv1.in_channels == 6 and net.fc.kernel_size == (1, 1)
    assert net.logit_bias == pytest.approx(math.log(1 / 999))


@pytest.mark.parametrize("name", ["x_resnet50", "x_vgg16"])
def test_x_nets_are_nonnegatively_homogeneous(name):
    net = small(name).double()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
        assert out.abs().max() > 1e-3
        for alpha in (0.25, 3.0):
            assert torch.allclose(net(alpha * x), alpha * out, rtol=1e-10, atol=1e-12)


def test_fixup_with_its_scalar_biases_is_not_homogeneous():
    net = small("fixup_resnet50").double()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(net(3 * x), 3 * net(x), rtol=1e-3)


@pytest.mark.parametrize("name", ["x_resnet50", "x_vgg16", "fixup_resnet50"])
def test_input_x_gradient_equals_integrated_gradients_exactly_for_x_nets(name):
    from captum.attr import InputXGradient, IntegratedGradients

    net = small(name).double()
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    target = torch.tensor([1, 3])
    ixg = InputXGradient(net).attribute(x, target=target)
    ig = IntegratedGradients(net).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=8,
                                            method="riemann_right")
    assert ixg.abs().sum() > 0
    if name == "fixup_resnet50":  # the negative control: biases break the identity
        assert not torch.allclose(ixg, ig, rtol=1e-3, atol=1e-6)
    else:
        assert torch.allclose(ixg, ig, rtol=1e-9, atol=1e-12)


def test_bagnet33_receptive_field_is_33_pixels():
    net = small("bagnet33").double()
    assert (net.receptive_field, net.patch_stride) == (33, 8)
    x = torch.randn(1, 3, 72, 72, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    feats = net.features(x)
    assert feats.shape[2:] == ((72 - 33) // 8 + 1,) * 2  # 5×5 locations
    i, j = 2, 1
    (grad,) = torch.autograd.grad(feats[0, :, i, j].sum(), x)
    rows, cols = torch.nonzero(grad[0].abs().sum(0), as_tuple=True)
    assert (int(rows.min()), int(rows.max())) == (8 * i, 8 * i + 32)
    assert (int(cols.min()), int(cols.max())) == (8 * j, 8 * j + 32)


def test_bagnet9_receptive_field_is_9_pixels():
    net = small("bagnet9").double()
    assert (net.receptive_field, net.patch_stride) == (9, 8)
    x = torch.randn(1, 3, 40, 40, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    feats = net.features(x)
    (grad,) = torch.autograd.grad(feats[0, :, 3, 2].sum(), x)
    rows, cols = torch.nonzero(grad[0].abs().sum(0), as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (24, 32, 16, 24)


def test_bagnet_logits_are_the_mean_patch_logits():
    net = small("bagnet33").double()
    x = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        patches = net.patch_logits(x)
        assert patches.shape == (2, 5, 4, 6)
        assert torch.allclose(patches.mean(dim=(2, 3)), net(x), rtol=1e-12, atol=1e-12)


def test_bagnet_dense_map_is_each_pixels_own_window_run_alone():
    """The BagNet code's heatmap: zero-pad by 16, run the net on the 33×33 window at each pixel."""
    net = small("bagnet33").double()
    x = torch.randn(1, 3, 41, 37, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    target = torch.tensor([2])
    with torch.no_grad():
        dense = net.dense_patch_logits(x, target)
        padded = F.pad(x, (16, 16, 16, 16))
        assert dense.shape == (1, 41, 37)
        for r, c in [(0, 0), (40, 36), (7, 9), (8, 8), (23, 5), (15, 30)]:
            alone = net(padded[:, :, r:r + 33, c:c + 33])[0, 2]
            assert float(dense[0, r, c]) == pytest.approx(float(alone), rel=1e-10, abs=1e-10)


def _patch_rows(x, kernel, stride, padding):
    """B×L×(C·k·k) input patches, the order of conv weights flattened per output channel."""
    return F.unfold(x, kernel, padding=padding, stride=stride).transpose(1, 2)


def test_bcos_convolution_is_the_cosine_scaled_linear_map():
    torch.manual_seed(0)
    conv = BcosConv2d(4, 3, 3, stride=2, padding=1).double()
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    w_hat = conv.weight.reshape(3, -1) / conv.weight.reshape(3, -1).norm(dim=1, keepdim=True)
    patches = _patch_rows(x, 3, 2, 1)  # B×16×36
    lin = patches @ w_hat.T  # ŵᵀx_p
    norms = (patches.pow(2).sum(-1, keepdim=True) + 1e-6).sqrt()
    expected = (lin.abs() / norms * lin).transpose(1, 2).reshape(2, 3, 4, 4)
    assert torch.allclose(conv(x), expected, rtol=1e-12, atol=1e-12)


def test_bcos_convolution_in_explanation_mode_has_gradient_w_of_x():
    """Explanation mode: ∂out/∂x = W(x) = s(x)·ŵ (the dynamic linear map), and out = W(x)·x."""
    torch.manual_seed(1)
    net = nn.Module()
    net.conv = BcosConv2d(2, 3, 3).double()  # a 3×3 input: one output position
    weight = net.conv.weight.detach().reshape(3, -1)
    w_hat = weight / weight.norm(dim=1, keepdim=True)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    flat = x.detach().reshape(-1)
    scaling = (w_hat @ flat).abs() / (flat.pow(2).sum() + 1e-6).sqrt()  # s(x), one per output channel
    for detach in (True, False):
        net.conv.detach = detach
        out = net.conv(x).reshape(3)
        for k in range(3):
            (grad,) = torch.autograd.grad(out[k], x, retain_graph=True)
            dynamic = (scaling[k] * w_hat[k]).reshape(2, 3, 3)
            assert float((dynamic * x[0]).sum().detach()) == pytest.approx(float(out[k].detach()), rel=1e-12)  # out = W(x)·x
            # the negative control: with the scaling in the graph the gradient is not W(x)
            assert torch.allclose(grad[0], dynamic, rtol=1e-12, atol=1e-12) == detach


def test_explanation_mode_is_restored_even_after_an_error():
    net = archs.bcos_resnet50(3, width=SMALL)
    with pytest.raises(RuntimeError):
        with net.explanation_mode():
            assert all(m.detach for m in net.modules() if isinstance(m, BcosConv2d))
            raise RuntimeError("boom")
    assert not any(m.detach for m in net.modules() if isinstance(m, BcosConv2d))


def test_uncentred_batchnorm_divides_by_the_running_std_without_centring():
    bn = UncenteredBatchNorm2d(2).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0]))
        bn.running_mean.copy_(torch.tensor([9.0, 9.0]))  # never used
    x = torch.ones(1, 2, 1, 1)
    expected = torch.tensor([2.0 / math.sqrt(4 + bn.eps), 0.5 / math.sqrt(1 + bn.eps)]).view(1, 2, 1, 1)
    assert torch.allclose(bn(x), expected)
    assert set(bn.state_dict()) == {"weight", "running_mean", "running_var", "num_batches_tracked"}


def test_bcos_network_takes_three_channels_and_encodes_six():
    net = small("bcos_resnet50")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net.forward_encoded(torch.cat([x, 1 - x], 1)))
    with pytest.raises(ValueError, match="B×3×H×W"):
        net(torch.rand(1, 6, 32, 32))
