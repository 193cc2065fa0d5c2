"""Gradient baselines — InputGrad (``saliency``), Input×Gradient (``ixg``), SmoothGrad
(``smoothgrad``), Input×Gradient with SmoothGrad (``ixg-sg``), FullGrad (``fullgrad``) — and the
gradient helpers the path methods share.

Conventions (shared with :mod:`baseline_attribution.path`)
----------------------------------------------------------
* **Differentiated output**: the target class's **logit** by default; ``output="probability"``
  differentiates its softmax probability instead; ``output="contrastive"`` the class-contrastive
  score of Wang & Wang (NeurIPS 2022, "Why Not Other Classes?"): the target logit minus the
  softmax-weighted mean of the other logits, the weights held constant (:func:`select_scores`).
* **Space**: every gradient is taken with respect to the B×3×H×W RGB image in [0, 1] that the
  caller passes (the scorer normalises internally), through ``model.logits`` under
  :func:`torch.enable_grad` — so the methods also work when called inside ``torch.no_grad()``.
  Inputs are detached clones with ``requires_grad_``; the caller's tensors are never modified.
* **Batching**: many points (noisy copies, path points) go through the model
  ``model.batch_size`` images at a time (:func:`target_gradients`).
* **Maps**: pixel-space attributions are B×3×H×W; maps are B×H×W, reduced by **summing over the
  channels, signed** (:func:`reduce_channels`); ``absolute=True`` takes |·| per channel before the
  sum. The one exception is ``saliency``, whose default follows Simonyan et al. (max over the
  channels of |gradient|), see its docstring.
* **Randomness**: stochastic methods take ``seed`` (default 0: the same maps on every call;
  ``None``: torch's global generator). Noise is drawn on the CPU and moved to the device, so a
  seed gives the same noise on every device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from submodular_attribution.common.images import IMAGENET_STD

from .base import AttributionModel, register

__all__ = [
    "OUTPUTS",
    "fullgrad",
    "fullgrad_terms",
    "input_x_gradient",
    "ixg_smoothgrad",
    "make_generator",
    "randn",
    "rand",
    "reduce_channels",
    "saliency",
    "select_scores",
    "smoothgrad",
    "target_gradients",
    "target_scores",
]

#: What a gradient method may differentiate.
OUTPUTS = ("logit", "probability", "contrastive")


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------

def check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")


def scores_from_logits(logits: torch.Tensor, output: str) -> torch.Tensor:
    """B×C logits -> B×C scores of the kind ``output`` names (logits or softmax probabilities).

    Not for ``output="contrastive"``, whose score depends on the target: use :func:`select_scores`."""
    check_output(output)
    if output == "contrastive":
        raise ValueError("contrastive scores depend on the target class; use select_scores(logits, targets, output)")
    return logits if output == "logit" else logits.softmax(dim=-1)


def contrastive_scores(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Class-contrastive score of each row's target (Wang & Wang, NeurIPS 2022): B values

        φ_t = y_t − Σ_{s≠t} α_s y_s,   α_s = exp(y_s) / Σ_{k≠t} exp(y_k)  (softmax over the other logits),

    with α **detached**, so that ∇φ_t = ∇y_t − Σ_{s≠t} α_s ∇y_s — their weighted contrast of the
    target's gradient against the other classes'. It equals ∇log p_t / (1 − p_t) (p = softmax(y)),
    hence Σ_t p_t (1 − p_t) ∇φ_t = Σ_t ∇p_t = 0. (Yang et al.'s re-calibration code, ``-exp_obj
    contrast``, also differentiates through α; we follow the contrastive paper.)
    """
    targets = targets.reshape(-1, 1).long()
    target_logit = logits.gather(1, targets).squeeze(1)
    others = logits.detach().scatter(1, targets, float("-inf"))
    weights = others.softmax(dim=-1)  # zero at the target
    return target_logit - (weights * logits).sum(dim=-1)


def select_scores(logits: torch.Tensor, targets: torch.Tensor, output: str) -> torch.Tensor:
    """The score of each row's target, B values: its logit, softmax probability or
    class-contrastive score (:func:`contrastive_scores`), as ``output`` names."""
    check_output(output)
    if output == "contrastive":
        return contrastive_scores(logits, targets)
    return scores_from_logits(logits, output).gather(1, targets.reshape(-1, 1).long()).squeeze(1)


def target_scores(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor,
                  output: str = "logit") -> torch.Tensor:
    """The differentiable score f_t(x) of each image's target: B values (logit, probability or
    class-contrastive score, :func:`select_scores`)."""
    return select_scores(model.logits(images), targets, output)


