"""Chefer et al. (CVPR 2021) relevance propagation: each rule by hand, exact conservation through
tiny timm transformers, and the map end to end."""
import pytest
import timm
import torch

from baseline_attribution import attribute, attribution_model
from baseline_attribution.lrp import (add_relevance, linear_relevance, lrp_relevances, matmul_relevance,
                                      rollout_lrp)
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.shapes import ShapesCNN, build_scorer

D = torch.float64


def tiny_vit(depth=2, **kwargs):
    torch.manual_seed(0)
    # 32 channels: an output of a linear layer with no positive contribution (which would drop its
    # relevance) then has probability ~2^-32, so conservation is exact in practice
    vit = timm.models.vision_transformer.VisionTransformer(img_size=16, patch_size=8, embed_dim=32, depth=depth,
                                                           num_heads=2, num_classes=3, **kwargs)
    return attribution_model(ClassifierScorer(vit.double().eval(), num_classes=3), batch_size=4)


def test_linear_rule_by_hand():
    # y0 = 1·x0 + 2·x1, y1 = 3·x0 − 1·x1 at x = (1, −2): positive parts z0 = 1 (the 2·(−2) term is
    # negative and dropped), z1 = 3 + 2 = 5; R = (1, 1) ->
    # R_x0 = 1·(1·1/1 + 3·1/5) = 1.6, R_x1 = (−2)·((−1)·1/5) = 0.4
    x = torch.tensor([[1.0, -2.0]], dtype=D)
    w = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=D)
    r = linear_relevance(x, w, torch.ones(1, 2, dtype=D))
    assert torch.allclose(r, torch.tensor([[1.6, 0.4]], dtype=D))
    # conservation on random signed inputs and relevances, over the outputs that have a positive
    # contribution (z_j > 0); an output without one passes nothing on
    g = torch.Generator().manual_seed(0)
    x, w, rel = (torch.randn(4, 6, generator=g, dtype=D), torch.randn(5, 6, generator=g, dtype=D),
                 torch.randn(4, 5, generator=g, dtype=D))
    z = x.clamp(min=0) @ w.clamp(min=0).T + x.clamp(max=0) @ w.clamp(max=0).T
    assert (z == 0).any() and (z > 0).any()  # this draw has both kinds
    assert torch.allclose(linear_relevance(x, w, rel).sum(1), (rel * (z > 0)).sum(1))


def test_add_rule_by_hand_and_conservation():
    # z = 3 + (−1) = 2, R = 1: shares 1.5 and −0.5, rescaled to |1.5|/2 = 0.75 and |−0.5|/2 = 0.25
    ra, rb = add_relevance(torch.tensor([[3.0]], dtype=D), torch.tensor([[-1.0]], dtype=D), torch.ones(1, 1, dtype=D))
    assert torch.allclose(ra, torch.tensor([[0.75]], dtype=D)) and torch.allclose(rb, torch.tensor([[0.25]], dtype=D))
    g = torch.Generator().manual_seed(1)
    a, b, r = (torch.randn(2, 3, 4, generator=g, dtype=D) for _ in range(3))
    ra, rb = add_relevance(a, b, r)
    assert torch.allclose((ra + rb).sum((1, 2)), r.sum((1, 2)))


def test_matmul_rule_halves_and_conserves():
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 4, generator=g, dtype=D) + 0.1, torch.rand(2, 4, 5, generator=g, dtype=D) + 0.1
    r = torch.randn(2, 3, 5, generator=g, dtype=D)
    ra, rb = matmul_relevance(a, b, r)
    assert torch.allclose(ra.sum((1, 2)), r.sum((1, 2)) / 2) and torch.allclose(rb.sum((1, 2)), r.sum((1, 2)) / 2)
    # one output, one term: all of its relevance, halved
    ra, rb = matmul_relevance(torch.tensor([[[2.0]]], dtype=D), torch.tensor([[[3.0]]], dtype=D),
                              torch.tensor([[[6.0]]], dtype=D))
    assert ra.item() == 3.0 and rb.item() == 3.0


