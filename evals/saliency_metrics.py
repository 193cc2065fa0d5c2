"""Faithfulness metrics of one saliency map, whatever method produced it.

Every function takes

* ``model``: an :class:`~baseline_attribution.base.AttributionModel`;
* ``image``: 3×H×W float, RGB in [0, 1] (moved to ``model.device``);
* ``target``: the class index whose output is scored;
* ``saliency``: H×W map (numpy array or tensor, finite), larger = more important.

Perturbed images are built on the device, ``model.batch_size`` at a time, and scored
without gradients. Each docstring states the output used (softmax *probability* or *logit*
of the target), the fill value of removed pixels, the ranking and its tie-breaking, the x
axis, the number of steps and the AUC rule.

Conventions shared by all functions:

* Fill values are given in the model's input space, RGB in [0, 1] (the scorer normalises
  afterwards): a float (every channel), three per-channel values, or a 3×H×W tensor.
  ``0.0`` is black. "Zeros in normalised space" is the normalisation mean, see
  :func:`normalisation_mean`.
* Rankings are *stable*: pixels with equal saliency keep raster order (row-major index),
  so "descending" puts the earlier pixel first among ties, "ascending" too.
* Pixel counts from fractions: stated per function (round, floor).
* Correlations return NaN when undefined (a constant input); aggregate over images with
  :func:`submodular_attribution.common.curves.mean_finite`, which drops and counts them.

:data:`METRICS` registers the metrics of the method benchmark (``evals.benchmark``): each entry
says how to get one number from a map, its column header and direction, and what it computes.
A new metric there is a new column of the benchmark's table and a new field of its rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from baseline_attribution.base import AttributionModel
from submodular_attribution.common.curves import mean_finite, trapezoid_auc
from submodular_attribution.common.images import IMAGENET_MEAN
from submodular_attribution.common.results import LoadedResult
from submodular_attribution.regions import grid_division

from .localization import energy_in_mask, pointing_game

DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_BUDGETS = (0.25, 0.5, 0.75, 1.0)
PRESETS = ("smdl", "fixed", "xplique", "rise")
RISE_PIXELS_PER_STEP = 224
RISE_KERNEL_SIZE = 11
RISE_KERNEL_SIGMA = 5.0

Fill = float | Sequence[float] | torch.Tensor | None


# --------------------------------------------------------------------------- helpers

def _image(model: AttributionModel, image: torch.Tensor) -> torch.Tensor:
    image = torch.as_tensor(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be 3×H×W, got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"image must be float RGB in [0, 1], got dtype {image.dtype}")
    return image.detach().to(model.device)


def _saliency(saliency, shape: tuple[int, int]) -> np.ndarray:
    """The map as an H×W float64 numpy array, checked against the image size."""
    if isinstance(saliency, torch.Tensor):
        saliency = saliency.detach().cpu().double().numpy()
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.shape != tuple(shape):
        raise ValueError(f"saliency map {saliency.shape} does not match the image's H×W {tuple(shape)}")
    if not np.isfinite(saliency).all():
        raise ValueError("saliency map has non-finite values")
    return saliency


def _check_output(output: str) -> None:
    if output not in ("prob", "logit"):
        raise ValueError(f"output must be 'prob' or 'logit', got {output!r}")


def _rank(saliency: np.ndarray, descending: bool) -> np.ndarray:
    """H×W int64: each pixel's position when sorted by saliency (stable: ties by raster index)."""
    from scipy.stats import rankdata

    flat = saliency.ravel()
    # "ordinal" ranks ties in order of appearance, i.e. a stable sort
    rank = rankdata(-flat if descending else flat, method="ordinal") - 1
    return rank.astype(np.int64).reshape(saliency.shape)


def _fill(baseline: Fill, image: torch.Tensor) -> torch.Tensor:
    """The fill image (3×H×W, on the image's device) for a float, 3 values or a 3×H×W tensor."""
    if isinstance(baseline, torch.Tensor) and baseline.ndim == 3:
        if tuple(baseline.shape) != tuple(image.shape):
            raise ValueError(f"baseline {tuple(baseline.shape)} does not match the image {tuple(image.shape)}")
        return baseline.to(device=image.device, dtype=image.dtype)
    values = torch.as_tensor(baseline, dtype=image.dtype, device=image.device).reshape(-1)
    if values.numel() == 1:
        return torch.full_like(image, float(values))
    if values.numel() == 3:
        return values.view(3, 1, 1).expand_as(image).clone()
    raise ValueError(f"baseline must be a float, 3 per-channel values or a 3×H×W tensor, got {values.numel()} values")


