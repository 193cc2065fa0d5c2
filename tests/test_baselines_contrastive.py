"""Class-contrastive gradients (Wang & Wang, NeurIPS 2022) as ``output="contrastive"``, IxG-SG, and
the re-calibration paper's ``-k``/``-bg_size``/``-exp_obj`` mapping: closed forms on linear models,
the softmax identity, and captum's NoiseTunnel with the same noise draws."""
import pytest
import torch
from torch import nn

from baseline_attribution import attribute
from baseline_attribution.base import AttributionModel
from baseline_attribution.generate_explanation_maps import recalibration_options
from baseline_attribution.gradient import contrastive_scores, select_scores, target_gradients
from submodular_attribution.common.errors import InputError

H = W = 4
C = 5


def linear_model(seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(C, 3 * H * W, generator=g, dtype=torch.float64)
    bias = torch.randn(C, generator=g, dtype=torch.float64)
    logits = lambda x: x.reshape(len(x), -1) @ weight.T + bias  # noqa: E731
    return AttributionModel(logits=logits, num_classes=C, device=torch.device("cpu"), batch_size=3), weight, bias


def mlp_model(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * H * W, 8), nn.Tanh(), nn.Linear(8, C)).double().eval()
    return AttributionModel(logits=net, num_classes=C, device=torch.device("cpu"), batch_size=4)


def test_contrastive_score_is_target_minus_softmax_weighted_others():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]], dtype=torch.float64)
    targets = torch.tensor([1, 2])
    # row 0, t = 1: others (1, 0) with weights e/(e + 1), 1/(e + 1)
    e = torch.tensor(1.0, dtype=torch.float64).exp()
    expected0 = 2.0 - (e * 1.0 + 1.0 * 0.0) / (e + 1)
    w = torch.tensor([0.5, -1.0], dtype=torch.float64).softmax(0)
    expected1 = 3.0 - (w[0] * 0.5 + w[1] * -1.0)
    got = contrastive_scores(logits, targets)
    assert torch.allclose(got, torch.stack([expected0, expected1]))
    assert torch.equal(select_scores(logits, targets, "contrastive"), got)
    probs = logits.softmax(1).gather(1, targets[:, None])[:, 0]
    assert torch.allclose(select_scores(logits, targets, "probability"), probs)


def test_contrastive_gradient_of_a_linear_model_is_the_closed_form():
    model, weight, bias = linear_model()
    x = torch.rand(3, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 3, 4])
    grads = target_gradients(model, x, targets, "contrastive")
    logits = model.logits(x)
    for b, t in enumerate(targets.tolist()):
        others = [s for s in range(C) if s != t]
        alpha = logits[b, others].softmax(0)
        expected = weight[t] - (alpha[:, None] * weight[others]).sum(0)
        assert torch.allclose(grads[b].reshape(-1), expected, atol=1e-12)
    # IxG of the contrastive score: x ⊙ ∇φ_t, summed over channels
    maps = attribute("ixg", model, x, targets, output="contrastive")
    assert torch.allclose(maps, (x * grads).sum(1), atol=1e-12)


