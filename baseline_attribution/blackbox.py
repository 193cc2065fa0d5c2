"""Black-box perturbation methods: RISE, RISE-U, Occlusion, LIME, HSIC attribution, Sobol attribution.

Every method here sees the model only through :meth:`AttributionModel.batched_probs` (no
gradients, no access to the network), so it applies to any classifier and to zero-shot CLIP.
The scored quantity is always the **softmax probability of the target class**, ``p_t``.

Common behaviour:

* Perturbed images are built on ``model.device`` in chunks of ``model.batch_size`` images and
  scored one chunk at a time; only the small designs (grid bits, shifts, on/off vectors, QMC
  points) are held in full, so memory does not grow with the number of samples.
* Randomness comes from ``seed`` (default 0) through a CPU :class:`torch.Generator` (or
  scipy's QMC samplers for HSIC and Sobol), so designs are identical on every device and do not
  depend on ``model.batch_size``; RISE-U's noise images are drawn on the device from one seed per
  mask.
  The same design is used for every image of a batch, and an image's map does not depend on
  the other images of the batch.
* Masks keep a pixel where they are 1; a removed pixel is replaced by the ``baseline`` value
  (0 = black in RGB [0, 1]) unless a method says otherwise:
  ``perturbed = image · m + baseline · (1 − m)``.

Forward passes per image with the defaults (224×224 input): RISE 1000, RISE-U 1000,
Occlusion 226 (1 + 15×15 windows), LIME 1000, HSIC 1500, Sobol 2112 (= 32·(64 + 2)).
"""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .base import AttributionModel, register

__all__ = ["rise", "rise_u", "occlusion", "lime", "hsic", "sobol"]


# --------------------------------------------------------------------------------------------
# Option checks
# --------------------------------------------------------------------------------------------


