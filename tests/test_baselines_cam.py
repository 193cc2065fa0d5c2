"""CAM family (baseline_attribution.cam), attention methods (baseline_attribution.transformer) and
the model helpers (baseline_attribution.models), on tiny float64 models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from baseline_attribution import REGISTRY, AttributionModel, attribute, attribution_model
from baseline_attribution.cam import finish_maps
from baseline_attribution.models import default_cam_layer, vit_layout, vit_tokens_to_grid
from baseline_attribution.transformer import (capture_attentions, chefer_from_attentions, rollout_from_attentions)
from submodular_attribution.models import DifferentiableScorer

CPU = torch.device("cpu")
CAMS = ["gradcam", "gradcam++", "xgradcam", "layercam", "smoothgradcam++", "scorecam"]
ATTENTION = ["rollout", "transformer-attribution"]


def _model(net: nn.Module, num_classes: int, layer: nn.Module | None = None, batch_size: int = 64,
           tokens_to_grid=None) -> AttributionModel:
    return AttributionModel(logits=net, num_classes=num_classes, device=CPU, module=net, cam_layer=layer,
                            tokens_to_grid=tokens_to_grid, batch_size=batch_size)


class TinyCNN(nn.Module):
    """Two stride-1 3×3 conv+ReLU layers (12×12 maps at 12×12 input); the head reads the pooled
    map and, through a second linear layer, the flattened map, so the gradients at ``body`` vary
    over positions."""

    def __init__(self, size: int = 12, num_classes: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
        self.pooled = nn.Linear(8, num_classes)
        self.spatial = nn.Linear(8 * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x)
        return self.pooled(features.mean(dim=(2, 3))) + self.spatial(features.flatten(1))


def _reference(name: str, net: nn.Module, layer: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM, "layercam": LayerCAM}[name]
    with cls(model=net, target_layers=[layer]) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])


# ---------------------------------------------------------------------------------------------
# cross-check against pytorch-grad-cam

@pytest.mark.parametrize("name", ["gradcam", "gradcam++", "xgradcam", "layercam"])
def test_cams_match_pytorch_grad_cam_at_layer_resolution(name):
    """Layer map = image size (12×12, stride-1 convs): no resizing on either side, so this compares
    the per-image min-max normalised CAMs themselves, position by position."""
    torch.manual_seed(1)  # every map below has positive and zero parts
    net = TinyCNN().double().eval()
    x = torch.rand(4, 3, 12, 12, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 4])
    ours = attribute(name, _model(net, 5, net.body), x, targets, normalize=True).numpy()
    ref = _reference(name, net, net.body, x, targets)
    assert ours.shape == ref.shape == (4, 12, 12)
    assert np.allclose(ref.reshape(4, -1).max(1), 1.0)  # non-degenerate maps
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def tiny_resnet18():
    from submodular_attribution.adapters.classifier import build_classifier

    torch.manual_seed(2)  # every map below has positive and zero parts
    net, _ = build_classifier("resnet18", 5)
    net = net.double().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net, torch.rand(3, 3, 64, 64, dtype=torch.float64)


@pytest.mark.parametrize("name", ["gradcam", "gradcam++", "xgradcam", "layercam"])
def test_cams_match_pytorch_grad_cam_on_resnet18_upsampled(name, tiny_resnet18):
    """ResNet-18 at 64 px: layer4 is 2×2, upsampled to 64×64 (ours: torch bilinear, half-pixel
    centres; theirs: cv2.resize INTER_LINEAR), both min-max normalised per image."""
    net, x = tiny_resnet18
    assert default_cam_layer(net) is net.layer4
    targets = torch.tensor([0, 3, 1])
    ours = attribute(name, _model(net, 5, net.layer4), x, targets, normalize=True).numpy()
    ref = _reference(name, net, net.layer4, x, targets)
    assert np.allclose(ref.reshape(3, -1).max(1), 1.0)
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# semantics

def test_raw_gradcam_is_the_formula_and_normalize_scales():
    torch.manual_seed(2)
    net = TinyCNN().double().eval()
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    targets = torch.tensor([1, 3])
    model = _model(net, 5, net.body)
    acts = net.body(x)
    logits = net.pooled(acts.mean(dim=(2, 3))) + net.spatial(acts.flatten(1))
    grads = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), acts)[0]
    expected = (grads.mean(dim=(2, 3))[:, :, None, None] * acts).sum(1).clamp(min=0).detach()
    raw = attribute("gradcam", model, x, targets)
    torch.testing.assert_close(raw, expected, rtol=0, atol=1e-12)
    norm = attribute("gradcam", model, x, targets, normalize=True)
    low = expected.flatten(1).min(1).values[:, None, None]
    high = expected.flatten(1).max(1).values[:, None, None]
    torch.testing.assert_close(norm, (expected - low) / (high - low), rtol=0, atol=1e-12)
    # a layer= option overrides the model's cam_layer; a model without one needs it
    no_layer = _model(net, 5, None)
    torch.testing.assert_close(attribute("gradcam", no_layer, x, targets, layer=net.body), raw)
    with pytest.raises(ValueError, match="layer="):
        attribute("gradcam", no_layer, x, targets)
    assert not net.body._forward_hooks  # hooks removed


def test_constant_map_normalises_to_zero():
    cam = torch.full((1, 1, 1), 0.3, dtype=torch.float64)
    assert torch.equal(finish_maps(cam, (7, 5), True), torch.zeros(1, 7, 5, dtype=torch.float64))
    torch.testing.assert_close(finish_maps(cam, (7, 5), False), torch.full((1, 7, 5), 0.3, dtype=torch.float64))


class Cells(nn.Module):
    """B×3×S×S -> B×16×S×S: channel k is the mean of RGB inside cell k of a 4×4 grid, 0 elsewhere."""

    def __init__(self, size: int) -> None:
        super().__init__()
        cell = torch.arange(size) * 4 // size
        index = (cell[:, None] * 4 + cell[None, :]).flatten()
        self.register_buffer("masks", nn.functional.one_hot(index, 16).T.reshape(16, size, size).double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=True) * self.masks


class QuadrantNet(nn.Module):
    """Class 0's logit = 200 · Σ (mean activation of the four top-left cells); classes 1–3: 5."""

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        self.cells = Cells(size)
        self.top_left = torch.tensor([0, 1, 4, 5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.cells(x).mean(dim=(2, 3))
        logit = 200 * pooled[:, self.top_left].sum(1)
        return torch.stack([logit, *(torch.full_like(logit, 5.0),) * 3], dim=1)


@pytest.mark.parametrize("name", ["scorecam", "gradcam"])
def test_map_mass_concentrates_in_the_quadrant_the_logit_reads(name):
    net = QuadrantNet().eval()
    x = 0.2 + 0.8 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    maps = attribute(name, _model(net, 4, net.cells, batch_size=5), x, torch.tensor([0, 0]))
    assert maps.shape == (2, 16, 16) and bool(torch.isfinite(maps).all())
    share = maps[:, :8, :8].sum(dim=(1, 2)) / maps.sum(dim=(1, 2))
    assert bool((share > 0.95).all()), share  # a uniform map would give 0.25
    if name == "scorecam":  # class 1's probability is highest when the quadrant is hidden
        other = attribute(name, _model(net, 4, net.cells), x, torch.tensor([1, 1]))
        assert bool((other[:, :8, :8].sum(dim=(1, 2)) / other.sum(dim=(1, 2)) < 0.25).all())


def test_scorecam_max_channels_keeps_the_most_active_channels():
    net = QuadrantNet().eval()
    x = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    x[:, :, :4, :4] = 1.0  # cell 0 is the most active channel
    model = _model(net, 4, net.cells)
    one = attribute("scorecam", model, x, torch.tensor([0]), max_channels=1)
    assert bool((one[0, 4:, :] == 0).all()) and bool((one[0, :, 4:] == 0).all()) and bool((one[0, :4, :4] > 0).all())


def test_smoothgradcam_is_deterministic_per_seed():
    torch.manual_seed(4)
    net = TinyCNN().double().eval()
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    # the pre-ReLU conv: its gradients depend on the input (at ``body`` they would not: the head is linear)
    model = _model(net, 5, net.body[2])
    targets = torch.tensor([0, 1])
    a = attribute("smoothgradcam++", model, x, targets, n_samples=3)
    b = attribute("smoothgradcam++", model, x, targets, n_samples=3)
    c = attribute("smoothgradcam++", model, x, targets, n_samples=3, seed=1)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    # no noise: Grad-CAM++ exactly
    torch.testing.assert_close(attribute("smoothgradcam++", model, x, targets, n_samples=2, noise_level=0.0),
                               attribute("gradcam++", model, x, targets), rtol=1e-12, atol=1e-15)


def test_batching_does_not_change_maps():
    torch.manual_seed(5)
    net = TinyCNN().double().eval()
    x = torch.rand(3, 3, 12, 12, dtype=torch.float64)
    targets = torch.tensor([0, 2, 4])
    for name in ["gradcam", "scorecam"]:
        whole = attribute(name, _model(net, 5, net.body, batch_size=64), x, targets)
        pieces = attribute(name, _model(net, 5, net.body, batch_size=2), x, targets)
        torch.testing.assert_close(whole, pieces, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# vision transformers

@pytest.fixture(scope="module")
def tiny_vit():
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=4).double().eval()


def test_tokens_to_grid_drops_prefix_tokens_and_handles_layouts():
    import timm
    import torchvision
    from open_clip.transformer import VisionTransformer as OpenClipViT

    # timm, non-square grid 2×4, CLS + 2 register tokens
    vit = timm.models.vision_transformer.VisionTransformer(img_size=(16, 32), patch_size=8, embed_dim=8, depth=1,
                                                             num_heads=2, num_classes=3, reg_tokens=2)
    layout = vit_layout(vit)
    assert (layout.kind, layout.num_prefix_tokens, layout.grid) == ("timm", 3, (2, 4))
    b, n, d = 2, 3 + 8, 5
    tokens = (1000 * torch.arange(b)[:, None, None] + 10 * torch.arange(n)[None, :, None]
              + torch.arange(d)[None, None, :]).double()
    grid = vit_tokens_to_grid(vit)(tokens)
    assert grid.shape == (b, d, 2, 4)
    for i in range(2):
        for j in range(4):
            assert torch.equal(grid[:, :, i, j], tokens[:, 3 + i * 4 + j, :])
    assert default_cam_layer(vit) is vit.blocks[-1].norm1

    # torchvision: one CLS token, square grid
    tv = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                              hidden_dim=8, mlp_dim=8, num_classes=3)
    assert default_cam_layer(tv) is tv.encoder.layers[-1].ln_1
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float64).reshape(2, 5, 3)
    assert torch.equal(vit_tokens_to_grid(tv)(tokens), tokens[:, 1:].transpose(1, 2).reshape(2, 3, 2, 2))

    # open_clip: one CLS token; a sequence-first tower gets N×B×D tensors
    oc = OpenClipViT(image_size=32, patch_size=16, width=8, layers=1, heads=2, mlp_ratio=2.0, output_dim=4)
    assert default_cam_layer(oc) is oc.transformer.resblocks[-1].ln_1
    assert torch.equal(vit_tokens_to_grid(oc)(tokens), tokens[:, 1:].transpose(1, 2).reshape(2, 3, 2, 2))
    oc.transformer.batch_first = False
    assert torch.equal(vit_tokens_to_grid(oc)(tokens.transpose(0, 1).contiguous()),
                       tokens[:, 1:].transpose(1, 2).reshape(2, 3, 2, 2))

    with pytest.raises(ValueError):
        vit_tokens_to_grid(TinyCNN())