def _grad(total: torch.Tensor, wrt: torch.Tensor, retain_graph: bool = False) -> torch.Tensor:
    """d total / d wrt; zeros where ``total`` does not depend on ``wrt``."""
    if not total.requires_grad:
        return torch.zeros_like(wrt)
    (g,) = torch.autograd.grad(total, wrt, retain_graph=retain_graph, allow_unused=True)
    return torch.zeros_like(wrt) if g is None else g


def target_gradients(model: AttributionModel, points: torch.Tensor, targets: torch.Tensor,
                     output: str = "logit", return_scores: bool = False):
    """∇_x f_t(x) for N points (N×3×H×W) and N targets, ``model.batch_size`` points at a time.

    Returns N×3×H×W gradients (and the N scores f_t(x) with ``return_scores=True``). Each
    point's gradient is its own: the batch sum is differentiated, and points do not interact
    (models are in eval mode).
    """
    check_output(output)
    targets = torch.as_tensor(targets, device=points.device).long().reshape(-1)
    if len(targets) == 1 and len(points) > 1:
        targets = targets.expand(len(points))
    if len(targets) != len(points):
        raise ValueError(f"{len(targets)} targets for {len(points)} points")
    step = max(1, int(model.batch_size))
    grads, scores = [], []
    for start in range(0, len(points), step):
        chunk = points[start:start + step].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            s = target_scores(model, chunk, targets[start:start + step], output)
            g = _grad(s.sum(), chunk)
        grads.append(g.detach())
        scores.append(s.detach())
    grads = torch.cat(grads) if grads else points.new_zeros(points.shape)
    if return_scores:
        return grads, (torch.cat(scores) if scores else points.new_zeros(0))
    return grads