def _int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def _real(name: str, value: Any, low: float | None = None, high: float | None = None,
          open_interval: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if open_interval:
        if (low is not None and value <= low) or (high is not None and value >= high):
            raise ValueError(f"{name} must lie in the open interval ({low}, {high}), got {value}")
    elif (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def _seed(value: Any) -> int:
    return _int("seed", value, minimum=0)


def _check_inputs(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be B×3×H×W, got {tuple(images.shape)}")
    if targets.shape != (images.shape[0],):
        raise ValueError(f"targets must have shape ({images.shape[0]},), got {tuple(targets.shape)}")
    _int("model.batch_size", model.batch_size)


# --------------------------------------------------------------------------------------------
# Shared evaluation loop
# --------------------------------------------------------------------------------------------

# build(start, stop) -> (masks k×H×W in [0, 1], fill k×3×H×W or None): the perturbations
# start..stop−1 of a design.  fill None means the scalar baseline.
Builder = Callable[[int, int], "tuple[torch.Tensor, torch.Tensor | None]"]


def _score_design(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, count: int,
                  build: Builder, baseline: float = 0.0,
                  accumulate: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None
                  ) -> torch.Tensor:
    """p_t of every image under every perturbation of a design: B×count float64.

    Perturbations are built ``model.batch_size`` at a time (once per chunk, shared by the
    images) and scored with ``model.batched_probs``.  ``accumulate(b, masks, scores)`` is called
    per chunk and image, for methods that aggregate masks weighted by scores (RISE)."""
    out = torch.empty(len(images), count, dtype=torch.float64, device=images.device)
    step = model.batch_size
    for start in range(0, count, step):
        stop = min(count, start + step)
        masks, fill = build(start, stop)
        masks = masks.to(images.dtype).unsqueeze(1)  # k×1×H×W
        for b, (image, target) in enumerate(zip(images, targets)):
            if fill is None:
                perturbed = image * masks + baseline * (1 - masks)
            else:
                perturbed = image * masks + fill * (1 - masks)
            scores = model.batched_probs(perturbed)[:, int(target)]
            out[b, start:stop] = scores.double()
            if accumulate is not None:
                accumulate(b, masks[:, 0], scores)
    return out


def _upsample_cells(cells: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """k×g×g values -> k×H×W by nearest-neighbour upsampling (pixel (y, x) takes cell
    (⌊y·g/H⌋, ⌊x·g/W⌋)); cells tile the image exactly when g divides H and W."""
    return F.interpolate(cells[:, None].float(), size=size, mode="nearest")[:, 0]


# --------------------------------------------------------------------------------------------
# RISE and RISE-U
# --------------------------------------------------------------------------------------------


def _rise(model, images, targets, N, s, p, seed, uniform_fill: bool) -> torch.Tensor:
    _check_inputs(model, images, targets)
    N = _int("N", N)
    s = _int("s", s)
    p = _real("p", p, 0.0, 1.0, open_interval=True)
    seed = _seed(seed)
    device = images.device
    H, W = images.shape[-2:]
    cell_h, cell_w = math.ceil(H / s), math.ceil(W / s)
    up_h, up_w = (s + 1) * cell_h, (s + 1) * cell_w

    gen = torch.Generator().manual_seed(seed)
    grids = (torch.rand(N, s, s, generator=gen) < p).float()  # 1 = keep
    shift_y = torch.randint(0, cell_h, (N,), generator=gen)
    shift_x = torch.randint(0, cell_w, (N,), generator=gen)
    noise_seeds = torch.randint(0, 2 ** 62, (N,), generator=gen) if uniform_fill else None
    noise_gen = torch.Generator(device=device) if uniform_fill else None
    rows = torch.arange(H, device=device)
    cols = torch.arange(W, device=device)

    def build(start: int, stop: int):
        k = stop - start
        up = F.interpolate(grids[start:stop, None].to(device), size=(up_h, up_w), mode="bilinear",
                           align_corners=False)[:, 0]
        ys = shift_y[start:stop].to(device)[:, None, None] + rows[None, :, None]
        xs = shift_x[start:stop].to(device)[:, None, None] + cols[None, None, :]
        masks = up[torch.arange(k, device=device)[:, None, None], ys, xs]
        fill = None
        if uniform_fill:
            fill = torch.empty(k, 3, H, W, device=device, dtype=images.dtype)
            for j in range(k):
                noise_gen.manual_seed(int(noise_seeds[start + j]))
                fill[j].uniform_(0.0, 1.0, generator=noise_gen)
        return masks, fill

    saliency = torch.zeros(len(images), H, W, device=device, dtype=torch.float32)

    def accumulate(b: int, masks: torch.Tensor, scores: torch.Tensor) -> None:
        saliency[b] += torch.einsum("k,khw->hw", scores.float(), masks.float())

    _score_design(model, images, targets, N, build, 0.0, accumulate)
    return saliency / (N * p)


@register("rise")
def rise(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, N: int = 1000,
         s: int = 8, p: float = 0.1, seed: int = 0) -> torch.Tensor:
    """RISE (Petsiuk et al., BMVC 2018) on the target's softmax probability.

    Masks: N binary s×s grids, each cell kept with probability p; each grid is upsampled
    bilinearly (align_corners=False) to (s+1)·C with C = ⌈H/s⌉ (per axis), then an H×W window is
    cropped at a random shift in [0, C) per axis, giving smooth masks m_i ∈ [0, 1].
    Perturbation: image · m_i (removed pixels → 0).  Saliency:
    ``S = Σ_i p_t(image · m_i) · m_i / (N · p)`` (Monte-Carlo estimate of E[p_t | pixel kept]).
    Defaults N=1000, s=8, p=0.1 as in the SMDL comparison (the RISE paper used N=4000, s=7,
    p=0.5 for ResNet-50).  N forward passes per image.
    """
    return _rise(model, images, targets, N, s, p, seed, uniform_fill=False)


@register("rise-u")
def rise_u(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, N: int = 1000,
           s: int = 8, p: float = 0.1, seed: int = 0) -> torch.Tensor:
    """RISE-U: :func:`rise` with removed pixels filled with uniform noise instead of zeros.

    Same masks as :func:`rise` for the same seed; perturbation
    ``image · m_i + u_i · (1 − m_i)`` with a fresh noise image u_i ~ U(0, 1)^{3×H×W} per mask
    (drawn on the device from a per-mask seed, so it does not depend on the batch size).
    Same normalisation ``Σ_i p_t · m_i / (N · p)``.  N forward passes per image.
    """
    return _rise(model, images, targets, N, s, p, seed, uniform_fill=True)


# --------------------------------------------------------------------------------------------
# Occlusion
# --------------------------------------------------------------------------------------------


def _positions(length: int, window: int, stride: int) -> list[int]:
    """Window starts 0, stride, 2·stride, … plus length − window so the last pixels are covered."""
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@register("occlusion")
def occlusion(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
              window: int | None = None, stride: int | None = None, baseline: float = 0.0
              ) -> torch.Tensor:
    """Occlusion (Zeiler & Fergus, ECCV 2014) on the target's softmax probability.

    A ``window``×``window`` square is set to ``baseline`` (default 0) at every position of a
    sliding grid with step ``stride`` (the last row/column of positions is added so that every
    pixel is covered).  Saliency of a pixel = mean, over the windows covering it, of
    ``p_t(image) − p_t(occluded image)``.  Defaults: window = round(min(H, W) / 8) (28 px at
    224), stride = window // 2; 1 + (#positions)² forward passes (226 at 224×224).
    """
    _check_inputs(model, images, targets)
    H, W = images.shape[-2:]
    window = max(1, round(min(H, W) / 8)) if window is None else window
    window = _int("window", window, 1, min(H, W))
    stride = max(1, window // 2) if stride is None else stride
    stride = _int("stride", stride, 1)
    baseline = _real("baseline", baseline)
    device = images.device
    boxes = [(y, x) for y in _positions(H, window, stride) for x in _positions(W, window, stride)]

    def build(start: int, stop: int):
        masks = torch.ones(stop - start, H, W, device=device)
        for j, (y, x) in enumerate(boxes[start:stop]):
            masks[j, y:y + window, x:x + window] = 0
        return masks, None

    full = model.batched_probs(images)[torch.arange(len(images), device=device), targets].double()
    scores = _score_design(model, images, targets, len(boxes), build, baseline)
    drops = (full[:, None] - scores).float()  # B×windows
    total = torch.zeros(len(images), H, W, device=device)
    count = torch.zeros(H, W, device=device)
    for j, (y, x) in enumerate(boxes):
        total[:, y:y + window, x:x + window] += drops[:, j, None, None]
        count[y:y + window, x:x + window] += 1
    return total / count


# --------------------------------------------------------------------------------------------
# LIME
# --------------------------------------------------------------------------------------------


@register("lime")
def lime(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
         num_samples: int = 1000, region_size: int | None = None, p: float = 0.5,
         kernel_width: float = 0.25, alpha: float = 1.0, baseline: float = 0.0, seed: int = 0
         ) -> torch.Tensor:
    """LIME for images (Ribeiro et al., KDD 2016) on the target's softmax probability.

    Features: SLICO superpixels of the image (``SubRegionDivision(uint8 RGB, "slico",
    region_size)`` with its default ruler/iterations; region_size default round(min(H, W)/8),
    28 px at 224 → about 64 superpixels).  Samples: ``num_samples`` binary vectors z over the D
    superpixels, the first all ones (the image itself, as in the lime package), the others with
    each superpixel on with probability p (default 0.5); an off superpixel is set to
    ``baseline`` (default 0; the lime package's default fills with the superpixel's mean colour).
    Weights: cosine distance to the all-ones vector, d = 1 − √(|z|/D) (d = 1 for z = 0), and the
    lime kernel π = √(exp(−d² / kernel_width²)) with kernel_width 0.25.  Fit: weighted ridge
    regression of p_t on z with intercept, α = 1: argmin_β,b Σ_i π_i (p_t,i − b − z_i·β)² + α‖β‖²,
    the intercept b not penalised (``sklearn.linear_model.Ridge`` with ``sample_weight``, float64).
    Map: every pixel gets its superpixel's coefficient β.  ``num_samples`` forward passes per image.
    """
    from sklearn.linear_model import Ridge

    from submodular_attribution.regions import SubRegionDivision

    _check_inputs(model, images, targets)
    num_samples = _int("num_samples", num_samples)
    H, W = images.shape[-2:]
    region_size = max(1, round(min(H, W) / 8)) if region_size is None else region_size
    region_size = _int("region_size", region_size)
    p = _real("p", p, 0.0, 1.0, open_interval=True)
    kernel_width = _real("kernel_width", kernel_width, 0.0, open_interval=True)
    alpha = _real("alpha", alpha, 0.0)
    baseline = _real("baseline", baseline)
    seed = _seed(seed)
    device = images.device

    maps = []
    for image, target in zip(images, targets):
        rgb = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        labels_np = SubRegionDivision(rgb.permute(1, 2, 0).cpu().numpy(), "slico", region_size)
        labels = torch.from_numpy(labels_np.astype(np.int64)).to(device)
        D = int(labels_np.max()) + 1
        gen = torch.Generator().manual_seed(seed)
        z = (torch.rand(num_samples, D, generator=gen) < p).double()
        z[0] = 1
        z_dev = z.to(device)

        def build(start: int, stop: int):
            return z_dev[start:stop][:, labels], None

        y = _score_design(model, image[None], target[None], num_samples, build, baseline)[0].cpu()
        on = z.sum(1)
        distance = 1 - torch.sqrt(on / D)
        weight = torch.sqrt(torch.exp(-distance ** 2 / kernel_width ** 2))
        fit = Ridge(alpha=alpha, fit_intercept=True).fit(z.numpy(), y.numpy(), sample_weight=weight.numpy())
        maps.append(torch.from_numpy(fit.coef_).to(device).float()[labels])
    return torch.stack(maps)


# --------------------------------------------------------------------------------------------
# HSIC attribution
# --------------------------------------------------------------------------------------------


def _qmc_sampler(cls, d: int, seed: int):
    """A scipy QMC sampler ``cls(d)`` (scrambled by default) drawing from ``default_rng(seed)``."""
    try:
        return cls(d=d, rng=np.random.default_rng(seed))
    except TypeError:  # scipy < 1.15 names it seed
        return cls(d=d, seed=np.random.default_rng(seed))


def _binary_lhs(n: int, d: int, seed: int) -> torch.Tensor:
    """n×d float64 binary design: a Latin hypercube sample (``scipy.stats.qmc.LatinHypercube``,
    u_ij = (π_j(i) + U_ij) / n with π_j a random permutation per column) thresholded at 1/2, so
    each column is on in ~half of the samples."""
    from scipy.stats import qmc

    u = _qmc_sampler(qmc.LatinHypercube, d, seed).random(n)
    return torch.from_numpy(u >= 0.5).double()


def _hsic_binary(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HSIC V-statistic per column of the binary design X (n×d) with output y (n).

    HSIC_i = tr(K_i H L H) / (n − 1)², K_i = [x_i == x_i'] (Dirac kernel), L = exp(−Δy²/(2σ²))
    with σ = median of |y_j − y_j'| over pairs j < j' (mean of the positive ones when that median
    is 0), H = I − 11ᵀ/n.  Since L̃ = HLH has zero row sums, tr(K_i L̃) = 2 x_iᵀ L̃ x_i."""
    n = len(y)
    diff = y[:, None] - y[None, :]
    iu = torch.triu_indices(n, n, offset=1, device=y.device)
    pair = diff.abs()[iu[0], iu[1]]
    if pair.numel() == 0 or pair.max() == 0:
        return torch.zeros(X.shape[1], dtype=torch.float64, device=y.device)
    sigma = pair.median()
    if sigma <= 0:
        sigma = pair[pair > 0].mean()
    L = torch.exp(-diff ** 2 / (2 * sigma ** 2))
    Lc = L - L.mean(0, keepdim=True) - L.mean(1, keepdim=True) + L.mean()
    return 2 * (X * (Lc @ X)).sum(0) / (n - 1) ** 2


@register("hsic")
def hsic(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, grid_size: int = 8,
         nb_design: int = 1500, baseline: float = 0.0, seed: int = 0) -> torch.Tensor:
    """HSIC attribution (Novello, Fel & Vigouroux, NeurIPS 2022) on the target's softmax probability.

    Design: ``nb_design`` binary masks over a grid_size×grid_size grid from a Latin hypercube
    thresholded at 1/2 (the paper's sampler; the xplique library defaults to 500 binary Sobol
    points); masks are nearest-upsampled to H×W and applied as image · m (off cells →
    ``baseline``, default 0).  Estimator, per cell i with indicator x_i over the n samples and
    outputs y = p_t: the biased (V-statistic) estimator HSIC_i = tr(K_i H L H) / (n − 1)² with
    the Dirac kernel K_i = [x_i == x_i'] on the indicator, the Gaussian kernel
    L = exp(−(y − y')² / (2σ²)) on outputs, σ = median pairwise |y − y'| (median heuristic; the
    xplique code instead uses the median of the outputs themselves), H = I − 11ᵀ/n.  The map is the
    cell scores nearest-upsampled to H×W (each pixel takes its cell's HSIC; all ≥ 0; zeros when
    the output never changes).  ``nb_design`` forward passes per image (1500).
    """
    _check_inputs(model, images, targets)
    grid_size = _int("grid_size", grid_size)
    nb_design = _int("nb_design", nb_design, 2)
    baseline = _real("baseline", baseline)
    seed = _seed(seed)
    H, W = images.shape[-2:]
    device = images.device
    design = _binary_lhs(nb_design, grid_size ** 2, seed)
    cells = design.to(device).reshape(nb_design, grid_size, grid_size)

    def build(start: int, stop: int):
        return _upsample_cells(cells[start:stop], (H, W)), None

    outputs = _score_design(model, images, targets, nb_design, build, baseline)
    X = design.to(device)
    scores = torch.stack([_hsic_binary(X, y) for y in outputs])  # B×g²
    return _upsample_cells(scores.reshape(-1, grid_size, grid_size), (H, W))


# --------------------------------------------------------------------------------------------
# Sobol attribution
# --------------------------------------------------------------------------------------------


def _sobol_points(n: int, dim: int, seed: int) -> np.ndarray:
    """n points of a scrambled Sobol sequence in [0, 1)^dim, seeded."""
    from scipy.stats import qmc

    sampler = _qmc_sampler(qmc.Sobol, dim, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance warning when n is not a power of two
        return sampler.random(n)


@register("sobol")
def sobol(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, grid_size: int = 8,
          nb_design: int = 32, baseline: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Sobol attribution (Fel et al., NeurIPS 2021) on the target's softmax probability.

    Design (pick-freeze): n = ``nb_design`` points of a scrambled Sobol sequence in
    [0, 1]^{2d}, d = grid_size², split into matrices A and B (n×d); for each cell i,
    C_i = A with column i taken from B.  Each row is a real-valued grid_size×grid_size mask,
    nearest-upsampled to H×W and applied as image · m + baseline · (1 − m) ("inpainting" with
    baseline 0).  n·(d + 2) forward passes (2112 with the defaults).
    Estimator: Jansen's total-order index
    ``S_T,i = (1 / 2n) Σ_j (f(A_j) − f(C_i,j))² / V`` with V the sample variance (ddof 1) of
    f over the 2n rows of A and B and f = p_t.  The map is S_T nearest-upsampled to H×W (each pixel
    takes its cell's index); zeros when V = 0.
    """
    _check_inputs(model, images, targets)
    grid_size = _int("grid_size", grid_size)
    nb_design = _int("nb_design", nb_design, 2)
    baseline = _real("baseline", baseline)
    seed = _seed(seed)
    H, W = images.shape[-2:]
    device = images.device
    d = grid_size ** 2
    points = torch.from_numpy(_sobol_points(nb_design, 2 * d, seed)).to(device)
    A, B = points[:, :d], points[:, d:]
    n = nb_design
    count = n * (d + 2)

    def rows(start: int, stop: int) -> torch.Tensor:
        idx = torch.arange(start, stop, device=device)
        block, j = idx // n, idx % n  # block 0: A, 1: B, 2 + i: C_i
        out = torch.where((block == 1)[:, None], B[j], A[j])
        c = block >= 2
        cell = (block - 2).clamp(min=0)
        out[c, cell[c]] = B[j[c], cell[c]]
        return out

    def build(start: int, stop: int):
        return _upsample_cells(rows(start, stop).reshape(-1, grid_size, grid_size), (H, W)), None

    outputs = _score_design(model, images, targets, count, build, baseline)  # B×count
    fA, fB = outputs[:, :n], outputs[:, n:2 * n]
    fC = outputs[:, 2 * n:].reshape(len(images), d, n)
    var = torch.cat([fA, fB], dim=1).var(dim=1, unbiased=True)  # B
    total = ((fA[:, None, :] - fC) ** 2).mean(-1) / 2  # B×d
    safe = torch.where(var > 0, var, torch.ones_like(var))
    indices = torch.where(var[:, None] > 0, total / safe[:, None], torch.zeros_like(total))
    return _upsample_cells(indices.reshape(-1, grid_size, grid_size), (H, W))
