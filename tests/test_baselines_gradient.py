"""Gradient and path-integral baselines (baseline_attribution/gradient.py, path.py) on float64
tiny models: captum cross-checks, completeness, exact linear-model answers, re-calibration,
reference/α pairing, FullGrad's decomposition."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from baseline_attribution import gradient, path
from baseline_attribution.base import REGISTRY, AttributionModel, attribute

H = W = 4
GRADIENT_METHODS = ["saliency", "ixg", "smoothgrad", "fullgrad"]
PATH_METHODS = ["ig", "ig-uniform", "ig-sg", "ig-sq", "eg", "agi", "lpi", "ig2"]


class CountingLogits:
    """Wraps a network; counts the images it has scored."""

    def __init__(self, net):
        self.net, self.images = net, 0

    def __call__(self, x):
        self.images += len(x)
        return self.net(x)


class MLP(nn.Module):
    """Smooth: tanh hidden layer (the representation), 4 classes."""

    def __init__(self, seed=0, classes=4):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = nn.Parameter(torch.randn(3 * H * W, 8, generator=g, dtype=torch.float64) * 0.5)
        self.w2 = nn.Parameter(torch.randn(8, classes, generator=g, dtype=torch.float64))

    def hidden(self, x):
        return torch.tanh(x.reshape(len(x), -1) @ self.w1)

    def forward(self, x):
        return 2 * self.hidden(x) @ self.w2


class CNN(nn.Module):
    def __init__(self, act=None, seed=0, classes=5):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), act or nn.ReLU(inplace=True),
            nn.Conv2d(4, 6, 3, padding=1), act or nn.ReLU(inplace=True))
        self.head = nn.Linear(6, classes)
        with torch.no_grad():
            bn = self.features[1]
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        self.double().eval()

    def pooled(self, x):
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.head(self.pooled(x))


def as_model(net, classes, batch_size=16, representation=None, module=None):
    return AttributionModel(logits=CountingLogits(net), num_classes=classes, device=torch.device("cpu"),
                            module=module, representation=representation, batch_size=batch_size)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids spin contention on shared CPUs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def images():
    return torch.rand(3, 3, H, W, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.fixture
def mlp():
    net = MLP()
    return as_model(net, 4, representation=net.hidden)


@pytest.fixture
def cnn():
    net = CNN()
    return as_model(net, 5, module=net, representation=net.pooled)


def f_t(model, x, t):
    with torch.no_grad():
        return model.logits(x).gather(1, t.view(-1, 1)).squeeze(1)


def manual_ig_pixels(model, x, t, ref, alphas):
    """Explicit loop: (x − ref) ⊙ mean_α ∇f_t(ref + α(x − ref)) for one image, one reference."""
    total = torch.zeros_like(x)
    for a in alphas:
        p = (ref + a * (x - ref)).clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model.logits(p[None])[0, t], p)
        total += g
    return (x - ref) * total / len(alphas)


# --------------------------------------------------------------------------------------------
# captum cross-checks
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps,atol", [(64, 1e-12), (50, 1e-6)])
def test_ig_matches_captum(mlp, images, steps, atol):
    from captum.attr import IntegratedGradients

    t = torch.tensor([0, 2, 3])
    ours = attribute("ig", mlp, images, t, steps=steps)
    ref = IntegratedGradients(mlp.logits.net).attribute(images, baselines=0.0, target=t, n_steps=steps,
                                                        method="riemann_right").sum(1)
    # captum's α come from a float32 linspace: exact only when k is a power of two
    torch.testing.assert_close(ours, ref, atol=atol, rtol=0)


def test_saliency_and_ixg_match_captum(cnn, images):
    from captum.attr import InputXGradient, Saliency

    t = torch.tensor([1, 0, 4])
    net = cnn.logits.net
    sal = Saliency(net).attribute(images, target=t, abs=True)
    torch.testing.assert_close(attribute("saliency", cnn, images, t), sal.amax(1), atol=1e-14, rtol=0)
    plain = Saliency(net).attribute(images, target=t, abs=False)
    torch.testing.assert_close(attribute("saliency", cnn, images, t, absolute=False), plain.sum(1),
                               atol=1e-14, rtol=0)
    ixg = InputXGradient(net).attribute(images, target=t)
    torch.testing.assert_close(attribute("ixg", cnn, images, t), ixg.sum(1), atol=1e-14, rtol=0)
    torch.testing.assert_close(attribute("ixg", cnn, images, t, absolute=True), ixg.abs().sum(1),
                               atol=1e-14, rtol=0)


def test_probability_output(mlp, images):
    t = torch.tensor([0, 1, 2])
    points = images.clone().requires_grad_(True)
    p = torch.softmax(mlp.logits(points), -1).gather(1, t.view(-1, 1)).sum()
    (g,) = torch.autograd.grad(p, points)
    torch.testing.assert_close(attribute("ixg", mlp, images, t, output="probability"), (images * g).sum(1))
    with pytest.raises(ValueError):
        attribute("ig", mlp, images, t, output="softmax")


# --------------------------------------------------------------------------------------------
# linear model: exact answers
# --------------------------------------------------------------------------------------------

@pytest.fixture
def linear():
    w = torch.randn(3, H, W, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def logits(x):
        s = (x * w).sum(dim=(1, 2, 3))
        return torch.stack([s + 0.7, -s], dim=1)

    return as_model(logits, 2), w


def test_linear_model_exact(linear, images):
    model, w = linear
    t = torch.zeros(3, dtype=torch.long)
    expected = (w * images).sum(1)
    torch.testing.assert_close(attribute("ig", model, images, t, steps=7), expected, atol=1e-13, rtol=0)
    torch.testing.assert_close(attribute("ixg", model, images, t), expected, atol=1e-13, rtol=0)
    torch.testing.assert_close(attribute("smoothgrad", model, images, t, n_samples=5), w.sum(0).expand(3, H, W),
                               atol=1e-13, rtol=0)
    torch.testing.assert_close(attribute("saliency", model, images, t), w.abs().amax(0).expand(3, H, W))


def test_linear_model_expected_gradients(linear, images):
    model, w = linear
    t = torch.zeros(3, dtype=torch.long)
    refs = torch.rand(3, 3, H, W, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    eg = attribute("eg", model, images, t, references=refs, n_samples=3000)
    expected = (w * (images - refs.mean(0))).sum(1)
    # sampling error of the mean reference: per pixel ≈ Σ_c |w_c|·0.3/√3000 ≈ 0.02·max|w|; allow 6σ
    assert (eg - expected).abs().max() < 0.12 * w.abs().max()


# --------------------------------------------------------------------------------------------
# completeness
# --------------------------------------------------------------------------------------------

def test_ig_completeness(mlp, images):
    t = torch.tensor([0, 1, 3])
    mlp.batch_size = 1024
    a = attribute("ig", mlp, images, t, steps=2000)
    gap = f_t(mlp, images, t) - f_t(mlp, torch.zeros_like(images), t)
    torch.testing.assert_close(a.sum(dim=(1, 2)), gap, rtol=2e-3, atol=1e-3)


def test_ig_uniform_completeness_per_reference(mlp, images):
    t = torch.tensor([2, 1, 0])
    mlp.batch_size = 1024
    refs = path.uniform_references(images, 3, seed=4)
    bank, index = refs.reshape(-1, 3, H, W), torch.arange(9).view(3, 3)
    per_ref = path.straight_line_attributions(mlp, images, t, bank, index, path.right_riemann_alphas(1500, images),
                                              per_reference=True)
    for r in range(3):
        gap = f_t(mlp, images, t) - f_t(mlp, refs[:, r], t)
        # per_reference returns w_r-weighted attributions (w_r = 1/R)
        torch.testing.assert_close(3 * per_ref[:, r].sum(dim=(1, 2, 3)), gap, rtol=3e-3, atol=2e-3)
    # the ig-uniform map is their average
    torch.testing.assert_close(attribute("ig-uniform", mlp, images, t, n_refs=3, steps=50, seed=4),
                               path.straight_line_attributions(mlp, images, t, bank, index,
                                                               path.right_riemann_alphas(50, images)).sum(1))


def test_eg_completeness(mlp, images):
    t = torch.tensor([0, 1, 2])
    ref = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    eg = attribute("eg", mlp, images, t, references=ref, n_samples=4000)
    gap = f_t(mlp, images, t) - f_t(mlp, ref.expand_as(images), t)
    torch.testing.assert_close(eg.sum(dim=(1, 2)), gap, rtol=0.05, atol=0.05)


def test_ig2_completeness_exact_for_a_linear_score(images):
    """Linear logits, non-linear representation: the left-point sum is exact along any path, so
    Σ A = f_t(x) − mean_r f_t(GradCF_r) to rounding error."""
    g = torch.Generator().manual_seed(4)
    w = torch.randn(3 * H * W, 4, generator=g, dtype=torch.float64)
    w1 = torch.randn(3 * H * W, 5, generator=g, dtype=torch.float64)
    model = as_model(lambda x: x.reshape(len(x), -1) @ w, 4,
                     representation=lambda x: torch.tanh(x.reshape(len(x), -1) @ w1))
    t = torch.tensor([0, 1, 2])
    refs = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    attr, cfs = path.ig2_attributions(model, images, t, references=refs, steps=201,
                                      return_counterfactuals=True)
    for b in range(3):
        assert cfs[b].shape == (2, 3, H, W) and cfs[b].min() >= 0 and cfs[b].max() <= 1
        assert not torch.allclose(cfs[b], images[b].expand(2, 3, H, W))
        gap = f_t(model, images[b:b + 1], t[b:b + 1]) - f_t(model, cfs[b], t[b].expand(2)).mean()
        torch.testing.assert_close(attr[b].sum(), gap.squeeze(), atol=1e-12, rtol=0)
        with torch.no_grad():  # the path moved toward the references' representation
            rep = model.representation
            before = (rep(images[b:b + 1]) - rep(refs)).square().sum(1)
            assert ((rep(cfs[b]) - rep(refs)).square().sum(1) < before).all()


@pytest.mark.parametrize("use_rep", [True, False])
def test_ig2_completeness_converges(images, use_rep):
    """Non-linear score: Σ A − (f_t(x) − f_t(GradCF)) is the left-point rule's error, first order in
    the step η at a fixed path length η·k — halving η halves it."""
    net = MLP(seed=2)
    model = as_model(net, 4, representation=net.hidden if use_rep else None)
    t = torch.tensor([0, 1, 2])
    refs = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    errors = []
    for steps, eta in [(150, 0.008), (300, 0.004)]:
        attr, cfs = path.ig2_attributions(model, images, t, references=refs, steps=steps, step_size=eta,
                                          return_counterfactuals=True)
        gaps = torch.stack([f_t(model, images[b:b + 1], t[b:b + 1])[0] - f_t(model, cfs[b], t[b].expand(2)).mean()
                            for b in range(3)])
        errors.append(attr.sum(dim=(1, 2, 3)) - gaps)
        assert (errors[-1].abs() < 0.1 * gaps.abs().clamp_min(1)).all()
    ratio = errors[1] / errors[0]
    assert ((ratio > 0.4) & (ratio < 0.6)).all(), ratio


# --------------------------------------------------------------------------------------------
# pairing of references and interpolation points
# --------------------------------------------------------------------------------------------

def test_every_reference_paired_with_every_alpha(mlp, images):
    t = torch.tensor([3, 0, 1])
    n_refs, k = 3, 4
    mlp.logits.images = 0
    ours = attribute("ig-uniform", mlp, images, t, n_refs=n_refs, steps=k, seed=11)
    assert mlp.logits.images == len(images) * n_refs * k
    refs = path.uniform_references(images, n_refs, seed=11)
    alphas = [(j + 1) / k for j in range(k)]
    explicit = torch.stack([
        sum(manual_ig_pixels(mlp, images[b], int(t[b]), refs[b, r], alphas) for r in range(n_refs)) / n_refs
        for b in range(len(images))])
    torch.testing.assert_close(ours, explicit.sum(1), atol=1e-13, rtol=0)
    # the reference code's pairing: the gradient on the path of reference (r·k + j) mod R at α_j is
    # multiplied by (x − reference r) — a different answer
    def buggy_pixels(b):
        total = torch.zeros_like(images[b])
        for r in range(n_refs):
            for j in range(k):
                other = refs[b, (r * k + j) % n_refs]
                p = (other + alphas[j] * (images[b] - other)).clone().requires_grad_(True)
                (g,) = torch.autograd.grad(mlp.logits(p[None])[0, t[b]], p)
                total += (images[b] - refs[b, r]) * g / (k * n_refs)
        return total

    buggy = torch.stack([buggy_pixels(b) for b in range(len(images))])
    assert (buggy.sum(1) - ours).abs().max() > 1e-3


def test_ig_sq_definition(mlp, images):
    t = torch.tensor([1, 2, 0])
    refs = path.noisy_references(images, 3, seed=2)
    assert refs.min() >= 0 and refs.max() <= 1
    alphas = [(j + 1) / 5 for j in range(5)]
    per_ref = torch.stack([torch.stack([manual_ig_pixels(mlp, images[b], int(t[b]), refs[b, r], alphas)
                                        for r in range(3)]) for b in range(3)])
    expected = per_ref.square().mean(1).sum(1)
    torch.testing.assert_close(attribute("ig-sq", mlp, images, t, n_refs=3, steps=5, seed=2), expected,
                               atol=1e-13, rtol=0)
    torch.testing.assert_close(attribute("ig-sg", mlp, images, t, n_refs=3, steps=5, seed=2),
                               per_ref.mean(1).sum(1), atol=1e-13, rtol=0)
    zero_centred = path.noisy_references(images, 3, center="zero", seed=2)
    assert zero_centred.min() < 0


# --------------------------------------------------------------------------------------------
# re-calibration
# --------------------------------------------------------------------------------------------

def test_recalibration_formula(mlp, images):
    t = torch.tensor([0, 3, 1])
    k = 4
    ours = attribute("ig", mlp, images, t, steps=k, recalibrate=True)
    for b in range(3):
        cs = []
        for j in range(1, k + 1):
            p = (j / k * images[b]).clone().requires_grad_(True)
            (g,) = torch.autograd.grad(mlp.logits(p[None])[0, t[b]], p)
            cs.append((images[b] - p.detach()) * g / k)
        cs = torch.stack(cs)
        kept = cs >= 0
        expected = (cs * kept).sum(0) / kept.sum(0).clamp_min(1)
        torch.testing.assert_close(ours[b], expected.sum(0), atol=1e-14, rtol=0)


@pytest.mark.parametrize("method", PATH_METHODS)
def test_recalibrated_maps_non_negative(cnn, images, method):
    t = torch.tensor([0, 2, 4])
    opts = {"ig2": {"steps": 15}, "agi": {"max_iter": 5}, "lpi": {"num_centres": 2}}.get(method, {})
    maps = attribute(method, cnn, images, t, recalibrate=True, **opts)
    assert torch.isfinite(maps).all() and (maps >= 0).all() and maps.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# AGI, LPI, FullGrad specifics
# --------------------------------------------------------------------------------------------

def test_agi_matches_explicit_loop(cnn, images):
    t = torch.tensor([0, 1, 2])
    classes = torch.tensor([[1, 3], [4, 0], [3, 1]])
    eps, iters = 0.05, 6
    ours = attribute("agi", cnn, images, t, classes=classes, epsilon=eps, max_iter=iters)
    expected = torch.zeros(3, 3, H, W, dtype=torch.float64)
    for b in range(3):
        for a in classes[b].tolist():
            x = images[b:b + 1].clone()
            for _ in range(iters):
                p = x.clone().requires_grad_(True)
                logits = cnn.logits(p)
                if int(logits.argmax()) == a:
                    break
                (g_adv,) = torch.autograd.grad(logits[0, a], p, retain_graph=True)
                (g_t,) = torch.autograd.grad(logits[0, t[b]], p)
                nxt = (x + eps * g_adv.sign()).clamp(0, 1)
                expected[b] += (g_t * (x - nxt))[0] / 2
                x = nxt
    torch.testing.assert_close(ours, expected.sum(1), atol=1e-13, rtol=0)
    # random classes: never the target, distinct, at most C − 1 of them
    picked = path._random_other_classes(t, 5, 20, seed=0)
    assert picked.shape == (3, 4)
    for b in range(3):
        assert int(t[b]) not in picked[b].tolist() and len(set(picked[b].tolist())) == 4


def test_lpi_references_and_cache(cnn, images, monkeypatch):
    refs = torch.rand(12, 3, H, W, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    path._LPI_CACHE.clear()
    calls = []
    real = path.kmeans
    monkeypatch.setattr(path, "kmeans", lambda *a, **k: calls.append(1) or real(*a, **k))
    idx, w = path.lpi_references(cnn, refs, num_centres=3)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    again, _ = path.lpi_references(cnn, refs.clone(), num_centres=3)
    assert len(calls) == 1 and torch.equal(idx, again)
    # each chosen reference is the member nearest its own centre, weights = cluster shares
    with torch.no_grad():
        logits = cnn.logits(refs)
    labels, centres = real(logits, 3, 0)
    for i, weight in zip(idx.tolist(), w.tolist()):
        c = int(labels[i])
        members = (labels == c).nonzero().squeeze(1)
        d = (logits[members] - centres[c]).square().sum(1)
        assert int(members[d.argmin()]) == i
        assert weight == pytest.approx(len(members) / 12)
    maps = attribute("lpi", cnn, images, torch.tensor([0, 1, 2]), reference_images=refs, num_centres=3,
                     n_alphas=4)
    assert len(calls) == 1 and maps.shape == (3, H, W) and torch.isfinite(maps).all()


def test_fullgrad_decomposition_is_complete(images):
    net = CNN(seed=3)  # ReLU network: f(x) = Σ input term + Σ bias terms + the linear head's bias
    model = as_model(net, 5, module=net)
    t = torch.tensor([0, 3, 4])
    input_term, bias_terms = gradient.fullgrad_terms(model, images, t)
    assert [b.shape[1] for b in bias_terms] == [4, 4, 6]  # conv1, bn, conv2
    total = input_term.sum(dim=(1, 2, 3)) + sum(b.sum(dim=(1, 2, 3)) for b in bias_terms)
    torch.testing.assert_close(total, f_t(model, images, t) - net.head.bias.detach()[t], atol=1e-12, rtol=0)
    maps = attribute("fullgrad", model, images, t)
    assert (maps >= 0).all() and maps.max() <= 1 + 4 + 4 + 6 + 1e-9


def test_fullgrad_not_applicable(mlp, images):
    t = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="model.module"):
        attribute("fullgrad", mlp, images, t)
    mlp.module = mlp.logits.net
    with pytest.raises(ValueError, match="CNN"):
        attribute("fullgrad", mlp, images, t)
    net = CNN()
    net.train()
    with pytest.raises(ValueError, match="eval"):
        attribute("fullgrad", as_model(net, 5, module=net), images, t)


# --------------------------------------------------------------------------------------------
# every method
# --------------------------------------------------------------------------------------------

def test_every_method_runs_on_a_tiny_cnn(cnn, images):
    assert set(GRADIENT_METHODS + PATH_METHODS) <= set(REGISTRY)
    t = torch.tensor([0, 2, 4])
    before = images.clone()
    opts = {"ig2": {"steps": 10}, "agi": {"max_iter": 4}, "lpi": {"num_centres": 2}, "smoothgrad": {"n_samples": 8}}
    with torch.no_grad():  # methods must switch gradients on themselves
        for method in GRADIENT_METHODS + PATH_METHODS:
            maps = attribute(method, cnn, images, t, **opts.get(method, {}))
            assert maps.shape == (3, H, W) and torch.isfinite(maps).all(), method
            assert maps.abs().sum() > 0, method
            again = attribute(method, cnn, images, t, **opts.get(method, {}))
            torch.testing.assert_close(maps, again, msg=f"{method} not reproducible with its default seed")
    assert torch.equal(images, before) and not images.requires_grad


def test_one_image_needs_references(cnn, images):
    t = torch.tensor([0])
    for method in ("eg", "ig2"):
        with pytest.raises(ValueError, match="references"):
            attribute(method, cnn, images[:1], t)
    assert attribute("eg", cnn, images[:1], t, references=images[1:], n_samples=4).shape == (1, H, W)


def test_ig2_reference_choice(mlp, images):
    t = torch.tensor([0, 0, 1])
    refs = torch.rand(7, 3, H, W, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, cfs = path.ig2_attributions(mlp, images, t, references=refs, n_refs=3, steps=3, return_counterfactuals=True)
    assert [len(c) for c in cfs] == [3, 3, 3]
    _, cfs = path.ig2_attributions(mlp, images, t, references=refs, n_refs=None, steps=3, return_counterfactuals=True)
    assert [len(c) for c in cfs] == [7, 7, 7]
    # default: other batch images of another class (images 0 and 1 share a class)
    _, cfs = path.ig2_attributions(mlp, images, t, steps=0, return_counterfactuals=True)
    assert [len(c) for c in cfs] == [1, 1, 2]
