"""Black-box baselines (RISE, RISE-U, Occlusion, LIME, HSIC, Sobol) on models with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import utils
from baseline_attribution import blackbox
from baseline_attribution.base import REGISTRY, AttributionModel, attribute

H = W = 32
METHODS = ["rise", "rise-u", "occlusion", "lime", "hsic", "sobol"]
SEEDED = ["rise", "rise-u", "lime", "hsic", "sobol"]
# Cheap settings for the structural tests (defaults are used for the known answers).
SMALL = {"rise": {"N": 60}, "rise-u": {"N": 60}, "occlusion": {"window": 8, "stride": 4}, "lime": {"num_samples": 80},
         "hsic": {"nb_design": 64}, "sobol": {"nb_design": 4}}


class Counting:
    """Wraps a logits function; records the batch size of every forward pass."""

    def __init__(self, fn):
        self.fn, self.batches = fn, []

    def __call__(self, x):
        self.batches.append(len(x))
        return self.fn(x)


def quadrant_logits(x: torch.Tensor) -> torch.Tensor:
    """Class 1: 6·(mean red of the top-left quadrant) − 3; class 0: constant 0."""
    red = x[:, 0, : x.shape[-2] // 2, : x.shape[-1] // 2].mean((1, 2))
    return torch.stack([torch.zeros_like(red), 6 * red - 3], -1)


def linear_prob_logits(x: torch.Tensor) -> torch.Tensor:
    """p_1 = 0.2 + 0.6·(mean red of the top-left quadrant) exactly (softmax of [0, logit q])."""
    q = 0.2 + 0.6 * x[:, 0, : x.shape[-2] // 2, : x.shape[-1] // 2].double().mean((1, 2))
    return torch.stack([torch.zeros_like(q), torch.log(q / (1 - q))], -1)


def make_model(fn, batch_size: int = 100, num_classes: int = 2) -> AttributionModel:
    return AttributionModel(logits=fn, num_classes=num_classes, device=torch.device("cpu"),
                            batch_size=batch_size)


@pytest.fixture(scope="module")
def quadrant_image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, H, W, generator=g)
    image[:, 0, : H // 2, : W // 2] = 0.8 + 0.2 * torch.rand(H // 2, W // 2, generator=g)
    return image


def quadrant_means(m: torch.Tensor) -> list[float]:
    h, w = m.shape[0] // 2, m.shape[1] // 2
    return [float(m[:h, :w].mean()), float(m[:h, w:].mean()), float(m[h:, :w].mean()), float(m[h:, w:].mean())]


def top_quarter_in_tl(m: torch.Tensor) -> float:
    """Fraction of the top 25 % pixels of a map that lie in the top-left quadrant."""
    top = m.flatten().argsort(descending=True)[: m.numel() // 4]
    return float(((top // m.shape[1] < m.shape[0] // 2) & (top % m.shape[1] < m.shape[1] // 2)).float().mean())


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                 nn.Flatten(), nn.Linear(24, classes))

    def forward(self, x):
        return 3 * self.net(x)


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------


def test_registered_under_their_names():
    for name, fn in [("rise", blackbox.rise), ("rise-u", blackbox.rise_u), ("occlusion", blackbox.occlusion),
                     ("lime", blackbox.lime), ("hsic", blackbox.hsic), ("sobol", blackbox.sobol)]:
        assert REGISTRY[name] is fn


@pytest.mark.parametrize("method", ["occlusion", "lime", "hsic", "sobol"])
def test_quadrant_model_mass_in_top_left(method, quadrant_image):
    """Defaults; only the top-left quadrant matters, so it must dominate the map."""
    m = REGISTRY[method](make_model(quadrant_logits), quadrant_image, torch.tensor([1]))[0]
    tl, *others = quadrant_means(m)
    assert tl > 0
    assert tl > 2 * max(others), (method, tl, others)
    # stronger than 2×: the other quadrants are nearly (or exactly) zero for these methods
    assert tl > 10 * max(abs(o) for o in others), (method, tl, others)
    assert top_quarter_in_tl(m) >= 0.9


@pytest.mark.parametrize("method", ["rise", "rise-u"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadrant_model_rise(method, seed, quadrant_image):
    """RISE maps are E[p_t | pixel kept]: an offset E[p_t] plus the signal, with Monte-Carlo noise
    proportional to E[p_t] times the masks' coverage Σ m_i/(N·p).  The coverage is what the same
    method gives on a constant model (p_t ≡ 1/2 here), so dividing by it leaves E[p_t | kept]."""
    image, target = quadrant_image, torch.tensor([1])
    m = REGISTRY[method](make_model(quadrant_logits), image, target, seed=seed)[0]
    coverage = 2 * REGISTRY[method](make_model(lambda x: torch.zeros(len(x), 2)), image, target, seed=seed)[0]
    # known answer on the constant model: the coverage averages to 1
    assert abs(float(coverage.mean()) - 1) < 0.05
    tl, *others = quadrant_means(m)
    assert tl > max(others)
    ratio = m / coverage
    median = float(ratio.median())
    tl, *others = (q - median for q in quadrant_means(ratio))
    assert tl > 2 * max(abs(o) for o in others), (tl, others)
    assert top_quarter_in_tl(ratio) >= 0.85


def test_rise_map_is_probability_weighted_mask_sum():
    """With p_t ≡ c the RISE map is c·Σ m_i/(N·p); masks lie in [0, 1] and keep ≈ p of the image."""
    image = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(3))
    c = 1 / (1 + math.e ** -0.7)  # softmax of [0, 0.7]
    model = make_model(lambda x: torch.tensor([[0.0, 0.7]]).expand(len(x), 2))
    m = blackbox.rise(model, image, torch.tensor([1]), N=400, p=0.25)[0]
    assert m.shape == (24, 40)
    # mean mask value is p (bilinear upsampling preserves it in expectation)
    assert float(m.mean()) / c == pytest.approx(1.0, abs=0.06)
    assert float(m.min()) >= 0 and float(m.max()) <= c / 0.25 + 1e-5


def test_occlusion_exact_values(quadrant_image):
    """Window 4, stride 2 on 32×32: pixels ≥ 2 px from the top-left quadrant are never covered by
    a window touching it (exact 0); an interior pixel averages 4 drops of p(x) − p(x with 16 px of
    the quadrant zeroed), computed here by hand."""
    model = make_model(quadrant_logits)
    m = blackbox.occlusion(model, quadrant_image, torch.tensor([1]))[0]
    assert torch.all(m[18:, :] == 0) and torch.all(m[:, 18:] == 0)
    red = quadrant_image[0, 0, :16, :16].double()

    def p(mean_red):
        return 1 / (1 + math.exp(-(6 * mean_red - 3)))

    full = p(float(red.mean()))
    drops = []
    for y in (4, 6):  # windows covering pixel (7, 7) start at 4 and 6 on each axis
        for x in (4, 6):
            occluded = red.clone()
            occluded[y:y + 4, x:x + 4] = 0
            drops.append(full - p(float(occluded.mean())))
    assert float(m[7, 7]) == pytest.approx(sum(drops) / 4, rel=1e-4)


def test_lime_recovers_linear_coefficients(quadrant_image):
    """p_t = 0.2 + 0.6·(mean TL red) is exactly linear in the superpixel indicators (zero baseline),
    with coefficient 0.6·(red in superpixel ∩ TL)/|TL|: unregularised LIME recovers it exactly."""
    image = quadrant_image
    m = blackbox.lime(make_model(linear_prob_logits), image, torch.tensor([1]), alpha=0.0)[0]
    rgb = (image[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    labels = utils.SubRegionDivision(rgb, "slico", 4)
    red = np.zeros((H, W))
    red[:16, :16] = image[0, 0, :16, :16].numpy()
    coef = 0.6 * np.bincount(labels.ravel(), weights=red.ravel()) / (16 * 16)
    np.testing.assert_allclose(m.numpy(), coef[labels], atol=2e-6)
    # with the default ridge (α = 1) the coefficient vector shrinks (smaller L2 norm) but keeps its shape
    ridge_map = blackbox.lime(make_model(linear_prob_logits), image, torch.tensor([1]))[0].numpy()
    first = np.unique(labels.ravel(), return_index=True)[1]
    ridge = ridge_map.ravel()[first]
    assert np.linalg.norm(ridge) < np.linalg.norm(coef)
    assert np.corrcoef(ridge, coef)[0, 1] > 0.99


def cell_coefficients(image: torch.Tensor, g: int = 8) -> torch.Tensor:
    """a_i = 0.6·(red in cell i ∩ TL)/|TL| for the g×g grid of a 32×32 image."""
    red = torch.zeros(H, W, dtype=torch.float64)
    red[:16, :16] = image[0, 0, :16, :16].double()
    return 0.6 * red.reshape(g, H // g, g, W // g).sum((1, 3)) / 256


def graded_image() -> torch.Tensor:
    """TL quadrant cells have red levels 1/16 .. 16/16 in a shuffled order (strongly unequal effects)."""
    g = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, H, W, generator=g)
    levels = (torch.randperm(16, generator=g).double() + 1) / 16
    image[0, 0, :16, :16] = levels.reshape(4, 4).repeat_interleave(4, 0).repeat_interleave(4, 1).float()
    return image


def test_sobol_total_indices_of_additive_model():
    """f = 0.2 + Σ a_i M_i with M_i ~ U(0, 1) independent per cell: S_T,i = a_i² / Σ a_j²;
    cells outside the quadrant have exactly f(A) = f(C_i), hence index exactly 0."""
    image = graded_image()
    a = cell_coefficients(image)
    expected = (a ** 2 / (a ** 2).sum()).float()
    m = blackbox.sobol(make_model(linear_prob_logits, batch_size=2048), image, torch.tensor([1]), nb_design=256)[0]
    cells = m[::4, ::4]  # nearest upsampling: every pixel carries its cell's index
    assert torch.equal(m, cells.repeat_interleave(4, 0).repeat_interleave(4, 1))
    assert torch.all(cells[:, 4:] == 0) and torch.all(cells[4:, :] == 0)
    torch.testing.assert_close(cells, expected, atol=0.01, rtol=0.1)


def test_hsic_orders_cells_by_effect():
    """Same additive model: HSIC grows with |a_i| (Spearman ≈ 1 over the 16 quadrant cells) and is
    near 0 for cells the model ignores."""
    image = graded_image()
    a = cell_coefficients(image)[:4, :4].flatten()
    m = blackbox.hsic(make_model(linear_prob_logits), image, torch.tensor([1]))[0]
    cells = m[::4, ::4]
    assert torch.all(m >= 0)
    tl = cells[:4, :4].flatten().double()
    ranks = lambda v: v.argsort().argsort().double()  # noqa: E731
    rho = float(torch.corrcoef(torch.stack([ranks(tl), ranks(a)]))[0, 1])
    assert rho > 0.9
    outside = torch.cat([cells[:, 4:].flatten(), cells[4:, :4].flatten()])
    assert float(outside.max()) < 0.2 * float(tl.max())


# --------------------------------------------------------------------------------------------
# Reproducibility, batching, shapes, options
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_map(method, quadrant_image):
    model = make_model(quadrant_logits)
    first = REGISTRY[method](model, quadrant_image, torch.tensor([1]), **SMALL[method])
    second = REGISTRY[method](model, quadrant_image, torch.tensor([1]), **SMALL[method])
    assert torch.equal(first, second)


@pytest.mark.parametrize("method", SEEDED)
def test_other_seed_other_map(method, quadrant_image):
    model = make_model(quadrant_logits)
    first = REGISTRY[method](model, quadrant_image, torch.tensor([1]), seed=0, **SMALL[method])
    other = REGISTRY[method](model, quadrant_image, torch.tensor([1]), seed=1, **SMALL[method])
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("method", METHODS)
def test_batch_size_invariance_and_forward_counts(method):
    """batch_size 7 and 100 give the same maps; every forward has ≤ batch_size images and the
    number of images scored per explained image is the documented count.  The CNN runs in float64:
    in float32 its outputs themselves change in the last bits with the batch size (other conv
    kernels), which Sobol's division by a small variance amplifies to ~1e-4 relative."""
    images = torch.rand(2, 3, 24, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    targets = torch.tensor([0, 2])
    cnn = SmallCNN().double().eval()
    maps = {}
    for bs in (7, 100):
        counter = Counting(cnn)
        maps[bs] = REGISTRY[method](make_model(counter, bs, 3), images, targets, **SMALL[method])
        assert max(counter.batches) <= bs
        scored = sum(counter.batches)
    torch.testing.assert_close(maps[7], maps[100], rtol=1e-6, atol=1e-7)
    windows = 5 * 7  # window 8, stride 4: starts 0..16 on 24 rows, 0..24 on 32 columns
    per_image = {"rise": 60, "rise-u": 60, "occlusion": 1 + windows, "lime": 80, "hsic": 64,
                 "sobol": 4 * (64 + 2)}[method]
    assert scored == 2 * per_image


def test_default_forward_counts_at_224():
    """Documented default: occlusion (window 28, stride 14) scores 1 + 15·15 images at 224×224."""
    assert len(blackbox._positions(224, 28, 14)) == 15
    counter = Counting(lambda x: torch.zeros(len(x), 2))
    image = torch.zeros(1, 3, 224, 224)
    blackbox.occlusion(make_model(counter, 256), image, torch.tensor([0]))
    assert sum(counter.batches) == 226


@pytest.mark.parametrize("method", METHODS)
def test_shapes_finite_and_batch_independent(method):
    images = torch.rand(2, 3, 24, 32, generator=torch.Generator().manual_seed(2))
    model = make_model(SmallCNN().eval(), 50, 3)
    maps = attribute(method, model, images, [1, 2], **SMALL[method])
    assert maps.shape == (2, 24, 32) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all()
    assert maps.abs().sum() > 0
    alone = attribute(method, model, images[1:], [2], **SMALL[method])
    torch.testing.assert_close(alone[0], maps[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method, options, name", [
    ("rise", {"N": 0}, "N"), ("rise", {"p": 0.0}, "p"), ("rise", {"p": 1.0}, "p"), ("rise", {"p": 1.5}, "p"),
    ("rise", {"s": 0}, "s"), ("rise", {"seed": -1}, "seed"), ("rise-u", {"N": 0}, "N"),
    ("rise-u", {"p": -0.1}, "p"), ("occlusion", {"window": 0}, "window"), ("occlusion", {"window": 33}, "window"),
    ("occlusion", {"stride": 0}, "stride"),
    ("lime", {"num_samples": 0}, "num_samples"), ("lime", {"p": 1.0}, "p"),
    ("lime", {"kernel_width": 0.0}, "kernel_width"), ("lime", {"alpha": -1.0}, "alpha"),
    ("lime", {"region_size": 0}, "region_size"),
    ("hsic", {"nb_design": 1}, "nb_design"), ("hsic", {"grid_size": 0}, "grid_size"),
    ("sobol", {"nb_design": 0}, "nb_design"), ("sobol", {"grid_size": 2.5}, "grid_size"),
])
def test_bad_options_name_the_option(method, options, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        REGISTRY[method](make_model(quadrant_logits), torch.rand(1, 3, H, W), torch.tensor([1]), **options)