def test_cams_on_torchvision_and_open_clip_vits_and_default_cnn_layers():
    import torchvision
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer as OpenClipViT

    from submodular_attribution.adapters.face import IResNet

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    tv = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                              hidden_dim=8, mlp_dim=8, num_classes=3).double().eval()
    oc = OpenClipViT(image_size=32, patch_size=16, width=8, layers=1, heads=2, mlp_ratio=2.0, output_dim=4)
    oc = oc.double().eval()
    for net, classes in ((tv, 3), (oc, 4)):
        model = _model(net, classes, default_cam_layer(net), tokens_to_grid=vit_tokens_to_grid(net))
        maps = attribute("gradcam", model, x, torch.tensor([0, 2]))
        assert maps.shape == (2, 32, 32) and bool(torch.isfinite(maps).all())
        with pytest.raises(TypeError, match="timm VisionTransformer"):
            attribute("rollout", model, x, torch.tensor([0, 2]))
    face = IResNet((1, 1, 1, 1), num_features=8, input_size=32)
    assert default_cam_layer(face) is face.layer4
    clip_rn = ModifiedResNet(layers=[1, 1, 1, 1], output_dim=8, heads=2, image_size=64, width=8)
    assert default_cam_layer(clip_rn) is clip_rn.layer4
    swin = type("SwinTransformer", (nn.Module,), {})()  # channels-last maps: no default layer
    swin.features = nn.Sequential(nn.Conv2d(3, 4, 3))
    assert default_cam_layer(swin) is None
    assert default_cam_layer(None) is None