def reduce_channels(attributions: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """B×3×H×W pixel attributions -> B×H×W maps: signed sum over channels (|·| first if
    ``absolute``)."""
    return (attributions.abs() if absolute else attributions).sum(dim=1)


def make_generator(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed``; None (torch's global generator) for ``seed=None``."""
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def _noise_dtype(like: torch.Tensor) -> torch.dtype:
    return torch.float64 if like.dtype == torch.float64 else torch.float32


def randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise drawn on the CPU, returned on ``like``'s device and dtype."""
    return torch.randn(tuple(shape), generator=generator, dtype=_noise_dtype(like)).to(like.device, like.dtype)


def rand(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """U(0, 1) noise drawn on the CPU, returned on ``like``'s device and dtype."""
    return torch.rand(tuple(shape), generator=generator, dtype=_noise_dtype(like)).to(like.device, like.dtype)


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------

@register("saliency")
def saliency(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
             output: str = "logit", absolute: bool = True, channel_reduce: str | None = None) -> torch.Tensor:
    """InputGrad / vanilla gradient saliency (Simonyan, Vedaldi & Zisserman, ICLR-W 2014).

    Default (``absolute=True``): M_ij = max_c |∂f_t/∂x_cij|, the paper's map (captum's
    ``Saliency(abs=True)`` followed by a max over channels).
    ``absolute=False`` gives the plain signed gradient, summed over channels.
    ``channel_reduce`` ("max" or "sum") overrides the channel reduction (default: "max" when
    ``absolute`` else "sum").
    """
    if channel_reduce is None:
        channel_reduce = "max" if absolute else "sum"
    if channel_reduce not in ("max", "sum"):
        raise ValueError(f"channel_reduce must be 'max' or 'sum', got {channel_reduce!r}")
    g = target_gradients(model, images, targets, output)
    g = g.abs() if absolute else g
    return g.amax(dim=1) if channel_reduce == "max" else g.sum(dim=1)


@register("ixg")
def input_x_gradient(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
                     output: str = "logit", absolute: bool = False, baseline=0.0) -> torch.Tensor:
    """Input × Gradient (Shrikumar et al. 2016): (x − b) ⊙ ∂f_t/∂x, summed over channels.

    ``baseline`` b (a float, 3 RGB values or a tensor broadcastable to the images) is 0 by
    default; b = the normalisation mean gives the normalised input times the gradient with
    respect to the normalised input, what captum computes on a model that takes normalised
    images (the benchmark's IxG)."""
    g = target_gradients(model, images, targets, output)
    return reduce_channels((images - _as_baseline(baseline, images)) * g, absolute)


def _as_baseline(baseline, images: torch.Tensor) -> torch.Tensor:
    """A float, 3 per-channel values or a tensor, broadcastable to B×3×H×W."""
    b = torch.as_tensor(baseline, dtype=images.dtype, device=images.device)
    if b.ndim == 1 and b.numel() == images.shape[1]:
        b = b.view(1, -1, 1, 1)
    try:
        torch.broadcast_shapes(b.shape, images.shape)
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to the images "
                         f"{tuple(images.shape)}") from None
    return b


@register("smoothgrad")
def smoothgrad(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
               n_samples: int = 50, noise_level: float = 0.15, output: str = "logit",
               absolute: bool = False, seed: int | None = 0) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over ``n_samples`` noisy copies
    x + N(0, σ²), σ = ``noise_level`` · (max(x) − min(x)) of each image (the paper's 15 %);
    the copies are not clipped. The mean gradient is reduced over channels (signed sum;
    ``absolute=True``: sum of |·|).
    """
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    gen = make_generator(seed)
    means = []
    for x, t in zip(images, targets):
        sigma = noise_level * (x.max() - x.min())
        points = x.unsqueeze(0) + sigma * randn((n_samples, *x.shape), gen, x)
        means.append(target_gradients(model, points, t.reshape(1), output).mean(dim=0))
    return reduce_channels(torch.stack(means), absolute)


#: Input×Gradient + SmoothGrad as Hesse et al.'s benchmark code runs it (captum's NoiseTunnel
#: defaults there): 4 noisy copies, noise σ = 1.0 in ImageNet-normalised input space, i.e. the
#: ImageNet std per RGB channel in [0, 1] pixel space.
IXG_SG_SAMPLES = 4


@register("ixg-sg")
def ixg_smoothgrad(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
                   n_samples: int = IXG_SG_SAMPLES, noise_std=IMAGENET_STD, output: str = "logit",
                   absolute: bool = False, baseline=0.0, seed: int | None = 0) -> torch.Tensor:
    """Input×Gradient with SmoothGrad (IxG-SG of Hesse et al., NeurIPS 2024): for ``n_samples``
    noisy copies x̃ = x + σ ⊙ ε, ε ~ N(0, I) (not clipped), the mean of (x̃ − b) ⊙ ∂f_t/∂x̃ — the
    noisy input times its own gradient, as captum's ``NoiseTunnel(InputXGradient)`` computes it —
    then summed over channels (``absolute=True``: sum of |·|). ``baseline`` b as in ``ixg``.

    ``noise_std``: σ in [0, 1] RGB pixel space, a float or one value per channel. The default
    (0.229, 0.224, 0.225) is the benchmark code's ``stdevs=1.0`` in ImageNet-normalised space;
    ``n_samples=4`` is its ``nt_samples``. The benchmark multiplies the *normalised* input by
    the gradient; here, as in ``ixg``, the [0, 1] input the caller passes.
    """
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    sigma = torch.as_tensor(noise_std, dtype=images.dtype, device=images.device).reshape(-1)
    if sigma.numel() not in (1, images.shape[1]) or bool((sigma < 0).any()):
        raise ValueError(f"noise_std must be one value or one per channel, all >= 0; got {noise_std!r}")
    sigma = sigma.view(1, -1, 1, 1)
    base = _as_baseline(baseline, images)
    per_image = base.ndim == 4 and base.shape[0] == len(images) > 1
    gen = make_generator(seed)
    means = []
    for i, (x, t) in enumerate(zip(images, targets)):
        points = x.unsqueeze(0) + sigma * randn((n_samples, *x.shape), gen, x)
        g = target_gradients(model, points, t.reshape(1), output)
        means.append(((points - (base[i:i + 1] if per_image else base)) * g).mean(dim=0))
    return reduce_channels(torch.stack(means), absolute)


# --------------------------------------------------------------------------------------------
# FullGrad
# --------------------------------------------------------------------------------------------

def _effective_bias(layer: nn.Module) -> torch.Tensor | None:
    """The bias a layer adds at every output position: a Conv2d's bias; for an eval-mode
    BatchNorm2d, β − γ·μ/√(σ² + ε) (its affine map written as scale·z + bias)."""
    if isinstance(layer, nn.Conv2d):
        return None if layer.bias is None else layer.bias.detach()
    if isinstance(layer, nn.BatchNorm2d):
        if layer.training or layer.running_mean is None or layer.running_var is None:
            raise ValueError("fullgrad needs BatchNorm2d layers in eval mode with running statistics "
                             "(call model.eval()); in training mode their bias depends on the batch")
        scale = layer.running_var.detach().add(layer.eps).rsqrt()
        weight = layer.weight.detach() if layer.weight is not None else torch.ones_like(scale)
        bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(scale)
        return bias - weight * layer.running_mean.detach() * scale
    return None


def _bias_layers(module: nn.Module) -> list[tuple[nn.Module, torch.Tensor]]:
    layers = []
    for layer in module.modules():
        bias = _effective_bias(layer)
        if bias is not None:
            layers.append((layer, bias))
    return layers


def fullgrad_terms(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor,
                   output: str = "logit") -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The raw full-gradient decomposition (Srinivas & Fleuret, NeurIPS 2019).

    Returns (∇_x f_t ⊙ x: B×3×H×W, [∇_{b_l} f_t ⊙ b_l: B×C_l×h_l×w_l for each call of each
    bias layer l]) where the bias layers are ``model.module``'s Conv2d layers with a bias and its
    BatchNorm2d layers (eval mode; effective bias β − γμ/√(σ²+ε)). ∂f/∂b_l is measured per
    output position by adding a zero "probe" to the layer's output (so in-place activations after
    the layer do not disturb it). For a piecewise-linear network whose only biases are these,
    f_t(x) = Σ input term + Σ_l Σ bias term_l exactly (the full-gradient completeness).
    """
    check_output(output)
    module = model.module
    if module is None:
        raise ValueError("fullgrad needs model.module (the image network) to hook its Conv2d/BatchNorm2d "
                         "biases; this AttributionModel has none")
    layers = _bias_layers(module)
    if not layers:
        raise ValueError(f"fullgrad is implemented for CNNs: {type(module).__name__} has no Conv2d layer with "
                         "a bias and no BatchNorm2d layer")
    step = max(1, int(model.batch_size))
    input_terms: list[torch.Tensor] = []
    bias_terms: list[list[torch.Tensor]] = []
    for start in range(0, len(images), step):
        probes: list[tuple[torch.Tensor, torch.Tensor]] = []

        def hook(layer, inputs, out, bias_of={id(m): b for m, b in layers}):
            if not isinstance(out, torch.Tensor) or out.ndim != 4:
                return None
            probe = torch.zeros_like(out, requires_grad=True)
            probes.append((probe, bias_of[id(layer)]))
            return out + probe

        handles = [layer.register_forward_hook(hook) for layer, _ in layers]
        try:
            x = images[start:start + step].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                s = target_scores(model, x, targets[start:start + step], output)
                if not probes:
                    raise RuntimeError("fullgrad: no Conv2d/BatchNorm2d layer of model.module ran during "
                                       "model.logits; the module does not compute these logits")
                wrt = [x] + [p for p, _ in probes]
                if s.requires_grad:
                    grads = torch.autograd.grad(s.sum(), wrt, allow_unused=True)
                else:
                    grads = [None] * len(wrt)
        finally:
            for handle in handles:
                handle.remove()
        grads = [torch.zeros_like(w) if g is None else g.detach() for g, w in zip(grads, wrt)]
        input_terms.append(grads[0] * x.detach())
        bias_terms.append([g * b.to(g.dtype).view(1, -1, 1, 1) for g, (_, b) in zip(grads[1:], probes)])
    n_layers = {len(t) for t in bias_terms}
    if len(n_layers) != 1:
        raise RuntimeError("fullgrad: the hooked layers ran a different number of times per batch")
    merged = [torch.cat([chunk[i] for chunk in bias_terms]) for i in range(n_layers.pop())]
    return torch.cat(input_terms), merged


def _normalise_per_image(v: torch.Tensor) -> torch.Tensor:
    """|v| rescaled to [0, 1] per image (min → 0, max → 1; a constant map → 0)."""
    v = v.abs()
    flat = v.flatten(1)
    lo = flat.min(dim=1).values.view(-1, *([1] * (v.ndim - 1)))
    hi = flat.max(dim=1).values.view(-1, *([1] * (v.ndim - 1)))
    span = hi - lo
    return torch.where(span > 0, (v - lo) / span.clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v))


@register("fullgrad")
def fullgrad(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
             output: str = "logit") -> torch.Tensor:
    """FullGrad saliency (Srinivas & Fleuret, NeurIPS 2019):
    S = Σ_c ψ(∇_x f_t ⊙ x) + Σ_l Σ_c ψ(∇_{b_l} f_t ⊙ b_l), where ψ = |·|, rescaled to [0, 1] per
    image, then bilinearly upsampled to H×W (see :func:`fullgrad_terms` for the bias layers).

    Needs ``model.module`` with Conv2d-with-bias or BatchNorm2d layers (CNNs) in eval mode;
    raises ValueError otherwise (e.g. for transformers, whose biases are not spatial). The input
    term uses the [0, 1] RGB image the model receives. Maps are non-negative.
    """
    input_term, bias_terms = fullgrad_terms(model, images, targets, output)
    size = images.shape[-2:]
    saliency_map = _normalise_per_image(input_term).sum(dim=1)
    for term in bias_terms:
        up = F.interpolate(_normalise_per_image(term), size=size, mode="bilinear", align_corners=False)
        saliency_map = saliency_map + up.sum(dim=1)
    return saliency_map