@pytest.mark.parametrize("depth", [1, 2])
def test_relevance_is_conserved_through_the_whole_transformer(depth):
    """The one-hot start (total 1) reaches the block stack's input tokens intact: every rule on
    the way (head, residual adds, attention products, qkv/proj/fc layers) is exact."""
    model = tiny_vit(depth)
    x = torch.rand(3, 3, 16, 16, dtype=D, generator=torch.Generator().manual_seed(3))
    relevance, attn_rel, grads, logits = lrp_relevances(model, x, torch.tensor([0, 1, 2]))
    assert torch.allclose(relevance.sum((1, 2)), torch.ones(3, dtype=D), atol=1e-10)
    assert len(attn_rel) == depth and attn_rel[0].shape == (3, 2, 5, 5) and grads[0].shape == (3, 2, 5, 5)
    assert torch.allclose(logits, model.logits(x))


def test_rollout_by_hand():
    r = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]]]], dtype=D)  # B=1, 1 head, 2 tokens
    g = torch.tensor([[[[1.0, -1.0], [2.0, 3.0]]]], dtype=D)
    layer = torch.tensor([[[2.0, 0.0], [0.0, 4.0]]], dtype=D)  # (g ⊙ r)⁺ + I
    assert torch.allclose(rollout_lrp([r], [g]), layer)
    assert torch.allclose(rollout_lrp([r, r], [g, g]), layer @ layer)
    assert torch.allclose(rollout_lrp([r, r], [g, g], start_layer=1), layer)
    with pytest.raises(ValueError, match="start_layer"):
        rollout_lrp([r], [g], start_layer=1)


def test_chefer_lrp_map_end_to_end():
    model = tiny_vit(2)
    x = torch.rand(2, 3, 16, 16, dtype=D, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([2, 0])
    maps = attribute("chefer-lrp", model, x, targets)
    assert maps.shape == (2, 16, 16) and torch.isfinite(maps).all() and (maps >= 0).all()
    # the map is the CLS row of the rollout on the 2×2 patch grid, upsampled: at the 4 patch
    # centres' average it keeps the patch scores' mean (bilinear upsampling of a 2×2 grid)
    _, rel, grads, _ = lrp_relevances(model, x, targets)
    scores = rollout_lrp(rel, grads)[:, 0, 1:]
    assert torch.allclose(maps.mean((1, 2)), scores.mean(1), atol=1e-10)
    # batch-size invariance, class dependence, start layer
    single = torch.cat([attribute("chefer-lrp", model, x[i:i + 1], targets[i:i + 1]) for i in range(2)])
    assert torch.allclose(single, maps, atol=1e-10)
    assert not torch.allclose(maps, attribute("chefer-lrp", model, x, torch.tensor([1, 1])))
    assert not torch.allclose(maps, attribute("chefer-lrp", model, x, targets, start_layer=1))
    # hooks removed and fused attention restored
    assert all(blk.attn.fused_attn == timm.layers.use_fused_attn() for blk in model.module.blocks)
    assert not any(blk._forward_hooks or blk._forward_pre_hooks or blk.attn.qkv._forward_hooks
                   for blk in model.module.blocks)


def test_unsupported_networks_raise_type_errors():
    cnn = attribution_model(build_scorer(ShapesCNN()))
    with pytest.raises(TypeError, match="supports timm VisionTransformer-style models only"):
        attribute("chefer-lrp", cnn, torch.rand(1, 3, 112, 112), [0])
    with pytest.raises(TypeError, match="attn.q_norm"):
        attribute("chefer-lrp", tiny_vit(1, qk_norm=True), torch.rand(1, 3, 16, 16, dtype=D), [0])
    with pytest.raises(TypeError, match="global_pool"):
        attribute("chefer-lrp", tiny_vit(1, global_pool="avg"), torch.rand(1, 3, 16, 16, dtype=D), [0])
