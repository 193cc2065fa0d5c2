"""Saliency-map faithfulness metrics against oracle models whose answers are known by hand.

Models (2 classes, target 1 unless said otherwise):
* sum:       logit_1 = Σ of every input value, logit_0 = 0 (output drop = removed mass);
* red_sum:   logit_1 = Σ of the red channel;
* mean_red:  p_1 = mean of the red channel exactly (logits = log(1 − q), log q);
* step:      p_1 ≈ 1 iff one given pixel is visible, ≈ 0 when it is black;
* cells:     logit_1 = Σ_c w_c · mean(cell c) over a 4×4 grid (exactly additive over cells).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from baseline_attribution.base import AttributionModel, from_scorer
from evals.localization import energy_in_mask, first_regions_hit, pointing_game
from evals.saliency_metrics import (
    diffid,
    highest_confidence_ordering,
    highest_confidence_saliency,
    incremental_deletion,
    insertion_deletion,
    mufidelity,
    normalisation_mean,
    rise_blur,
    rise_kernel,
    sensitivity_n,
    single_deletion_score,
)
from submodular_attribution.common.curves import mean_finite
from submodular_attribution.common.images import IMAGENET_MEAN
from submodular_attribution.common.results import LoadedResult, rank_map_saliency

CPU = torch.device("cpu")


def make_model(logit_1, batch_size: int = 7) -> AttributionModel:
    def logits(images: torch.Tensor) -> torch.Tensor:
        value = logit_1(images.double())
        return torch.stack([torch.zeros_like(value), value], dim=-1)

    return AttributionModel(logits=logits, num_classes=2, device=CPU, batch_size=batch_size)


def sum_model(**kw) -> AttributionModel:
    return make_model(lambda x: x.sum(dim=(1, 2, 3)), **kw)


def red_sum_model() -> AttributionModel:
    return make_model(lambda x: x[:, 0].sum(dim=(1, 2)))


def mean_red_model(batch_size: int = 7) -> AttributionModel:
    def logits(images: torch.Tensor) -> torch.Tensor:
        q = images[:, 0].double().mean(dim=(1, 2)).clamp(1e-12, 1 - 1e-12)
        return torch.stack([torch.log1p(-q), torch.log(q)], dim=-1)

    return AttributionModel(logits=logits, num_classes=2, device=CPU, batch_size=batch_size)


def step_model(row: int, col: int) -> AttributionModel:
    return make_model(lambda x: 1000.0 * (x[:, :, row, col].mean(dim=1) - 0.05))


def cell_model(weights: torch.Tensor, size: int, grid: int = 4) -> AttributionModel:
    """logit = Σ_c w_c · mean over channels and pixels of cell c."""
    cell = size // grid
    per_pixel = weights.double().reshape(grid, grid).repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    per_pixel = per_pixel / (3 * cell * cell)
    return make_model(lambda x: (x * per_pixel).sum(dim=(1, 2, 3)))


def red_image(values) -> torch.Tensor:
    """3×H×W image with every channel equal to ``values`` (H×W)."""
    red = torch.as_tensor(values, dtype=torch.float32)
    return red.expand(3, *red.shape).clone()


# --------------------------------------------------------------------------- insertion / deletion

TINY_RED = [[0.1, 0.2], [0.3, 0.4]]
TINY_SALIENCY = np.array([[1.0, 4.0], [3.0, 2.0]])  # order: pixel 1, 2, 3, 0
TINY_INS = [0.0, 0.05, 0.125, 0.225, 0.25]  # mean red after revealing 0..4 pixels
TINY_DEL = [0.25, 0.2, 0.125, 0.025, 0.0]


def test_auc_is_the_hand_trapezoid_on_the_area_axis():
    out = insertion_deletion(mean_red_model(), red_image(TINY_RED), 1, TINY_SALIENCY, steps=4)
    np.testing.assert_allclose(out["x_ins"], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(out["pixels"], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(out["y_ins"], TINY_INS, atol=1e-6)
    np.testing.assert_allclose(out["y_del"], TINY_DEL, atol=1e-6)
    ins = 0.25 * ((0 + 0.05) + (0.05 + 0.125) + (0.125 + 0.225) + (0.225 + 0.25)) / 2  # 0.13125
    dele = 0.25 * ((0.25 + 0.2) + (0.2 + 0.125) + (0.125 + 0.025) + (0.025 + 0)) / 2  # 0.11875
    assert out["auc_ins"] == pytest.approx(ins, abs=1e-6)
    assert out["auc_del"] == pytest.approx(dele, abs=1e-6)
    # 101 area points on 4 pixels: repeated x give zero-width trapezoids, same areas.
    dense = insertion_deletion(mean_red_model(), red_image(TINY_RED), 1, TINY_SALIENCY)
    assert len(dense["x_ins"]) == 101
    assert dense["auc_ins"] == pytest.approx(ins, abs=1e-6)
    assert dense["auc_del"] == pytest.approx(dele, abs=1e-6)


def test_batch_size_does_not_change_the_curves():
    image = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(0))
    saliency = np.random.default_rng(0).random((6, 6))
    one = insertion_deletion(mean_red_model(batch_size=1), image, 1, saliency, steps=9)
    many = insertion_deletion(mean_red_model(batch_size=64), image, 1, saliency, steps=9)
    np.testing.assert_allclose(one["y_ins"], many["y_ins"])
    np.testing.assert_allclose(one["y_del"], many["y_del"])


def test_xplique_preset_normalised_steps():
    out = insertion_deletion(mean_red_model(), red_image(TINY_RED), 1, TINY_SALIENCY, preset="xplique", steps=2)
    np.testing.assert_array_equal(out["pixels"], [0, 2, 4])
    np.testing.assert_allclose(out["x_ins"], [0, 0.5, 1])
    assert out["auc_ins"] == pytest.approx((0 + 0.125 + 0.125 + 0.25) / 2 / 2, abs=1e-6)
    assert out["auc_del"] == pytest.approx((0.25 + 0.125 + 0.125 + 0) / 2 / 2, abs=1e-6)
    # default 10 steps: k = ⌊i·N/10⌋
    default = insertion_deletion(mean_red_model(), red_image(np.full((3, 3), 0.5)), 1, np.ones((3, 3)),
                                 preset="xplique")
    np.testing.assert_array_equal(default["pixels"], [(i * 9) // 10 for i in range(11)])


def test_rise_preset_steps_and_blurred_start():
    image = red_image(np.full((16, 16), 0.5))
    out = insertion_deletion(mean_red_model(), image, 1, np.arange(256.0).reshape(16, 16), preset="rise")
    np.testing.assert_array_equal(out["pixels"], [0, 224, 256])  # 224 pixels per step
    np.testing.assert_allclose(out["x_ins"], [0, 0.5, 1])
    y = out["y_ins"]
    assert 0.1 < y[0] < 0.5  # blurred (dark border from zero padding), not black
    assert y[-1] == pytest.approx(0.5)
    assert out["auc_ins"] == pytest.approx((y.sum() - y[0] / 2 - y[-1] / 2) / 2)
    assert out["y_del"][-1] == pytest.approx(0.0, abs=1e-9)  # deletion to zeros
    fixed = insertion_deletion(mean_red_model(), image, 1, np.ones((16, 16)), preset="fixed")
    np.testing.assert_array_equal(fixed["pixels"], [0, 128, 256])  # ⌈256/224⌉ = 2 equal steps


def test_rise_blur_kernel():
    kernel = rise_kernel()
    assert kernel.shape == (11, 11)
    assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(kernel, kernel.T) and torch.allclose(kernel, kernel.flip(0))
    assert int(kernel.argmax()) == 5 * 11 + 5
    blurred = rise_blur(torch.full((3, 24, 24), 0.7))
    assert torch.allclose(blurred[:, 5:-5, 5:-5], torch.tensor(0.7), atol=1e-5)  # interior untouched
    assert float(blurred[0, 0, 0]) < 0.7


def test_step_model_insertion_one_deletion_zero():
    size, row, col = 16, 5, 7
    image = 0.5 + 0.5 * torch.rand(3, size, size, generator=torch.Generator().manual_seed(1))
    saliency = np.random.default_rng(1).random((size, size))
    saliency[row, col] = 2.0  # ranked first
    out = insertion_deletion(step_model(row, col), image, 1, saliency)
    first = round(256 / 100) / 256  # the first area point reveals round(2.56) = 3 pixels
    assert out["x_ins"][1] == pytest.approx(first)
    assert out["auc_ins"] == pytest.approx(1 - first / 2, abs=1e-6)
    assert out["auc_del"] == pytest.approx(first / 2, abs=1e-6)
    saliency[row, col] = -1.0  # ranked last: the target appears only on the full image
    worst = insertion_deletion(step_model(row, col), image, 1, saliency)
    assert worst["auc_ins"] < 0.01 and worst["auc_del"] > 0.99


def test_rank_map_saliency_follows_the_region_order():
    ranks = np.array([[0, 0, 1], [2, 1, 1]])
    saliency = rank_map_saliency(ranks)
    np.testing.assert_allclose(saliency, np.array([[3, 3, 2], [1, 2, 2]]) / 3)
    image = red_image([[0.9, 0.8, 0.1], [0.5, 0.2, 0.3]])
    out = insertion_deletion(mean_red_model(), image, 1, saliency, steps=6)
    # region 0 (raster order), then region 1 (raster order), then region 2
    revealed = np.cumsum([0, 0.9, 0.8, 0.1, 0.2, 0.3, 0.5]) / 6
    np.testing.assert_allclose(out["y_ins"], revealed, atol=1e-6)


def test_bad_inputs():
    model, image = mean_red_model(), red_image(TINY_RED)
    with pytest.raises(ValueError, match="preset"):
        insertion_deletion(model, image, 1, TINY_SALIENCY, preset="nope")
    with pytest.raises(ValueError, match="does not match"):
        insertion_deletion(model, image, 1, np.ones((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        insertion_deletion(model, image, 1, np.full((2, 2), np.nan))


# --------------------------------------------------------------------------- MuFidelity / Sensitivity-N

def test_mufidelity_is_plus_and_minus_one_for_the_sum_model():
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    attribution = image.sum(0).numpy()
    for correlation in ("spearman", "pearson"):
        plus = mufidelity(sum_model(), image, 1, attribution, grid=4, output="logit", correlation=correlation)
        minus = mufidelity(sum_model(), image, 1, -attribution, grid=4, output="logit", correlation=correlation)
        assert plus == pytest.approx(1.0, abs=1e-9)
        assert minus == pytest.approx(-1.0, abs=1e-9)
    for subset in ("fixed", "bernoulli"):  # fixed-size subsets (the paper's |S|) too
        value = mufidelity(sum_model(), image, 1, attribution, grid=4, output="logit", subset=subset, seed=5)
        assert value == pytest.approx(1.0, abs=1e-9)
    # probabilities are a monotone function of the logit here: rank correlation unchanged
    small = 0.02 * image
    assert mufidelity(sum_model(), small, 1, small.sum(0), grid=4) == pytest.approx(1.0)


def test_random_subsets_sizes():
    from evals.saliency_metrics import _random_subsets

    fixed = _random_subsets(np.random.default_rng(0), 50, 49, 0.2, "fixed")
    assert (fixed.sum(axis=1) == 10).all()  # round(0.2·49) = 10 cells every time
    bernoulli = _random_subsets(np.random.default_rng(0), 2000, 49, 0.2, "bernoulli")
    assert bernoulli.mean() == pytest.approx(0.2, abs=0.01) and bernoulli.sum(axis=1).std() > 1
    with pytest.raises(ValueError, match="subset"):
        _random_subsets(np.random.default_rng(0), 2, 4, 0.5, "other")


def test_mufidelity_undefined_for_a_constant_model():
    constant = make_model(lambda x: torch.zeros(len(x), dtype=torch.float64))
    assert math.isnan(mufidelity(constant, torch.rand(3, 8, 8), 1, np.random.rand(8, 8), grid=4))


def test_sensitivity_n_is_one_for_the_sum_model():
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
    attribution = image.sum(0)
    scores = sensitivity_n(sum_model(), image, 1, attribution, ratios=(0.1, 0.5, 0.9), num_samples=20)
    assert list(scores) == [0.1, 0.5, 0.9]
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in scores.values())
    cells = sensitivity_n(sum_model(), image, 1, -attribution, ratios=(0.3,), num_samples=20, grid=4)
    assert cells[0.3] == pytest.approx(-1.0, abs=1e-9)


# --------------------------------------------------------------------------- DiffID

def test_diffid_hand_case():
    image = red_image([[0.1, 0.2, 0.3, 0.4]])  # logit(x) = 1.0
    out = diffid(red_sum_model(), image, 1, np.array([[4.0, 3.0, 2.0, 1.0]]), ratios=(0.25, 0.5))
    # r = 0.25: insertion drops pixel 3 → fill 0.2 → 0.8; deletion drops pixel 0 → fill 0.3 → 1.2
    # r = 0.5: insertion drops 3, 2 → fill 0.15 → 0.6; deletion drops 0, 1 → fill 0.35 → 1.4
    np.testing.assert_allclose(out["insertion_curve"], [0.8, 0.6], atol=1e-6)
    np.testing.assert_allclose(out["deletion_curve"], [1.2, 1.4], atol=1e-6)
    assert out["insertion"] == pytest.approx(0.7, abs=1e-6)
    assert out["deletion"] == pytest.approx(1.3, abs=1e-6)
    assert out["diffid"] == pytest.approx(-0.6, abs=1e-6)
    signed = diffid(red_sum_model(), image, 1, np.array([[-4.0, 3.0, 2.0, 1.0]]), ratios=(0.25, 0.5))
    assert signed["diffid"] == pytest.approx(out["diffid"])  # ranked by |attribution|


def test_diffid_scalar_mean_fill():
    image = torch.zeros(3, 1, 4)
    image[0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])  # green and blue are 0
    saliency = np.array([[4.0, 3.0, 2.0, 1.0]])
    channel = diffid(red_sum_model(), image, 1, saliency, ratios=(0.25, 0.5))
    np.testing.assert_allclose(channel["insertion_curve"], [0.8, 0.6], atol=1e-6)
    scalar = diffid(red_sum_model(), image, 1, saliency, ratios=(0.25, 0.5), per_channel=False)
    # fill = mean of all 3 channels of the kept pixels: 0.6/9, 0.9/9, 0.3/6, 0.7/6
    np.testing.assert_allclose(scalar["insertion_curve"], [0.6 + 0.6 / 9, 0.3 + 2 * 0.3 / 6], atol=1e-6)
    np.testing.assert_allclose(scalar["deletion_curve"], [0.9 + 0.9 / 9, 0.7 + 2 * 0.7 / 6], atol=1e-6)


# --------------------------------------------------------------------------- Single Deletion Score

def test_single_deletion_score_additive_model():
    size, grid = 8, 4
    gen = torch.Generator().manual_seed(4)
    weights = torch.randn(grid * grid, generator=gen, dtype=torch.float64)
    image = torch.rand(3, size, size, generator=gen)
    model = cell_model(weights, size)
    cell_means = image.double().reshape(3, grid, 2, grid, 2).mean(dim=(0, 2, 4)).reshape(-1)
    contribution = (weights * cell_means).reshape(grid, grid)
    exact = (contribution / 4).repeat_interleave(2, 0).repeat_interleave(2, 1).numpy()  # spread over 2×2 px
    assert single_deletion_score(model, image, 1, exact, baseline=0.0) == pytest.approx(1.0)
    assert single_deletion_score(model, image, 1, -exact, baseline=0.0) == pytest.approx(-1.0)
    assert single_deletion_score(model, image, 1, -exact, baseline=0.0, absolute=True) == pytest.approx(
        single_deletion_score(model, image, 1, np.abs(exact), baseline=0.0))
    # default baseline: the normalisation mean (ImageNet here), drop_c = w_c·(mean_c − mean(baseline))
    shifted = (weights * (cell_means - np.mean(IMAGENET_MEAN))).reshape(grid, grid)
    shifted = shifted.repeat_interleave(2, 0).repeat_interleave(2, 1).numpy()
    assert single_deletion_score(model, image, 1, shifted) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    random_scores = [single_deletion_score(model, image, 1, rng.standard_normal((size, size)), baseline=0.0)
                     for _ in range(200)]
    mean, dropped = mean_finite(random_scores)
    assert dropped == 0 and abs(mean) < 0.15


def test_single_deletion_score_nan_when_constant():
    model = cell_model(torch.ones(16), 8)
    assert math.isnan(single_deletion_score(model, torch.rand(3, 8, 8), 1, np.ones((8, 8)), baseline=0.0))


def test_mean_finite_drops_and_counts():
    assert mean_finite([0.5, float("nan"), 1.0, float("inf")]) == (0.75, 2)
    mean, dropped = mean_finite(np.array([np.nan, np.nan]))
    assert math.isnan(mean) and dropped == 2


def test_normalisation_mean_reads_the_scorer():
    class Scorer:
        pixel_mean = (0.1, 0.2, 0.3)
        num_classes, device, attribution_module = 2, CPU, None

        def logits(self, images):
            return images.flatten(1)[:, :2]

        def representation(self, images):
            return images.flatten(1)

        def __call__(self, images):
            raise AssertionError("not used")

    model = from_scorer(Scorer())
    assert normalisation_mean(model) == pytest.approx((0.1, 0.2, 0.3))
    assert normalisation_mean(sum_model()) == IMAGENET_MEAN


# --------------------------------------------------------------------------- incremental deletion

def test_incremental_deletion_hand_case():
    image = red_image([[0.1, 0.2, 0.3, 0.4]])
    saliency = np.array([[4.0, 3.0, 2.0, 1.0]])
    # steps 4: delete 0, 1, 2, 3 pixels; p = mean red
    up = incremental_deletion(mean_red_model(), image, 1, saliency, order="ascending", steps=4, baseline=0.0)
    down = incremental_deletion(mean_red_model(), image, 1, saliency, order="descending", steps=4, baseline=0.0)
    assert up == pytest.approx((0.25 + 0.15 + 0.075 + 0.025) / 4)
    assert down == pytest.approx((0.25 + 0.225 + 0.175 + 0.1) / 4)
    with pytest.raises(ValueError, match="order"):
        incremental_deletion(mean_red_model(), image, 1, saliency, order="random")


# --------------------------------------------------------------------------- highest confidence

def test_highest_confidence_ordering():
    result = LoadedResult(
        json_path=Path("json/c/x.json"),
        record={"consistency_score": [0.2, 0.6, 0.5, 0.9], "baseline_score": 0.05},
        areas=np.array([0.1, 0.3, 0.6, 1.0]),
        npy=None,
    )
    out = highest_confidence_ordering(result)
    assert out == {0.25: (0.2, 0.1), 0.5: (0.6, 0.3), 0.75: (0.6, 0.3), 1.0: (0.9, 1.0)}
    small = highest_confidence_ordering(result, budgets=(0.05,))
    assert all(math.isnan(v) for v in small[0.05])
    assert highest_confidence_ordering(result, budgets=(0.05,), include_empty=True) == {0.05: (0.05, 0.0)}


def test_highest_confidence_saliency():
    out = highest_confidence_saliency(mean_red_model(), red_image(TINY_RED), 1, TINY_SALIENCY,
                                      budgets=(0.3, 0.5, 1.0), n_points=5)
    assert out[0.3] == pytest.approx((0.05, 0.25))  # ⌊0.3·4⌋ = 1 pixel
    assert out[0.5] == pytest.approx((0.125, 0.5))
    assert out[1.0] == pytest.approx((0.25, 1.0))
    none = highest_confidence_saliency(mean_red_model(), red_image(TINY_RED), 1, TINY_SALIENCY, budgets=(0.0,))
    assert all(math.isnan(v) for v in none[0.0])
    empty = highest_confidence_saliency(mean_red_model(), red_image(TINY_RED), 1, TINY_SALIENCY, budgets=(0.0,),
                                        include_empty=True)
    assert empty[0.0] == pytest.approx((0.0, 0.0), abs=1e-9)


# --------------------------------------------------------------------------- localisation

def test_pointing_game_and_energy():
    mask = np.array([[True, False], [False, True]])
    assert pointing_game(np.array([[0.0, 1.0], [0.5, 2.0]]), mask)
    assert not pointing_game(np.array([[0.0, 3.0], [0.5, 2.0]]), mask)
    assert not pointing_game(np.array([[1.0, 2.0], [2.0, 2.0]]), mask)  # tie: first in raster order wins
    assert pointing_game(np.array([[2.0, 2.0], [2.0, 1.0]]), mask)
    assert energy_in_mask(np.array([[1.0, 2.0], [-5.0, 1.0]]), mask) == pytest.approx(0.5)
    assert energy_in_mask(np.array([[3.0, 1.0], [0.0, 0.0]]), mask) == pytest.approx(0.75)
    assert energy_in_mask(np.array([[-1.0, 0.0], [0.0, -2.0]]), mask) == 0.0
    assert energy_in_mask(torch.ones(2, 2), torch.as_tensor(mask)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="differ in shape"):
        pointing_game(np.ones((2, 2)), np.ones((3, 3), bool))
    assert first_regions_hit(np.array([[0, 1], [1, 1]]), mask)  # still there