def normalisation_mean(model: AttributionModel) -> tuple[float, float, float]:
    """RGB values in [0, 1] that the model's scorer maps to zero ("zeros in normalised space").

    ``model.pixel_mean`` (set by ``from_scorer`` from the scorer's normalisation), else the
    ImageNet mean (0.485, 0.456, 0.406).
    """
    if model.pixel_mean is not None:
        return tuple(model.pixel_mean)  # type: ignore[return-value]
    return IMAGENET_MEAN


def _score(model: AttributionModel, build: Callable[[int, int], torch.Tensor], n: int, target: int,
           output: str) -> np.ndarray:
    """(n,) float64 target outputs of the images ``build(lo, hi)``, ``batch_size`` at a time
    (:meth:`AttributionModel.batched`, no gradients).

    output "prob": softmax probability (``model.probs``); "logit": the raw logit.
    """
    _check_output(output)
    if n == 0:
        return np.zeros(0)
    fn = model.probs if output == "prob" else model.logits
    return model.batched(lambda batch: fn(batch)[:, target], build, n).double().cpu().numpy()


def _reveal_scores(model, image, target, rank: np.ndarray, ks: np.ndarray, start: torch.Tensor,
                   end: torch.Tensor, output: str) -> np.ndarray:
    """Scores of the images where pixels with rank < k take ``end``'s values, the rest ``start``'s."""
    rank_t = torch.as_tensor(rank, device=image.device)
    ks_t = torch.as_tensor(np.asarray(ks, dtype=np.int64), device=image.device)

    def build(lo: int, hi: int) -> torch.Tensor:
        mask = (rank_t[None] < ks_t[lo:hi, None, None]).unsqueeze(1)  # B×1×H×W
        return torch.where(mask, end[None], start[None])

    return _score(model, build, len(ks), target, output)


def _masked_scores(model, image, target, removed: np.ndarray, fill: torch.Tensor, output: str) -> np.ndarray:
    """Scores of the images where ``removed`` (S×H×W bool) pixels take ``fill``'s values."""

    def build(lo: int, hi: int) -> torch.Tensor:
        mask = torch.as_tensor(removed[lo:hi], device=image.device).unsqueeze(1)
        return torch.where(mask, fill[None], image[None])

    return _score(model, build, len(removed), target, output)