@pytest.mark.parametrize("name", CAMS + ATTENTION)
def test_methods_on_tiny_timm_vit(tiny_vit, name):
    from submodular_attribution.models import ClassifierScorer

    model = attribution_model(ClassifierScorer(tiny_vit, num_classes=4), batch_size=8)
    assert model.cam_layer is tiny_vit.blocks[-1].norm1 and model.tokens_to_grid is not None
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    options = {"max_channels": 8} if name == "scorecam" else {"n_samples": 2} if name == "smoothgradcam++" else {}
    maps = attribute(name, model, x, torch.tensor([0, 3]), **options)
    assert maps.shape == (2, 32, 32) and maps.dtype == torch.float64 and bool(torch.isfinite(maps).all())
    assert all(blk.attn.fused_attn for blk in tiny_vit.blocks)  # restored
    assert not any(blk.attn.attn_drop._forward_hooks or blk.norm1._forward_hooks for blk in tiny_vit.blocks)


def _attentions_from_qkv(vit, x):
    """Every block's softmax(q kᵀ·scale), recomputed from the input of its attention (fused path)."""
    inputs = []
    handles = [blk.attn.register_forward_pre_hook(lambda _m, args: inputs.append(args[0])) for blk in vit.blocks]
    try:
        with torch.no_grad():
            vit(x)
    finally:
        for h in handles:
            h.remove()
    attns = []
    for blk, h in zip(vit.blocks, inputs):
        a = blk.attn
        b, n, _ = h.shape
        q, k, _ = a.qkv(h).reshape(b, n, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
        attns.append(((a.q_norm(q) * a.scale) @ a.k_norm(k).transpose(-2, -1)).softmax(-1).detach())
    return attns


def test_captured_attentions_and_rollout_method(tiny_vit):
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    expected = _attentions_from_qkv(tiny_vit, x)
    with torch.no_grad():
        fused = tiny_vit(x)
        with capture_attentions(tiny_vit) as attns:
            explicit = tiny_vit(x)
    torch.testing.assert_close(explicit, fused, rtol=0, atol=1e-10)
    assert len(attns) == len(tiny_vit.blocks) == len(expected)
    for a, e in zip(attns, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)
    model = _model(tiny_vit, 4, tokens_to_grid=vit_tokens_to_grid(tiny_vit))
    for fusion in ("mean", "max"):
        want = finish_maps(rollout_from_attentions(expected, fusion).reshape(2, 2, 2), (32, 32), False)
        got = attribute("rollout", model, x, torch.tensor([0, 1]), head_fusion=fusion)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_attention_methods_reject_other_networks():
    net = TinyCNN().double().eval()
    for name in ATTENTION:
        with pytest.raises(TypeError, match="timm VisionTransformer"):
            attribute(name, _model(net, 5, net.body), torch.rand(1, 3, 12, 12, dtype=torch.float64), [0])


# ---------------------------------------------------------------------------------------------
# function-level rollout / Chefer against hand computations

A1 = [[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6]]
A2 = [[0.4, 0.4, 0.2], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]]


