"""Path-integral attributions: IG, IG-Uniform, IG-SG, IG-SQ, Expected Gradients, AGI, LPI, IG².

Conventions are those of :mod:`baseline_attribution.gradient`: the differentiated quantity f_t is
the target's logit (``output="probability"``: its softmax probability); gradients are taken in the
pixel space the path lives in (RGB in [0, 1], the model normalises internally); points go through
the model ``model.batch_size`` at a time; maps are the signed channel sum of the B×3×H×W pixel
attributions (``absolute=True``: sum of |·|). Stochastic methods take ``seed`` (default 0).

Straight-line engine (:func:`straight_line_attributions`)
--------------------------------------------------------
IG, IG-Uniform, IG-SG, IG-SQ, EG and LPI are all sums over sample points
x_m = r + α (x − r) on straight lines from references r to the input x. Reference r of image b
carries a weight w_r (Σ_r w_r = 1) and a set of K interpolation coefficients; **every reference
is paired with every one of its K coefficients** (R·K gradient evaluations per image — the
reference code of Yang et al. pairs reference ``(r·K + k) mod R`` with coefficient k, a bug).
Attribution: A = Σ_r w_r (x − r) ⊙ (1/K) Σ_k ∇f_t(r + α_{r,k}(x − r)).

Class-contrastive gradients (``output="contrastive"``, Wang & Wang, NeurIPS 2022), available on
every method here and combinable with re-calibration: f_t is the target logit minus the
softmax-weighted mean of the other logits, the weights held constant
(:func:`baseline_attribution.gradient.contrastive_scores`) — Yang et al.'s ``-exp_obj contrast``.

Re-calibration (``recalibrate=True``, Yang et al., ICLR 2023), available on every method here:
with sample points x_m, g_m = ∇f_t(x_m) and the point's weight ω_m (w_r/K above; 1/(n·k) on the
AGI and IG² paths, n paths of up to k steps), per feature i
    c_{m,i} = ω_m (x_i − x_{m,i}) g_{m,i},   A_i = Σ_{m: c_{m,i} ≥ 0} c_{m,i} / max(#{m: c_{m,i} ≥ 0}, 1),
pooled over all the sample points of the image (all references / adversarial classes). Zeros
count as kept (e.g. the α = 1 point x_m = x). The maps are non-negative by construction; the
constant ω only scales them.

Methods (registered names)
--------------------------
* ``ig`` — Integrated Gradients (Sundararajan et al. 2017), zero baseline (``baseline=``: any
  tensor broadcastable to the images), ``steps=80`` (the original SMDL code's call), right Riemann
  rule α_j = j/k, j = 1..k (captum's ``method="riemann_right"``).
* ``ig-uniform`` — IG averaged over ``n_refs=10`` references drawn from U(0, 1)^{3×H×W}
  (Sturmfels et al., Distill 2020), each with the ``steps=10`` right-Riemann coefficients.
* ``ig-sg`` — IG with noisy references: ``n_refs=10`` references x + N(0, σ²) clipped to [0, 1],
  σ = 0.15 · (max(x) − min(x)) (the SmoothGrad noise level; this is what Yang et al.'s
  reference code does); ``center="zero"`` uses 0 + N(0, σ²) (not clipped) instead. ``steps=10``.
* ``ig-sq`` — "IG with squared terms": SmoothGrad-Squared applied to IG (Hooker et al., NeurIPS
  2019, "A Benchmark for Interpretability Methods in Deep Neural Networks", SG-SQ): with the
  IG-SG references r_1..r_n, A = (1/n) Σ_r IG_r(x)² per channel (IG_r: IG from reference r), then
  summed over channels — non-negative. With ``recalibrate=True`` the squares of the kept
  re-calibrated contributions are averaged instead, A_i = Σ_kept c² / max(#kept, 1) (Yang et al.'s
  IG-SQ re-calibration).
* ``eg`` — Expected Gradients (Erion et al. 2021): ``n_samples=50`` pairs (reference drawn
  uniformly with replacement from ``references=`` — an N×3×H×W data tensor; default: the *other*
  images of the batch — and α ~ U(0, 1)); A = mean (x − r) ⊙ ∇f_t(r + α(x − r)).
* ``agi`` — Adversarial Gradient Integration (Pan, Li & Zhu, IJCAI 2021): for ``n_classes=20``
  random classes a ≠ t (``classes=`` B×n to choose them), starting at x, repeat up to
  ``max_iter=20`` times x' ← clip(x + ε sign(∇ logit_a(x)), 0, 1) with ε = 0.05 (pixel space) and
  accumulate ∇f_t(x) ⊙ (x − x'), stopping a path once the model predicts a (``early_stop``, as
  in the original code). A = mean over the classes. (Yang et al.'s reference code restarts every
  step from the input — a bug not reproduced here.) Σ A ≈ f_t(x) − mean_a f_t(x_end,a) to first order.
* ``lpi`` — Local Path Integration (Yang et al., AAAI 2023) as the spec describes it: k-means
  (``num_centres=10``, our own k-means++/Lloyd, ``seed``) of the logits of ``reference_images``
  (default: the batch); the references are the ``refs_per_centre=1`` data points nearest each
  centre, weighted by their cluster's density (cluster size / N, shared among its references);
  ``n_alphas=10`` coefficients α ~ U(0.01, 0.99) per image, each paired with every reference.
  The clustering is cached in memory by a hash of the reference tensor (and the model, k,
  seed).
* ``ig2`` — IG² (Zhuo & Ge, TPAMI 2024): GradPath γ_0 = x, γ_{j+1} = clip(γ_j + η ĝ_j, 0, 1)
  with ĝ_j the L2-normalised pixel-space gradient of −‖rep(γ_j) − rep(reference)‖² (rep =
  ``model.representation``, or the logits when it is None), ``steps=201``; the last point is the
  counterfactual GradCF. A = mean over references of Σ_j (γ_j − γ_{j+1}) ⊙ ∇f_t(γ_j), so
  Σ A ≈ f_t(x) − mean f_t(GradCF) (the left-point rule's error is O(η · path length)).
  References: ``references=`` (N×3×H×W, candidates for every image) or, by default, the other
  images of the batch whose target differs (all other images when none differs); at most
  ``n_refs=5`` candidates per image are used, drawn without replacement with ``seed`` (the
  reference's examples draw a few references at random; ``n_refs=None``: all). Step size η:
  ``step_size``, default (256/255)·√(H·W)/224 — the reference's 256 on a 0–255 scale for
  224×224 images, scaled so that the per-pixel RMS step is the same at any size.
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import torch

from .base import AttributionModel, register
from .gradient import (_grad, check_output, make_generator, rand, randn, reduce_channels, select_scores,
                       target_gradients, target_scores)

__all__ = [
    "agi",
    "expected_gradients",
    "ig2",
    "ig2_attributions",
    "ig_sg",
    "ig_sq",
    "ig_uniform",
    "integrated_gradients",
    "kmeans",
    "local_path_integration",
    "lpi_references",
    "noisy_references",
    "right_riemann_alphas",
    "straight_line_attributions",
    "uniform_references",
]


def _targets(images: torch.Tensor, targets) -> torch.Tensor:
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1)
    if len(targets) != len(images):
        raise ValueError(f"{len(targets)} targets for {len(images)} images")
    return targets


class _Accumulator:
    """Per-group sums of the standard contributions, or of the kept re-calibrated ones and
    their counts."""

    def __init__(self, n_groups: int, like: torch.Tensor, recalibrate: bool, square: bool = False):
        shape = (n_groups, *like.shape[1:])
        self.recalibrate, self.square = recalibrate, square
        self.total = like.new_zeros(shape)
        self.count = like.new_zeros(shape) if recalibrate else None

    def add_standard(self, groups: torch.Tensor, contributions: torch.Tensor) -> None:
        self.total.index_add_(0, groups, contributions)

    def add_recalibrated(self, groups: torch.Tensor, c: torch.Tensor) -> None:
        keep = c >= 0
        value = c * c if self.square else c
        self.total.index_add_(0, groups, torch.where(keep, value, torch.zeros_like(value)))
        self.count.index_add_(0, groups, keep.to(c.dtype))

    def result(self) -> torch.Tensor:
        if self.recalibrate:
            return self.total / self.count.clamp_min(1)
        return self.total


# --------------------------------------------------------------------------------------------
# straight-line engine
# --------------------------------------------------------------------------------------------

def straight_line_attributions(model: AttributionModel, images: torch.Tensor, targets, bank: torch.Tensor,
                               ref_index: torch.Tensor, alphas: torch.Tensor,
                               ref_weights: torch.Tensor | None = None, *, output: str = "logit",
                               recalibrate: bool = False, square: bool = False,
                               per_reference: bool = False) -> torch.Tensor:
    """Pixel attributions (B×3×H×W) from straight-line paths; see the module docstring.

    bank: N×3×H×W reference images; ref_index: B×R indices into ``bank`` (image b's references);
    alphas: the K interpolation coefficients of each reference, shape K, R×K or B×R×K — every
    reference is paired with every one of its K coefficients; ref_weights: B×R (or R) weights
    w_r (default 1/R). ``recalibrate``: re-calibrated attribution (``square``: average the squares
    of the kept contributions). ``per_reference``: B×R×3×H×W, one attribution per reference
    (re-calibration then pools per reference).
    """
    check_output(output)
    targets = _targets(images, targets)
    B = len(images)
    ref_index = torch.as_tensor(ref_index, device=images.device).long()
    if ref_index.ndim != 2 or len(ref_index) != B:
        raise ValueError(f"ref_index must be B×R, got {tuple(ref_index.shape)}")
    R = ref_index.shape[1]
    alphas = torch.as_tensor(alphas, device=images.device, dtype=images.dtype)
    K = alphas.shape[-1]
    alphas = alphas.reshape((1,) * (3 - alphas.ndim) + tuple(alphas.shape)).expand(B, R, K)
    if ref_weights is None:
        ref_weights = images.new_full((B, R), 1.0 / R)
    ref_weights = torch.as_tensor(ref_weights, device=images.device, dtype=images.dtype).expand(B, R)
    bank = bank.to(images.device, images.dtype)
    acc = _Accumulator(B * R if per_reference else B, images, recalibrate, square)
    total = B * R * K
    step = max(1, int(model.batch_size))
    for start in range(0, total, step):
        m = torch.arange(start, min(total, start + step), device=images.device)
        b, r, k = m // (R * K), (m // K) % R, m % K
        x = images[b]
        ref = bank[ref_index[b, r]]
        a = alphas[b, r, k].view(-1, 1, 1, 1)
        points = ref + a * (x - ref)
        g = target_gradients(model, points, targets[b], output)
        w = (ref_weights[b, r] / K).view(-1, 1, 1, 1)
        groups = b * R + r if per_reference else b
        if recalibrate:
            acc.add_recalibrated(groups, w * (x - points) * g)
        else:
            acc.add_standard(groups, w * (x - ref) * g)
    out = acc.result()
    return out.view(B, R, *images.shape[1:]) if per_reference else out


def right_riemann_alphas(steps: int, like: torch.Tensor) -> torch.Tensor:
    """α_j = j/k, j = 1..k (the right Riemann rule)."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    return torch.arange(1, steps + 1, device=like.device, dtype=like.dtype) / steps


def _own_references(refs: torch.Tensor):
    """B×R×3×H×W per-image references -> (bank, ref_index)."""
    B, R = refs.shape[:2]
    return refs.reshape(B * R, *refs.shape[2:]), torch.arange(B * R, device=refs.device).view(B, R)


def uniform_references(images: torch.Tensor, n_refs: int, seed: int | None = 0) -> torch.Tensor:
    """B×n_refs×3×H×W references drawn from U(0, 1) (what ``ig-uniform`` uses for ``seed``)."""
    return rand((len(images), n_refs, *images.shape[1:]), make_generator(seed), images)


def noisy_references(images: torch.Tensor, n_refs: int, noise_level: float = 0.15, center: str = "input",
                     seed: int | None = 0) -> torch.Tensor:
    """B×n_refs×3×H×W noisy references for ``ig-sg``/``ig-sq``: c + N(0, σ²) with
    σ = noise_level·(max(x) − min(x)) per image; c = x clipped to [0, 1] (``center="input"``) or
    c = 0, unclipped (``center="zero"``)."""
    if center not in ("input", "zero"):
        raise ValueError(f"center must be 'input' or 'zero', got {center!r}")
    noise = randn((len(images), n_refs, *images.shape[1:]), make_generator(seed), images)
    flat = images.flatten(1)
    sigma = (noise_level * (flat.max(dim=1).values - flat.min(dim=1).values)).view(-1, 1, 1, 1, 1)
    if center == "zero":
        return sigma * noise
    return (images.unsqueeze(1) + sigma * noise).clamp(0, 1)


@register("ig")
def integrated_gradients(model: AttributionModel, images: torch.Tensor, targets, *, baseline=0.0,
                         steps: int = 80, output: str = "logit", recalibrate: bool = False,
                         absolute: bool = False) -> torch.Tensor:
    """Integrated Gradients, zero baseline, right Riemann rule with ``steps`` points (module
    docstring)."""
    base = torch.as_tensor(baseline, device=images.device, dtype=images.dtype)
    bank = torch.broadcast_to(base, images.shape).contiguous()
    ref_index = torch.arange(len(images), device=images.device).view(-1, 1)
    attr = straight_line_attributions(model, images, targets, bank, ref_index, right_riemann_alphas(steps, images),
                                      output=output, recalibrate=recalibrate)
    return reduce_channels(attr, absolute)


@register("ig-uniform")
def ig_uniform(model: AttributionModel, images: torch.Tensor, targets, *, n_refs: int = 10, steps: int = 10,
               output: str = "logit", recalibrate: bool = False, absolute: bool = False,
               seed: int | None = 0) -> torch.Tensor:
    """IG averaged over ``n_refs`` U(0, 1) references (:func:`uniform_references`), each paired
    with all ``steps`` right-Riemann coefficients."""
    bank, ref_index = _own_references(uniform_references(images, n_refs, seed))
    attr = straight_line_attributions(model, images, targets, bank, ref_index, right_riemann_alphas(steps, images),
                                      output=output, recalibrate=recalibrate)
    return reduce_channels(attr, absolute)


@register("ig-sg")
def ig_sg(model: AttributionModel, images: torch.Tensor, targets, *, n_refs: int = 10, steps: int = 10,
          noise_level: float = 0.15, center: str = "input", output: str = "logit", recalibrate: bool = False,
          absolute: bool = False, seed: int | None = 0) -> torch.Tensor:
    """IG averaged over ``n_refs`` noisy references (:func:`noisy_references`)."""
    bank, ref_index = _own_references(noisy_references(images, n_refs, noise_level, center, seed))
    attr = straight_line_attributions(model, images, targets, bank, ref_index, right_riemann_alphas(steps, images),
                                      output=output, recalibrate=recalibrate)
    return reduce_channels(attr, absolute)


@register("ig-sq")
def ig_sq(model: AttributionModel, images: torch.Tensor, targets, *, n_refs: int = 10, steps: int = 10,
          noise_level: float = 0.15, center: str = "input", output: str = "logit", recalibrate: bool = False,
          absolute: bool = False, seed: int | None = 0) -> torch.Tensor:
    """SmoothGrad-Squared IG (Hooker et al. 2019): mean over the IG-SG references of IG_r², per
    channel, summed over channels (non-negative; ``absolute`` changes nothing)."""
    bank, ref_index = _own_references(noisy_references(images, n_refs, noise_level, center, seed))
    alphas = right_riemann_alphas(steps, images)
    if recalibrate:
        attr = straight_line_attributions(model, images, targets, bank, ref_index, alphas, output=output,
                                          recalibrate=True, square=True)
    else:
        per_ref = straight_line_attributions(model, images, targets, bank, ref_index, alphas, output=output,
                                             per_reference=True)  # w_r·IG_r with w_r = 1/n
        attr = (per_ref * n_refs).square().mean(dim=1)
    return reduce_channels(attr, absolute)


@register("eg")
def expected_gradients(model: AttributionModel, images: torch.Tensor, targets, *, references=None,
                       n_samples: int = 50, output: str = "logit", recalibrate: bool = False,
                       absolute: bool = False, seed: int | None = 0) -> torch.Tensor:
    """Expected Gradients: ``n_samples`` (reference, α ~ U(0, 1)) pairs per image; references
    drawn with replacement from ``references`` (N×3×H×W) or, by default, the other images of the
    batch."""
    B = len(images)
    gen = make_generator(seed)
    if references is None:
        if B < 2:
            raise ValueError("eg needs references=: with one image there are no other images to use")
        bank = images
        idx = torch.randint(0, B - 1, (B, n_samples), generator=gen)
        idx = idx + (idx >= torch.arange(B).view(-1, 1)).long()  # skip the image itself
    else:
        bank = torch.as_tensor(references).to(images.device, images.dtype)
        if bank.ndim != 4 or bank.shape[1:] != images.shape[1:]:
            raise ValueError(f"references must be N×{tuple(images.shape[1:])}, got {tuple(bank.shape)}")
        idx = torch.randint(0, len(bank), (B, n_samples), generator=gen)
    alphas = rand((B, n_samples, 1), gen, images)
    attr = straight_line_attributions(model, images, targets, bank, idx.to(images.device), alphas,
                                      output=output, recalibrate=recalibrate)
    return reduce_channels(attr, absolute)


# --------------------------------------------------------------------------------------------
# LPI
# --------------------------------------------------------------------------------------------

def kmeans(points: torch.Tensor, k: int, seed: int | None = 0, n_init: int = 4,
           max_iter: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means (k-means++ seeding, Lloyd iterations, best of ``n_init`` runs by inertia) of N×D
    points; returns (labels N, centres k'×D), k' = min(k, N)."""
    points = points.double()
    N = len(points)
    k = max(1, min(int(k), N))
    gen = make_generator(seed)
    best = None
    for _ in range(max(1, n_init)):
        chosen = [int(torch.randint(0, N, (1,), generator=gen))]
        d2 = (points - points[chosen[0]]).square().sum(1)
        for _ in range(1, k):
            if float(d2.sum()) > 0:
                nxt = int(torch.multinomial(d2 / d2.sum(), 1, generator=gen))
            else:  # all remaining points coincide with a centre
                nxt = int(torch.randint(0, N, (1,), generator=gen))
            chosen.append(nxt)
            d2 = torch.minimum(d2, (points - points[nxt]).square().sum(1))
        centres = points[chosen].clone()
        for _ in range(max_iter):
            labels = torch.cdist(points, centres).argmin(dim=1)
            new = centres.clone()
            for c in range(k):
                members = labels == c
                if members.any():
                    new[c] = points[members].mean(dim=0)
            if torch.equal(new, centres):
                break
            centres = new
        labels = torch.cdist(points, centres).argmin(dim=1)
        inertia = float((points - centres[labels]).square().sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels, centres)
    return best[1], best[2]


_LPI_CACHE: OrderedDict = OrderedDict()
_LPI_CACHE_SIZE = 8


def _digest(t: torch.Tensor) -> str:
    data = t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy()
    h = hashlib.sha1(data.tobytes())
    h.update(repr((tuple(t.shape), str(t.dtype))).encode())
    return h.hexdigest()


def lpi_references(model: AttributionModel, reference_images: torch.Tensor, num_centres: int = 10,
                   refs_per_centre: int = 1, seed: int | None = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """LPI's references: (indices into ``reference_images``, weights summing to 1).

    k-means of the model's logits of the reference images; for each non-empty cluster the
    ``refs_per_centre`` members nearest its centre, each weighted by cluster size / N divided by
    the number taken from that cluster. Cached in memory by (reference hash, model, k, m, seed).
    """
    key = (_digest(reference_images), int(num_centres), int(refs_per_centre), seed)
    hit = _LPI_CACHE.get(key)
    if hit is not None and hit[0] is model.logits:
        _LPI_CACHE.move_to_end(key)
        return hit[1].clone(), hit[2].clone()
    logits = model.batched_logits(reference_images).double().cpu().flatten(1)
    labels, centres = kmeans(logits, num_centres, seed)
    N = len(logits)
    idx, weights = [], []
    for c in range(len(centres)):
        members = (labels == c).nonzero().squeeze(1)
        if len(members) == 0:
            continue
        dist = (logits[members] - centres[c]).square().sum(1)
        take = members[dist.argsort()[:max(1, int(refs_per_centre))]]
        idx.append(take)
        weights.append(torch.full((len(take),), len(members) / N / len(take), dtype=torch.float64))
    idx, weights = torch.cat(idx), torch.cat(weights)
    _LPI_CACHE[key] = (model.logits, idx, weights)
    while len(_LPI_CACHE) > _LPI_CACHE_SIZE:
        _LPI_CACHE.popitem(last=False)
    return idx.clone(), weights.clone()


@register("lpi")
def local_path_integration(model: AttributionModel, images: torch.Tensor, targets, *, reference_images=None,
                           num_centres: int = 10, refs_per_centre: int = 1, n_alphas: int = 10,
                           alpha_range: tuple[float, float] = (0.01, 0.99), output: str = "logit",
                           recalibrate: bool = False, absolute: bool = False,
                           seed: int | None = 0) -> torch.Tensor:
    """Local Path Integration: density-weighted references near the k-means centres of the
    logits of ``reference_images`` (default: the batch); ``n_alphas`` α ~ U(0.01, 0.99) per
    image, each paired with every reference (module docstring)."""
    refs = images if reference_images is None else torch.as_tensor(reference_images).to(images.device, images.dtype)
    if refs.ndim != 4 or refs.shape[1:] != images.shape[1:]:
        raise ValueError(f"reference_images must be N×{tuple(images.shape[1:])}, got {tuple(refs.shape)}")
    idx, weights = lpi_references(model, refs, num_centres, refs_per_centre, seed)
    B, R = len(images), len(idx)
    bank = refs[idx.to(refs.device)]
    ref_index = torch.arange(R, device=images.device).expand(B, R)
    lo, hi = alpha_range
    alphas = lo + (hi - lo) * rand((B, 1, n_alphas), make_generator(seed), images)
    attr = straight_line_attributions(model, images, targets, bank, ref_index, alphas,
                                      weights.to(images.device, images.dtype).expand(B, R),
                                      output=output, recalibrate=recalibrate)
    return reduce_channels(attr, absolute)


# --------------------------------------------------------------------------------------------
# AGI
# --------------------------------------------------------------------------------------------

def _random_other_classes(targets: torch.Tensor, num_classes: int, n: int, seed: int | None) -> torch.Tensor:
    if num_classes < 2:
        raise ValueError("agi needs at least two classes")
    n = min(int(n), num_classes - 1)
    gen = make_generator(seed)
    rows = []
    for t in targets.tolist():
        pick = torch.randperm(num_classes - 1, generator=gen)[:n]
        rows.append(pick + (pick >= t).long())  # skip the target class
    return torch.stack(rows).to(targets.device)


@register("agi")
def agi(model: AttributionModel, images: torch.Tensor, targets, *, n_classes: int = 20, epsilon: float = 0.05,
        max_iter: int = 20, early_stop: bool = True, classes=None, output: str = "logit",
        recalibrate: bool = False, absolute: bool = False, seed: int | None = 0) -> torch.Tensor:
    """Adversarial Gradient Integration (module docstring): per adversarial class a, sign steps
    of size ε on a's logit from x, accumulating ∇f_t ⊙ (x_j − x_{j+1}); mean over classes."""
    check_output(output)
    targets = _targets(images, targets)
    if classes is None:
        classes = _random_other_classes(targets, model.num_classes, n_classes, seed)
    classes = torch.as_tensor(classes, device=images.device).long().reshape(len(images), -1)
    B, n = classes.shape
    path_image = torch.arange(B, device=images.device).repeat_interleave(n)
    path_class = classes.reshape(-1)
    w = 1.0 / n
    w_recal = 1.0 / (n * max(1, max_iter))
    acc = _Accumulator(B, images, recalibrate)
    step = max(1, int(model.batch_size))
    for start in range(0, B * n, step):
        img = path_image[start:start + step]
        adv = path_class[start:start + step]
        tgt = targets[img]
        x = images[img]
        current = x.clone()
        active = torch.ones(len(img), dtype=torch.bool, device=images.device)
        for _ in range(max_iter):
            idx = active.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            points = current[idx].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                logits = model.logits(points)
                reached = logits.detach().argmax(dim=1) == adv[idx]
                g_adv = _grad(logits.gather(1, adv[idx].view(-1, 1)).sum(), points, retain_graph=True)
                f = select_scores(logits, tgt[idx], output)
                g_t = _grad(f.sum(), points)
            points = points.detach()
            move = ~reached if early_stop else torch.ones_like(reached)
            active[idx[~move]] = False
            if not move.any():
                continue
            sel = idx[move]
            here, g_here = points[move], g_t[move]
            there = (here + epsilon * g_adv[move].sign()).clamp(0, 1)
            if recalibrate:
                acc.add_recalibrated(img[sel], w_recal * (x[sel] - here) * g_here)
            else:
                acc.add_standard(img[sel], w * (here - there) * g_here)
            current[sel] = there
    return reduce_channels(acc.result(), absolute)


# --------------------------------------------------------------------------------------------
# IG²
# --------------------------------------------------------------------------------------------

def default_ig2_step_size(height: int, width: int) -> float:
    """(256/255)·√(H·W)/224: the reference step (256 on 0–255 for 224×224) per-pixel-RMS matched."""
    return 256.0 / 255.0 * math.sqrt(height * width) / 224.0


def ig2_attributions(model: AttributionModel, images: torch.Tensor, targets, *, references=None,
                     n_refs: int | None = 5, steps: int = 201, step_size: float | None = None,
                     output: str = "logit", recalibrate: bool = False, seed: int | None = 0,
                     return_counterfactuals: bool = False):
    """IG² pixel attributions B×3×H×W (module docstring); with ``return_counterfactuals`` also a
    list with, per image, its R_b×3×H×W GradCF end points (one per reference, equally weighted)."""
    check_output(output)
    targets = _targets(images, targets)
    B = len(images)
    if references is None:
        if B < 2:
            raise ValueError("ig2 needs references=: with one image there are no other images to use")
        bank = images
        per_image = []
        for b in range(B):
            others = [j for j in range(B) if j != b]
            differ = [j for j in others if int(targets[j]) != int(targets[b])]
            per_image.append(differ or others)
    else:
        bank = torch.as_tensor(references).to(images.device, images.dtype)
        if bank.ndim != 4 or bank.shape[1:] != images.shape[1:]:
            raise ValueError(f"references must be N×{tuple(images.shape[1:])}, got {tuple(bank.shape)}")
        per_image = [list(range(len(bank)))] * B
    if n_refs is not None:
        gen = make_generator(seed)
        per_image = [c if len(c) <= n_refs else
                     sorted(c[i] for i in torch.randperm(len(c), generator=gen)[:max(1, int(n_refs))].tolist())
                     for c in per_image]
    path_image = torch.tensor([b for b in range(B) for _ in per_image[b]], device=images.device, dtype=torch.long)
    path_ref = torch.tensor([j for b in range(B) for j in per_image[b]], device=images.device, dtype=torch.long)
    path_weight = torch.tensor([1.0 / len(per_image[b]) for b in range(B) for _ in per_image[b]],
                               device=images.device, dtype=images.dtype)
    representation = model.representation
    rep_fn = representation if representation is not None else model.logits
    step = max(1, int(model.batch_size))
    used = torch.unique(path_ref)
    goal_of = torch.zeros(len(bank), dtype=torch.long, device=images.device)
    goal_of[used] = torch.arange(len(used), device=images.device)
    goals = model.batched(lambda chunk: rep_fn(chunk).flatten(1), bank[used])
    eta = default_ig2_step_size(*images.shape[-2:]) if step_size is None else float(step_size)
    acc = _Accumulator(B, images, recalibrate)
    ends = torch.empty((len(path_image), *images.shape[1:]), device=images.device, dtype=images.dtype)
    for start in range(0, len(path_image), step):
        img = path_image[start:start + step]
        goal = goals[goal_of[path_ref[start:start + step]]]
        w = path_weight[start:start + step].view(-1, 1, 1, 1)
        tgt = targets[img]
        x = images[img]
        current = x.clone()
        for _ in range(steps):
            p = current.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                if representation is None:
                    logits = model.logits(p)
                    f = select_scores(logits, tgt, output)
                    g_t = _grad(f.sum(), p, retain_graph=True)
                    rep = logits.flatten(1)
                else:
                    g_t = _grad(target_scores(model, p, tgt, output).sum(), p)
                    rep = representation(p).flatten(1)
                g_rep = _grad(-(rep - goal.to(rep.dtype)).square().sum(), p)
            norm = g_rep.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            direction = torch.where(norm > 0, g_rep / norm.clamp_min(torch.finfo(norm.dtype).tiny),
                                    torch.zeros_like(g_rep))
            nxt = (current + eta * direction).clamp(0, 1)
            if recalibrate:
                acc.add_recalibrated(img, (w / max(1, steps)) * (x - current) * g_t)
            else:
                acc.add_standard(img, w * (current - nxt) * g_t)
            current = nxt
        ends[start:start + step] = current
    attr = acc.result()
    if not return_counterfactuals:
        return attr
    return attr, [ends[path_image == b] for b in range(B)]


@register("ig2")
def ig2(model: AttributionModel, images: torch.Tensor, targets, *, references=None, n_refs: int | None = 5,
        steps: int = 201, step_size: float | None = None, output: str = "logit", recalibrate: bool = False,
        absolute: bool = False, seed: int | None = 0) -> torch.Tensor:
    """IG² on the GradPath toward each reference's representation (module docstring)."""
    attr = ig2_attributions(model, images, targets, references=references, n_refs=n_refs, steps=steps,
                            step_size=step_size, output=output, recalibrate=recalibrate, seed=seed)
    return reduce_channels(attr, absolute)