def _random_subsets(rng: np.random.Generator, num_samples: int, num_features: int, fraction: float,
                    subset: str) -> np.ndarray:
    """(num_samples, num_features) bool, True = removed.

    "bernoulli": each feature independently with probability ``fraction``;
    "fixed": exactly round(fraction·num_features) features (half up), uniformly at random.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fractions must be in [0, 1], got {fraction}")
    if subset == "bernoulli":
        return rng.random((num_samples, num_features)) < fraction
    if subset == "fixed":
        count = int(math.floor(fraction * num_features + 0.5))
        return np.argsort(rng.random((num_samples, num_features)), axis=1) < count
    raise ValueError(f"subset must be 'bernoulli' or 'fixed', got {subset!r}")


def _correlate(a, b, correlation: str) -> float:
    """``scipy.stats.spearmanr`` (ties get their average rank) or ``pearsonr`` of two 1-D samples.

    NaN when the correlation is undefined: fewer than 2 values, a non-finite value, or an
    exactly constant input. Checked here, with scipy's own test (all equal), so scipy's
    ConstantInputWarning cannot fire.
    """
    from scipy import stats

    if correlation not in ("spearman", "pearson"):
        raise ValueError(f"correlation must be 'spearman' or 'pearson', got {correlation!r}")
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    if np.ptp(a) == 0.0 or np.ptp(b) == 0.0:  # exactly constant: no correlation defined
        return float("nan")
    result = stats.spearmanr(a, b) if correlation == "spearman" else stats.pearsonr(a, b)
    return float(result.statistic)


# --------------------------------------------------------------------------- insertion / deletion

def rise_kernel() -> torch.Tensor:
    """The 11×11 blur kernel of RISE's evaluation code (float32, sums to 1).

    RISE builds it as ``scipy.ndimage.gaussian_filter`` (σ = 5, scipy's defaults: reflect
    mode, truncate 4) of an 11×11 unit impulse, so it is a Gaussian folded back at the
    kernel's edges rather than a plain truncated one.
    """
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((RISE_KERNEL_SIZE, RISE_KERNEL_SIZE))
    impulse[RISE_KERNEL_SIZE // 2, RISE_KERNEL_SIZE // 2] = 1.0
    return torch.from_numpy(gaussian_filter(impulse, RISE_KERNEL_SIGMA)).float()


def rise_blur(image: torch.Tensor) -> torch.Tensor:
    """RISE's insertion start: each channel convolved with :func:`rise_kernel`, zero padding
    of 5 (so borders darken towards 0, as in RISE's ``conv2d(..., padding=klen // 2)``).

    RISE blurs the *normalised* tensor, where zero padding means the dataset-mean colour;
    here images are RGB in [0, 1], where zero padding means black. Away from the 5-pixel
    border the two agree exactly (blurring is linear and the kernel sums to 1).
    """
    kernel = rise_kernel().to(device=image.device, dtype=image.dtype)
    weight = kernel.expand(3, 1, *kernel.shape).contiguous()
    return F.conv2d(image[None], weight, padding=RISE_KERNEL_SIZE // 2, groups=3)[0]


def _steps_for(preset: str, n: int, steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(pixel counts k_i, x axis) of a preset, both (S+1,), k_0 = 0 and k_S = n (all pixels)."""
    if steps is not None and int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if preset in ("smdl", "fixed"):
        s = int(steps) if steps is not None else (100 if preset == "smdl" else math.ceil(n / RISE_PIXELS_PER_STEP))
        ks = np.floor(np.arange(s + 1) * n / s + 0.5).astype(np.int64)  # round half up
        return ks, ks / n
    if preset == "xplique":
        s = int(steps) if steps is not None else 10
        ks = (np.arange(s + 1) * n) // s  # floor, as Xplique's linspace(..., dtype=int32)
        return ks, np.arange(s + 1) / s
    if preset == "rise":
        if steps is None:
            pixels, s = RISE_PIXELS_PER_STEP, math.ceil(n / RISE_PIXELS_PER_STEP)
        else:
            s = int(steps)
            pixels = math.ceil(n / s)
        ks = np.minimum(np.arange(s + 1) * pixels, n)
        return ks, np.arange(s + 1) / s
    raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")


def insertion_deletion(model: AttributionModel, image: torch.Tensor, target: int, saliency, *,
                       preset: str = "smdl", steps: int | None = None, output: str = "prob") -> dict:
    """Insertion and deletion curves of a saliency map, and their AUCs.

    Ranking (all presets): pixels by saliency descending, ties in raster order (stable).
    Step i reveals (insertion) or removes (deletion) the first k_i pixels of that ranking;
    removed pixels take the fill value, all 3 channels at once. Output: softmax probability
    of ``target`` (``output="logit"`` for the logit). AUC: trapezoid rule over the returned
    x (:func:`evals.auc.trapezoid_auc`).

    Presets:

    * ``"smdl"`` (default): the area axis of SMDL's evaluation (evals/auc.py), so numbers
      compare like for like. Insertion starts from black (0), deletion ends at black.
      ``steps`` equal area steps, default 100 (101 points): k_i = round(i·H·W/steps) (half
      up), x_i = k_i/(H·W), the exact fraction of pixels revealed / removed.
    * ``"fixed"``: the fixed-step variant: same as "smdl" but ``steps`` defaults to
      ⌈H·W/224⌉, i.e. about 224 pixels per step (RISE's step at 224×224). Black fill.
    * ``"xplique"``: Xplique's ``Insertion`` / ``Deletion`` (``CausalFidelity``) as we read
      its code: baseline 0, ``steps`` default 10, k_i = ⌊i·H·W/steps⌋, x_i = i/steps, AUC =
      mean of (y_i + y_{i+1})/2 = trapezoid on the normalised step axis. Xplique scores the
      model's raw output (logits unless the model ends in a softmax; ``activation`` can add
      one) and fills with 0 *in the model's input space*, which is usually normalised;
      here 0 is black in RGB [0, 1], and the output is the probability unless
      ``output="logit"``. Xplique ranks with a non-stable ``argsort`` reversed, so its ties
      fall in no fixed order.
    * ``"rise"``: RISE's ``CausalMetric``: insertion starts from :func:`rise_blur` (11×11
      kernel, σ 5), deletion ends at zeros (black here; RISE's zeros are in normalised
      space, i.e. the mean colour). 224 pixels per step, n = ⌈H·W/224⌉ steps (224 at
      224×224), k_i = min(224·i, H·W); with ``steps`` given, n = steps and ⌈H·W/n⌉ pixels
      per step. x_i = i/n, AUC = trapezoid on that normalised step axis (RISE's
      ``(Σy − y_0/2 − y_n/2)/n``). RISE scores its model's top-1 class; here ``target``.

    Returns ``{x_ins, y_ins, auc_ins, x_del, y_del, auc_del, pixels, preset}``: float64
    arrays of S+1 points (y_ins[0] = score of the start image, y_del[0] = score of the
    image), AUC floats, ``pixels`` the k_i.
    """
    image = _image(model, image)
    sal = _saliency(saliency, tuple(image.shape[1:]))
    n = sal.size
    ks, x = _steps_for(preset, n, steps)
    rank = _rank(sal, descending=True)
    black = torch.zeros_like(image)
    start = rise_blur(image) if preset == "rise" else black
    y_ins = _reveal_scores(model, image, target, rank, ks, start, image, output)
    y_del = _reveal_scores(model, image, target, rank, ks, image, black, output)
    x = np.asarray(x, dtype=np.float64)
    return {
        "x_ins": x, "y_ins": y_ins, "auc_ins": trapezoid_auc(x, y_ins),
        "x_del": x.copy(), "y_del": y_del, "auc_del": trapezoid_auc(x, y_del),
        "pixels": ks, "preset": preset,
    }


# --------------------------------------------------------------------------- correlation metrics

def mufidelity(model: AttributionModel, image: torch.Tensor, target: int, saliency, *, grid: int = 7,
               num_samples: int = 32, subset_fraction: float = 0.2, baseline: Fill = 0.0,
               correlation: str = "spearman", output: str = "prob", subset: str = "bernoulli",
               seed: int = 0) -> float:
    """MuFidelity (Bhatt et al., IJCAI 2020, def. 3), as Xplique computes it on images.

    The image is cut into a ``grid``×``grid`` partition (:func:`~submodular_attribution.regions.grid_division`:
    cell r spans rows round(r·H/G) to round((r+1)·H/G) − 1, likewise for columns).
    Each of ``num_samples`` samples removes every cell independently with probability
    ``subset_fraction`` (``subset="bernoulli"``, Xplique's current code), or exactly
    round(subset_fraction·G²) cells (``subset="fixed"``, the paper's |S| and older Xplique,
    which removed int(G²·p) + 1 cells). With Bernoulli subsets the subset size varies, so
    any map with mass of one sign correlates with the drop through the number of removed
    cells alone; fixed-size subsets remove that confound. Removed pixels take ``baseline``
    (default 0 = black in RGB [0, 1]; Xplique's 0 is in the model's input space). Per sample: output drop
    Δ = y_t(x) − y_t(x_removed) and attribution mass Σ saliency over the removed pixels.
    Score: ``correlation`` (default Spearman, as Xplique; or Pearson) of the two over the
    samples. Output y: softmax probability of the target (default; Xplique uses the model's
    raw output, i.e. logits unless an activation is added), or the logit with
    ``output="logit"``. Masks come from ``numpy.random.default_rng(seed)``. Returns NaN when
    the correlation is undefined (Xplique returns 0 there; average with :func:`mean_finite`).
    """
    image = _image(model, image)
    sal = _saliency(saliency, tuple(image.shape[1:]))
    cells = grid_division(*sal.shape, grid, grid)
    rng = np.random.default_rng(seed)
    removed_cells = _random_subsets(rng, num_samples, grid * grid, subset_fraction, subset)
    removed = removed_cells[:, cells]  # S×H×W
    cell_mass = np.bincount(cells.ravel(), weights=sal.ravel(), minlength=grid * grid)
    attrs = removed_cells.astype(np.float64) @ cell_mass
    fill = _fill(baseline, image)
    base = _score(model, lambda lo, hi: image[None], 1, target, output)[0]
    drops = base - _masked_scores(model, image, target, removed, fill, output)
    return _correlate(drops, attrs, correlation)


def sensitivity_n(model: AttributionModel, image: torch.Tensor, target: int, saliency, *,
                  ratios: Sequence[float] = DEFAULT_RATIOS, num_samples: int = 100, grid: int | None = None,
                  baseline: Fill = 0.0, subset: str = "bernoulli", seed: int = 0) -> dict[float, float]:
    """Sensitivity-N (Ancona et al., ICLR 2018) with random Bernoulli masks.

    For each ratio r: ``num_samples`` masks remove every pixel (or, with ``grid``, every
    cell of a grid×grid partition) independently with probability r; removed pixels take
    ``baseline`` (default 0 = black). Per mask: target **logit** drop
    y_t(x) − y_t(x_removed) and attribution mass Σ saliency over the removed pixels.
    Returns {r: Pearson correlation over the masks} (NaN where undefined). Ancona et al.
    sample subsets of exactly n features: ``subset="fixed"`` removes exactly round(r·F) of
    the F features; the default Bernoulli form (the spec's) removes r·F on average, and its
    varying size adds a size-driven correlation that matters with few (grid) features.
    Masks come from ``numpy.random.default_rng(seed)``, one stream over the ratios in order.
    """
    image = _image(model, image)
    sal = _saliency(saliency, tuple(image.shape[1:]))
    fill = _fill(baseline, image)
    rng = np.random.default_rng(seed)
    cells = grid_division(*sal.shape, grid, grid) if grid is not None else None
    base = _score(model, lambda lo, hi: image[None], 1, target, "logit")[0]
    result = {}
    for ratio in ratios:
        if cells is None:
            removed = _random_subsets(rng, num_samples, sal.size, ratio, subset).reshape(num_samples, *sal.shape)
        else:
            removed = _random_subsets(rng, num_samples, grid * grid, ratio, subset)[:, cells]
        attrs = removed.reshape(num_samples, -1).astype(np.float64) @ sal.ravel()
        drops = base - _masked_scores(model, image, target, removed, fill, "logit")
        result[float(ratio)] = _correlate(drops, attrs, "pearson")
    return result


def diffid(model: AttributionModel, image: torch.Tensor, target: int, saliency, *,
           ratios: Sequence[float] = DEFAULT_RATIOS, per_channel: bool = True) -> dict:
    """DiffID (Yang et al., ICLR 2023, "Re-calibrating feature attributions").

    The map is |saliency| min–max normalised to [0, 1] (a monotone map, so only the absolute
    value matters for the ranking). For each ratio r, n = ⌊r·H·W⌋ pixels are removed:

    * insertion: the n *lowest*-ranked pixels (ascending, ties in raster order), i.e. the
      top (1 − r) are kept;
    * deletion: the n *highest*-ranked pixels (descending, ties in raster order).

    Removed pixels are filled with the mean of the kept pixels' values: per channel
    (default), or one mean over all channels with ``per_channel=False`` (what the reference
    code computes, in normalised space, where a per-channel mean is the same colour as
    here but a cross-channel one is not). The reference code writes the fill as
    ``x·mask + mean·~mask`` on an int mask, where ``~`` is a bitwise not (−2 / −1); we
    implement the intended keep/fill. Score per image: the target **logit** ratio
    y_t(x')/y_t(x) (ill-conditioned when y_t(x) is near 0). Returns
    ``{insertion, deletion, diffid, ratios, insertion_curve, deletion_curve}`` where
    insertion / deletion are means over the ratios and diffid = insertion − deletion.
    """
    image = _image(model, image)
    sal = np.abs(_saliency(saliency, tuple(image.shape[1:])))
    spread = sal.max() - sal.min()
    sal = (sal - sal.min()) / (spread + 1e-10)
    n = sal.size
    ascending, descending = _rank(sal, descending=False), _rank(sal, descending=True)
    images = []
    flat = image.reshape(3, -1)
    for rank in (ascending, descending):
        rank_t = torch.as_tensor(rank, device=image.device)
        for ratio in ratios:
            if not 0.0 <= ratio < 1.0:
                raise ValueError(f"ratios must be in [0, 1), got {ratio}")
            count = int(math.floor(ratio * n + 1e-9))
            removed = rank_t < count
            kept = flat[:, ~removed.reshape(-1)]
            mean = kept.mean(dim=1) if per_channel else kept.mean().expand(3)
            images.append(torch.where(removed[None], mean.view(3, 1, 1), image))
    stack = torch.stack(images)
    base = _score(model, lambda lo, hi: image[None], 1, target, "logit")[0]
    ratios_out = _score(model, lambda lo, hi: stack[lo:hi], len(stack), target, "logit") / base
    m = len(ratios)
    insertion_curve, deletion_curve = ratios_out[:m], ratios_out[m:]
    insertion, deletion = float(insertion_curve.mean()), float(deletion_curve.mean())
    return {
        "insertion": insertion, "deletion": deletion, "diffid": insertion - deletion,
        "ratios": np.asarray(ratios, dtype=np.float64),
        "insertion_curve": insertion_curve, "deletion_curve": deletion_curve,
    }


def single_deletion_score(model: AttributionModel, image: torch.Tensor, target: int, saliency, *,
                          grid: int = 4, baseline: Fill = None, absolute: bool = False) -> float:
    """Single Deletion Score (Hesse et al., NeurIPS 2024) of one image.

    The image is split into a ``grid``×``grid`` partition (default G = 4; cell boundaries
    round(r·H/G), as :func:`~submodular_attribution.regions.grid_division`).
    Per cell c: attribution a_c = Σ saliency over the cell (Σ |saliency| with
    ``absolute=True``; the paper finds signed maps score better) and drop
    d_c = y_t(x) − y_t(x with only cell c replaced by the baseline), y = target **logit**.
    Baseline: ``None`` = zeros in normalised space, i.e. the RGB values
    :func:`normalisation_mean` finds (the ImageNet mean by default); or any fill value.
    Score: Spearman correlation (average ranks for ties) of (a_c) and (d_c) over the G²
    cells; NaN when undefined (constant attributions or drops). G² + 1 forward passes.
    Average over images with :func:`mean_finite`, which drops and counts the NaNs.
    """
    image = _image(model, image)
    sal = _saliency(saliency, tuple(image.shape[1:]))
    if absolute:
        sal = np.abs(sal)
    cells = grid_division(*sal.shape, grid, grid)
    fill = _fill(normalisation_mean(model) if baseline is None else baseline, image)
    attrs = np.bincount(cells.ravel(), weights=sal.ravel(), minlength=grid * grid)
    removed = cells[None] == np.arange(grid * grid)[:, None, None]
    base = _score(model, lambda lo, hi: image[None], 1, target, "logit")[0]
    drops = base - _masked_scores(model, image, target, removed, fill, "logit")
    return _correlate(attrs, drops, "spearman")


def incremental_deletion(model: AttributionModel, image: torch.Tensor, target: int, saliency, *,
                         order: str = "ascending", steps: int = 32, baseline: Fill = None,
                         update_attribution: Callable[[torch.Tensor], object] | None = None) -> float:
    """Incremental deletion score of one image.

    α_i = linspace(0, 1, ``steps``, endpoint=False) (default 32 steps: 0, 1/32, …, 31/32);
    step i deletes the k_i = ⌊α_i·H·W⌋ lowest- (``order="ascending"``, least important
    first: higher is better) or highest- (``"descending"``, most important first: lower is
    better) attributed pixels, ties in raster order. Deleted pixels take the baseline
    (``None`` = zeros in normalised space, see :func:`normalisation_mean`, as for the Single
    Deletion Score). Score: mean over the steps of the target's softmax probability (the
    first step is the intact image). No AUC: a plain mean over equally spaced α.

    ``update_attribution`` (Hesse et al.'s ``--id_update_attribution``): a function
    ``image (3×H×W, the partly deleted image) -> H×W map`` called before every step i ≥ 2 on the
    image as deleted through step i − 1 (``steps`` − 2 calls; ``saliency`` is the intact image's
    map and serves step 1). Each step then deletes the k_i pixels ranked first by the newest map,
    with the pixels deleted so far forced first (so the deleted set only grows), ties in raster
    order. A map that never changes gives the same score as ``update_attribution=None``.
    """
    if order not in ("ascending", "descending"):
        raise ValueError(f"order must be 'ascending' or 'descending', got {order!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    image = _image(model, image)
    sal = _saliency(saliency, tuple(image.shape[1:]))
    n = sal.size
    ks = (np.arange(steps) * n) // steps  # ⌊α·n⌋ computed exactly in integers
    fill = _fill(normalisation_mean(model) if baseline is None else baseline, image)
    if update_attribution is not None:
        return _incremental_deletion_updated(model, image, target, sal, ks, order, fill, update_attribution)
    rank = _rank(sal, descending=order == "descending")
    return float(_reveal_scores(model, image, target, rank, ks, image, fill, "prob").mean())


def _incremental_deletion_updated(model, image, target, sal: np.ndarray, ks: np.ndarray, order: str,
                                  fill: torch.Tensor, update) -> float:
    """:func:`incremental_deletion` with the map recomputed before every step i ≥ 2."""
    n = sal.size
    raster = np.arange(n)
    deleted = np.zeros(n, dtype=bool)
    current = image.clone()
    scores = []
    for i, k in enumerate(ks):
        if i >= 2:
            sal = _saliency(update(current.clone()), tuple(image.shape[1:]))
        key = -sal.ravel() if order == "descending" else sal.ravel()
        chosen = np.lexsort((raster, key, ~deleted))[:k]  # deleted pixels first, then by the map
        deleted[chosen] = True
        mask = torch.as_tensor(deleted.reshape(sal.shape), device=image.device)
        current = torch.where(mask[None], fill, image)
        scores.append(_score(model, lambda lo, hi, x=current: x[None], 1, target, "prob")[0])
    return float(np.mean(scores))


# --------------------------------------------------------------------------- highest confidence

def _check_budgets(budgets: Sequence[float]) -> None:
    for b in budgets:
        if not 0.0 <= b <= 1.0:
            raise ValueError(f"area budgets must be in [0, 1], got {b}")


def _best_within(x: np.ndarray, y: np.ndarray, budgets: Sequence[float]) -> dict[float, tuple[float, float]]:
    result = {}
    for budget in budgets:
        inside = np.flatnonzero(x <= budget + 1e-12)
        if inside.size == 0:
            result[float(budget)] = (float("nan"), float("nan"))
            continue
        best = inside[np.argmax(y[inside])]  # first (smallest area) among equal maxima
        result[float(budget)] = (float(y[best]), float(x[best]))
    return result


def highest_confidence_ordering(result: LoadedResult, budgets: Sequence[float] = DEFAULT_BUDGETS, *,
                                include_empty: bool = False) -> dict[float, tuple[float, float]]:
    """Highest confidence within area budgets of an SMDL result (spec §7, error analysis).

    For each budget b: among the prefixes t = 1..N of the ordering whose cumulative area
    a_t ≤ b, the maximum ``consistency_score`` (target probability of insert(first t
    regions) into the black image) and the area a_t where it is first reached. The empty
    prefix (``baseline_score`` at area 0) counts only with ``include_empty=True``. A budget
    that no prefix fits gives (NaN, NaN). Returns {b: (max score, area)}.
    """
    _check_budgets(budgets)
    scores = np.asarray(result.record.get("consistency_score"), dtype=np.float64).reshape(-1)
    areas = np.asarray(result.areas, dtype=np.float64).reshape(-1)
    if scores.shape != areas.shape:
        raise ValueError(f"{result.json_path}: consistency_score has {scores.size} entries but the regions give "
                         f"{areas.size} cumulative areas")
    if include_empty:
        baseline = result.record.get("baseline_score")
        if baseline is None:
            raise ValueError(f"{result.json_path}: missing key 'baseline_score'")
        scores = np.concatenate([[float(baseline)], scores])
        areas = np.concatenate([[0.0], areas])
    return _best_within(areas, scores, budgets)


def highest_confidence_saliency(model: AttributionModel, image: torch.Tensor, target: int, saliency,
                                budgets: Sequence[float] = DEFAULT_BUDGETS, n_points: int = 101, *,
                                include_empty: bool = False) -> dict[float, tuple[float, float]]:
    """Highest confidence within area budgets of a saliency map.

    The insertion curve of the "smdl" preset of :func:`insertion_deletion` (black start,
    pixels by saliency descending, ties in raster order, target softmax probability) at
    k = round(a·H·W) for a in linspace(0, 1, ``n_points``), plus k = ⌊b·H·W⌋ for each budget
    b so that every budget is reached exactly. For each b: the maximum probability over
    the points with area k/(H·W) ≤ b and the area where it is first reached. The black
    image (area 0) counts only with ``include_empty=True``, as for
    :func:`highest_confidence_ordering`. Returns {b: (max probability, area)}.
    """
    _check_budgets(budgets)
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    image = _image(model, image)
    sal = _saliency(saliency, tuple(image.shape[1:]))
    n = sal.size
    grid_ks = np.floor(np.linspace(0.0, 1.0, n_points) * n + 0.5).astype(np.int64)
    budget_ks = np.floor(np.asarray(budgets, dtype=np.float64) * n + 1e-9).astype(np.int64)
    ks = np.unique(np.concatenate([grid_ks, budget_ks]))
    if not include_empty:
        ks = ks[ks > 0]
    if ks.size == 0:
        return {float(b): (float("nan"), float("nan")) for b in budgets}
    rank = _rank(sal, descending=True)
    y = _reveal_scores(model, image, target, rank, ks, torch.zeros_like(image), image, "prob")
    return _best_within(ks / n, y, budgets)


# --------------------------------------------------------------------------- registry

@dataclass
class MetricInputs:
    """One saliency map to score: what every registered metric receives.

    model: the :class:`~baseline_attribution.base.AttributionModel`;
    image: 3×H×W float, RGB in [0, 1], on ``model.device``;
    target: the class index whose output is scored;
    saliency: H×W finite map, larger = more important;
    mask: H×W bool object (or event) mask where the data has one, else None.
    """

    model: AttributionModel
    image: torch.Tensor
    target: int
    saliency: np.ndarray
    mask: np.ndarray | None = None

    @property
    def args(self) -> tuple:
        """(model, image, target, saliency): the leading arguments of every metric function here."""
        return self.model, self.image, self.target, self.saliency

    @cached_property
    def curves(self) -> dict:
        """:func:`insertion_deletion` of the map (preset "smdl"), computed once for both AUCs and the
        benchmark's mean curves."""
        return insertion_deletion(*self.args)


@dataclass(frozen=True)
class Metric:
    """A registered metric: one number per saliency map, one column of the method benchmark.

    compute: ``MetricInputs -> float``; NaN where undefined (the benchmark averages with
        :func:`~submodular_attribution.common.curves.mean_finite`, which drops and counts them).
    label: the column's name; :attr:`header` adds the direction.
    higher_is_better: the direction, ↑ (True) or ↓.
    summary: what it computes, in one line.
    needs_mask: computed only where the data has an object mask (``MetricInputs.mask``); rows
        without one have no value.
    """

    compute: Callable[[MetricInputs], float]
    label: str
    higher_is_better: bool
    summary: str
    needs_mask: bool = False

    @property
    def header(self) -> str:
        return f"{self.label} {'↑' if self.higher_is_better else '↓'}"


METRICS: dict[str, Metric] = {
    "insertion_auc": Metric(
        lambda m: m.curves["auc_ins"], "Insertion AUC", True,
        "target probability as pixels are revealed on black by saliency, AUC on the area axis (preset smdl)"),
    "deletion_auc": Metric(
        lambda m: m.curves["auc_del"], "Deletion AUC", False,
        "target probability as pixels are removed to black by saliency, AUC on the area axis (preset smdl)"),
    "mufidelity": Metric(
        lambda m: mufidelity(*m.args), "MuFidelity", True,
        "Spearman of probability drop vs removed mass, 32 random subsets of a 7×7 grid"),
    "sds": Metric(
        lambda m: single_deletion_score(*m.args), "SDS", True,
        "Spearman of logit drop vs mass per cell of a 4×4 grid, each cell alone to the normalisation mean"),
    "sensitivity_n": Metric(
        lambda m: mean_finite(list(sensitivity_n(*m.args, num_samples=20).values()))[0], "Sensitivity-N", True,
        "Pearson of logit drop vs removed mass, 20 Bernoulli pixel masks per ratio 0.1…0.9, mean over ratios"),
    "diffid": Metric(
        lambda m: diffid(*m.args)["diffid"], "DiffID", True,
        "insertion minus deletion logit ratio over ratios 0.1…0.9, removed pixels to the kept pixels' mean"),
    "incdel_morf": Metric(
        lambda m: incremental_deletion(*m.args, order="descending"), "IncDel MoRF", False,
        "mean target probability over 32 deletion steps, most important pixels first"),
    "incdel_lerf": Metric(
        lambda m: incremental_deletion(*m.args, order="ascending"), "IncDel LeRF", True,
        "mean target probability over 32 deletion steps, least important pixels first"),
    "pointing": Metric(
        lambda m: float(pointing_game(m.saliency, m.mask)), "Pointing", True,
        "1 when the map's maximum lies on the object, else 0", needs_mask=True),
    "energy": Metric(
        lambda m: energy_in_mask(m.saliency, m.mask), "Energy in mask", True,
        "share of the map's positive mass inside the object mask", needs_mask=True),
}