def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)[None, None]  # 1×1×N×N


def test_rollout_hand_computed():
    # Â = (A + I)/2; row 0 of Â2 = (.7, .2, .1); R[0] = .7 Â1[0] + .2 Â1[1] + .1 Â1[2] = (.55, .2625, .1875)
    got = rollout_from_attentions([_t(A1), _t(A2)])
    torch.testing.assert_close(got, torch.tensor([[0.2625, 0.1875]], dtype=torch.float64), rtol=0, atol=1e-15)
    # head fusion, one block, two heads (identity and swap): max → rows (2, 1)/3; mean → (1.5, .5)/2; min → (1, 0)
    heads = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)[None]
    for fusion, value in (("max", 1 / 3), ("mean", 0.25), ("min", 0.0)):
        torch.testing.assert_close(rollout_from_attentions([heads], fusion),
                                   torch.tensor([[value]], dtype=torch.float64), rtol=0, atol=1e-15)
    with pytest.raises(ValueError):
        rollout_from_attentions([heads], "median")


def test_chefer_hand_computed():
    g1 = [[1, -1, 2], [0, 1, 1], [1, 1, -2]]
    g2 = [[2, -1, 1], [1, 1, 1], [0, 0, 0]]
    # Ā1 = (G1⊙A1)⁺ = [[.5,0,.5],[0,.6,.2],[.1,.3,0]], R1 = I + Ā1; Ā2[0] = (.8, 0, .2)
    # R2[0] = R1[0] + Ā2[0] R1 = (1.5, 0, .5) + (1.22, .06, .6) = (2.72, .06, 1.1)
    got = chefer_from_attentions([_t(A1), _t(A2)], [_t(g1), _t(g2)])
    torch.testing.assert_close(got, torch.tensor([[0.06, 1.1]], dtype=torch.float64), rtol=0, atol=1e-14)
    # a second head with zero gradient halves every Ā: R1[0] = (1.25, 0, .25), Ā2[0] = (.4, 0, .1),
    # R2[0] = (1.25, 0, .25) + (.505, .015, .2)
    two = [torch.cat([_t(a), _t(a)], dim=1) for a in (A1, A2)]
    grads = [torch.cat([_t(g), torch.zeros_like(_t(g))], dim=1) for g in (g1, g2)]
    torch.testing.assert_close(chefer_from_attentions(two, grads),
                               torch.tensor([[0.015, 0.45]], dtype=torch.float64), rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# the default model and attribution_model()

def test_every_method_on_default_shapes_cnn():
    from submodular_attribution.shapes.model import ShapesCNN, build_scorer

    torch.manual_seed(8)
    net = ShapesCNN().eval()
    scorer = build_scorer(net)
    model = attribution_model(scorer, batch_size=32)
    assert model.cam_layer is net.features and model.tokens_to_grid is None
    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(9))
    targets = torch.tensor([0, 3])
    mine = set(CAMS + ATTENTION)
    assert mine <= set(REGISTRY)
    for name in CAMS:
        options = {"n_samples": 3} if name == "smoothgradcam++" else {}
        maps = attribute(name, model, x, targets, **options)
        assert maps.shape == (2, 112, 112) and bool(torch.isfinite(maps).all()) and bool((maps >= 0).all()), name
        assert not net.features._forward_hooks
    for name in ATTENTION:
        with pytest.raises(TypeError):
            attribute(name, model, x, targets)
    # representation: the input of the linear head = the pooled features
    feats = net.forward_features((x - scorer.mean) / scorer.std)
    torch.testing.assert_close(model.representation(x), feats)
    assert not net.head._forward_pre_hooks


def test_attribution_model_follows_the_declared_protocol():
    class EmbedScorer:  # meets DifferentiableScorer without inheriting anything
        device = CPU
        num_classes = 3
        pixel_mean = (0.5, 0.5, 0.5)

        def __init__(self):
            self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(4, 3)

        @property
        def attribution_module(self):
            return self.backbone

        def representation(self, images):
            return self.backbone(images)

        def logits(self, images):
            return self.head(self.representation(images))

        def __call__(self, images):
            raise AssertionError("baselines use logits(), not the black-box call")

    scorer = EmbedScorer()
    assert isinstance(scorer, DifferentiableScorer)
    model = attribution_model(scorer)
    assert model.representation == scorer.representation and model.pixel_mean == (0.5, 0.5, 0.5)
    assert model.cam_layer is scorer.backbone[0]  # no known layer name: the last Conv2d

    class BlackBox:  # a Scorer only: gradient methods must say so up front
        device = CPU
        num_classes = 3

        def __call__(self, images):
            return None

    with pytest.raises(TypeError, match="is not a DifferentiableScorer"):
        attribution_model(BlackBox())