def test_softmax_weighted_contrastive_gradients_sum_to_zero_over_classes():
    """∇φ_t = ∇log p_t / (1 − p_t), so Σ_t p_t (1 − p_t) ∇φ_t = Σ_t ∇p_t = 0."""
    model = mlp_model()
    x = torch.rand(2, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    p = model.probs(x).detach()
    total = torch.zeros_like(x)
    for t in range(C):
        targets = torch.full((2,), t)
        g = target_gradients(model, x, targets, "contrastive")
        log_p = torch.log(p[:, t])
        xx = x.clone().requires_grad_(True)
        (grad_log_p,) = torch.autograd.grad(torch.log_softmax(model.logits(xx), 1)[:, t].sum(), xx)
        assert torch.allclose(g, grad_log_p / (1 - p[:, t]).view(-1, 1, 1, 1), atol=1e-10)
        assert torch.isfinite(log_p).all()
        total += (p[:, t] * (1 - p[:, t])).view(-1, 1, 1, 1) * g
    assert total.abs().max() < 1e-12
    # while the plain logit gradients do not cancel
    plain = sum(p[:, t].view(-1, 1, 1, 1) * target_gradients(model, x, torch.full((2,), t)) for t in range(C))
    assert plain.abs().max() > 1e-3


def test_path_methods_take_contrastive_gradients_with_recalibration():
    model, weight, _ = linear_model()
    x = torch.rand(2, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    targets = torch.tensor([1, 2])
    g = target_gradients(model, x, targets, "contrastive")
    # one right-Riemann point (α = 1): IG from a zero baseline is x ⊙ ∇φ_t(x)
    assert torch.allclose(attribute("ig", model, x, targets, steps=1, output="contrastive"), (x * g).sum(1),
                          atol=1e-12)
    maps = attribute("ig-uniform", model, x, targets, n_refs=2, steps=3, output="contrastive", recalibrate=True)
    assert (maps >= 0).all() and torch.isfinite(maps).all()
    assert not torch.allclose(maps, attribute("ig-uniform", model, x, targets, n_refs=2, steps=3, recalibrate=True))
    agi = attribute("agi", model, x, targets, n_classes=2, max_iter=2, output="contrastive")
    assert torch.isfinite(agi).all()


def test_ixg_sg_matches_captum_noise_tunnel_with_the_same_noise(monkeypatch):
    from captum.attr import InputXGradient, NoiseTunnel

    model = mlp_model(seed=4)
    x = torch.rand(1, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    std = torch.tensor([0.2, 0.3, 0.1], dtype=torch.float64)
    # the noise our method draws for seed 7: N(0, 1) on the CPU generator, n_samples × 3×H×W
    eps = torch.randn((4, 3, H, W), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    noisy = x + std.view(1, 3, 1, 1) * eps
    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input", staticmethod(lambda inp, stdev, n: noisy.clone()))
    reference = NoiseTunnel(InputXGradient(model.logits)).attribute(x, target=2, nt_type="smoothgrad", nt_samples=4)
    ours = attribute("ixg-sg", model, x, [2], noise_std=tuple(std.tolist()), n_samples=4, seed=7)
    assert torch.allclose(ours, reference.sum(1), atol=1e-12)
    # a baseline subtracts from the noisy input: the benchmark's normalised-space IxG
    mean = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64)
    shifted = attribute("ixg-sg", model, x, [2], noise_std=tuple(std.tolist()), n_samples=4, seed=7,
                        baseline=tuple(mean.tolist()))
    xx = noisy.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.logits(xx)[:, 2].sum(), xx)
    assert torch.allclose(shifted[0], ((noisy - mean.view(1, 3, 1, 1)) * g).mean(0).sum(0), atol=1e-12)


def test_ixg_sg_defaults_follow_the_benchmark_and_seed_is_reproducible():
    model = mlp_model()
    x = torch.rand(2, 3, H, W, dtype=torch.float64)
    a = attribute("ixg-sg", model, x, [0, 1])
    assert torch.equal(a, attribute("ixg-sg", model, x, [0, 1]))
    assert not torch.equal(a, attribute("ixg-sg", model, x, [0, 1], seed=1))
    # zero noise: plain Input×Gradient
    assert torch.allclose(attribute("ixg-sg", model, x, [0, 1], noise_std=0.0), attribute("ixg", model, x, [0, 1]))
    with pytest.raises(ValueError, match="noise_std"):
        attribute("ixg-sg", model, x, [0, 1], noise_std=(0.1, 0.2))


def test_recalibration_paper_flags_map_onto_method_options():
    assert recalibration_options("ig-uniform", 5, 10, "contrast") == {"steps": 5, "n_refs": 10, "output": "contrastive"}
    assert recalibration_options("ig", 7, None, "prob") == {"steps": 7, "output": "probability"}
    assert recalibration_options("eg", 5, 10, None) == {"n_samples": 50}
    assert recalibration_options("agi", 20, None, "logit") == {"max_iter": 20, "output": "logit"}
    assert recalibration_options("smoothgrad", None, 20, None) == {"n_samples": 20}
    assert recalibration_options("gradcam", None, None, None) == {}
    with pytest.raises(InputError, match="-k does not apply"):
        recalibration_options("gradcam", 5, None, None)
    with pytest.raises(InputError, match="-exp_obj does not apply"):
        recalibration_options("rise", None, None, "contrast")
    with pytest.raises(InputError, match="-bg_size must be >= 1"):
        recalibration_options("ig-sg", None, 0, None)
