"""Class activation maps (CAMs) at one layer of the network.

Every method here takes the activations ``A`` (B×K×h×w) of one layer — ``layer=`` when given,
else ``model.cam_layer`` — and, for the gradient CAMs, the gradients ``g = ∂y_c/∂A`` of the
target class's *logit* ``y_c`` (not its probability). Token activations of vision transformers
(B×N×D) are laid out on the patch grid with ``model.tokens_to_grid`` first (CLS/register tokens
dropped). Each method forms a B×h×w map ``M`` at the layer's resolution and returns

    upsample(ReLU(M))                       (bilinear, half-pixel centres, to the image's H×W)

which is un-normalised by default (its scale is the model's). With ``normalize=True`` each map is
min-max scaled to [0, 1] after upsampling (a constant map becomes all zeros) — the normalisation
``pytorch_grad_cam`` applies to its output.

Hooks are registered per call and removed in ``finally``; no state survives a call. Images are
processed ``model.batch_size`` at a time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from submodular_attribution.common.hooks import capture

from .base import AttributionModel, register

__all__ = [
    "finish_maps",
    "gradcam",
    "gradcam_plus_plus",
    "layercam",
    "layer_activations_and_gradients",
    "scorecam",
    "smooth_gradcam_plus_plus",
    "xgradcam",
]


def _resolve_layer(model: AttributionModel, layer: nn.Module | None) -> nn.Module:
    layer = model.cam_layer if layer is None else layer
    if layer is None:
        raise ValueError("this model has no CAM layer (model.cam_layer is None): pass layer=<module>")
    return layer


def _as_maps(model: AttributionModel, tensor: torch.Tensor) -> torch.Tensor:
    """B×K×h×w maps from a layer output: 4-D as is, 3-D tokens via ``model.tokens_to_grid``."""
    if tensor.ndim == 4:
        return tensor
    if tensor.ndim == 3 and model.tokens_to_grid is not None:
        return model.tokens_to_grid(tensor)
    raise ValueError(f"CAM layer output has shape {tuple(tensor.shape)}: need B×K×h×w maps, or B×N×D tokens "
                     "with model.tokens_to_grid set")


def _run_hooked(model: AttributionModel, layer: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, layer output) of one forward pass; the hook lives only during the call."""
    with capture(layer, f"CAM layer {type(layer).__name__}") as seen:
        logits = model.logits(images)
    return logits, seen.one()


def layer_activations_and_gradients(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor,
                                    layer: nn.Module | None = None, *, gradients: bool = True
                                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Activations ``A`` (B×K×h×w) of the CAM layer and ``∂y_c/∂A`` of each image's target
    logit (same shape; None with ``gradients=False``), detached, ``model.batch_size`` images
    per pass. The input gets ``requires_grad`` so that frozen networks still have a graph."""
    layer = _resolve_layer(model, layer)
    if not gradients:
        return model.batched(lambda chunk: _as_maps(model, _run_hooked(model, layer, chunk)[1]), images), None
    acts, grads = [], []
    for chunk, chunk_targets in zip(images.split(model.batch_size), targets.split(model.batch_size)):
        x = chunk.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits, act = _run_hooked(model, layer, x)
            score = logits.gather(1, chunk_targets.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, act, allow_unused=True)
        if grad is None:  # the target logit does not depend on this layer
            grad = torch.zeros_like(act)
        acts.append(_as_maps(model, act.detach()))
        grads.append(_as_maps(model, grad.detach()))
    return torch.cat(acts), torch.cat(grads)


def _normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max scaling of N×h×w maps to [0, 1]; a constant map becomes zeros."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1) - low)
    return torch.where(span > 0, (maps - low) / torch.where(span > 0, span, torch.ones_like(span)),
                       torch.zeros_like(maps))


def finish_maps(cam: torch.Tensor, size: tuple[int, int], normalize: bool) -> torch.Tensor:
    """B×h×w layer-resolution maps -> ReLU -> bilinear upsampling to ``size`` (half-pixel centres)
    -> optional per-map min-max scaling.

    With ``normalize``, maps are also min-max scaled *before* upsampling: the result is the same
    (scaling commutes with interpolation), but a constant map is recognised exactly as constant
    (all zeros) instead of having its rounding noise stretched to [0, 1].
    """
    cam = cam.clamp(min=0)
    if normalize:
        cam = _normalize(cam)
    cam = F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return _normalize(cam) if normalize else cam


def _weighted_sum(weights: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    return (weights[:, :, None, None] * acts).sum(dim=1)


def _plus_plus_weights(d1: torch.Tensor, d2: torch.Tensor, d3: torch.Tensor, acts: torch.Tensor,
                       eps: float) -> torch.Tensor:
    """Grad-CAM++ channel weights from first/second/third-order terms d1, d2, d3 (B×K×h×w)."""
    total = acts.sum(dim=(2, 3), keepdim=True)
    denominator = 2 * d2 + total * d3 + eps
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = torch.where((d2 != 0) & (denominator != 0), d2 / safe, torch.zeros_like(d2))
    return (alpha * d1.clamp(min=0)).sum(dim=(2, 3))


@register("gradcam")
def gradcam(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, layer: nn.Module | None = None,
            normalize: bool = False) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017).

    Channel weights ``w_k = mean_{ij} ∂y_c/∂A_kij`` (gradients of the target logit averaged over
    the layer's positions); map ``ReLU(Σ_k w_k A_k)``, upsampled bilinearly to H×W.
    """
    acts, grads = layer_activations_and_gradients(model, images, targets, layer)
    weights = grads.mean(dim=(2, 3))
    return finish_maps(_weighted_sum(weights, acts), images.shape[-2:], normalize)


@register("gradcam++")
def gradcam_plus_plus(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
                      layer: nn.Module | None = None, eps: float = 1e-6, normalize: bool = False) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al., WACV 2018), in the closed form the paper derives for an
    exponential class score ``exp(y_c)``, which needs first derivatives only (its eq. 19).

    With ``g = ∂y_c/∂A`` (target logit) and ``S_k = Σ_{ab} A_kab``::

        α_kij = g_kij² / (2 g_kij² + S_k g_kij³ + eps)      (0 where g_kij = 0)
        w_k   = Σ_ij α_kij ReLU(g_kij)
        map   = ReLU(Σ_k w_k A_k), upsampled bilinearly to H×W.

    ``eps`` (1e-6, the stabiliser of the widely used pytorch-grad-cam implementation) keeps the
    denominator away from zero; ``eps=0`` gives the formula exactly.
    """
    acts, grads = layer_activations_and_gradients(model, images, targets, layer)
    g2 = grads * grads
    weights = _plus_plus_weights(grads, g2, g2 * grads, acts, eps)
    return finish_maps(_weighted_sum(weights, acts), images.shape[-2:], normalize)


@register("xgradcam")
def xgradcam(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, layer: nn.Module | None = None,
             eps: float = 1e-7, normalize: bool = False) -> torch.Tensor:
    """XGrad-CAM (Fu et al., BMVC 2020).

    Channel weights ``w_k = Σ_ij (∂y_c/∂A_kij) A_kij / (Σ_ij A_kij + eps)`` (target logit; ``eps``
    1e-7 as in pytorch-grad-cam); map ``ReLU(Σ_k w_k A_k)``, upsampled bilinearly to H×W.
    """
    acts, grads = layer_activations_and_gradients(model, images, targets, layer)
    weights = (grads * acts).sum(dim=(2, 3)) / (acts.sum(dim=(2, 3)) + eps)
    return finish_maps(_weighted_sum(weights, acts), images.shape[-2:], normalize)


@register("layercam")
def layercam(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, layer: nn.Module | None = None,
             normalize: bool = False) -> torch.Tensor:
    """Layer-CAM (Jiang et al., IEEE TIP 2021).

    Position-wise weights: map ``ReLU(Σ_k ReLU(∂y_c/∂A_k) ⊙ A_k)`` (target logit), upsampled
    bilinearly to H×W.
    """
    acts, grads = layer_activations_and_gradients(model, images, targets, layer)
    return finish_maps((grads.clamp(min=0) * acts).sum(dim=1), images.shape[-2:], normalize)


@register("smoothgradcam++")
def smooth_gradcam_plus_plus(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
                             layer: nn.Module | None = None, n_samples: int = 10, noise_level: float = 0.15,
                             seed: int = 0, eps: float = 1e-6, normalize: bool = False) -> torch.Tensor:
    """Smooth Grad-CAM++ (Omeiza et al., 2019): Grad-CAM++ with SmoothGrad-averaged derivatives.

    For ``n_samples`` noisy copies ``x + ε``, ``ε ~ N(0, σ²)`` with ``σ = noise_level·(max x − min x)``
    per image (SmoothGrad's parametrisation; 0.15 lies in its recommended 10–20 % band), the
    gradients ``g⁽ˢ⁾ = ∂y_c/∂A`` of the target logit at the layer are averaged into
    ``D1 = E[g]``, ``D2 = E[g²]``, ``D3 = E[g³]``. With the activations ``A`` of the clean image::

        α = D2 / (2 D2 + S_k D3 + eps)   (0 where D2 = 0),   S_k = Σ_ab A_kab
        w_k = Σ_ij α_kij ReLU(D1_kij);   map = ReLU(Σ_k w_k A_k), upsampled bilinearly to H×W.

    The noise is drawn from a generator seeded with ``seed`` (deterministic for a given seed).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    acts, _ = layer_activations_and_gradients(model, images, targets, layer, gradients=False)
    span = (images.flatten(1).amax(dim=1) - images.flatten(1).amin(dim=1)).view(-1, 1, 1, 1)
    sigma = noise_level * span
    generator = torch.Generator(device=images.device).manual_seed(seed)
    d1 = d2 = d3 = None
    for _ in range(n_samples):
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        _, grads = layer_activations_and_gradients(model, images + sigma * noise, targets, layer)
        g2 = grads * grads
        if d1 is None:
            d1, d2, d3 = grads.clone(), g2, g2 * grads
        else:
            d1 += grads
            d2 += g2
            d3 += g2 * grads
    d1, d2, d3 = d1 / n_samples, d2 / n_samples, d3 / n_samples
    weights = _plus_plus_weights(d1, d2, d3, acts, eps)
    return finish_maps(_weighted_sum(weights, acts), images.shape[-2:], normalize)


@register("scorecam")
def scorecam(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, layer: nn.Module | None = None,
             max_channels: int | None = None, normalize: bool = False) -> torch.Tensor:
    """Score-CAM (Wang et al., CVPR-W 2020), gradient-free.

    Each activation channel ``A_k`` is upsampled bilinearly to H×W and min-max scaled to [0, 1]
    (``H_k``); the weight is the target's softmax *probability* on the masked image,
    ``w_k = p_c(x ⊙ H_k)`` (as the authors' code; no baseline subtraction). Channels with a
    constant activation get ``w_k = 0``. Map ``ReLU(Σ_k w_k A_k)`` at the layer's resolution,
    upsampled bilinearly to H×W. Masking is in pixel space, so hidden pixels are black (0).

    It costs one forward pass per channel and image; masked images are scored
    ``model.batch_size`` at a time and built chunk by chunk. ``max_channels`` keeps, per image,
    only the channels with the largest mean activation (the others get weight 0).
    """
    acts, _ = layer_activations_and_gradients(model, images, targets, layer, gradients=False)
    size = images.shape[-2:]
    channels = acts.shape[1]
    weights = torch.zeros(acts.shape[:2], dtype=acts.dtype, device=acts.device)
    for b in range(len(images)):
        if max_channels is not None and max_channels < channels:
            chosen = acts[b].mean(dim=(1, 2)).topk(max_channels).indices
        else:
            chosen = torch.arange(channels, device=acts.device)
        for ids in chosen.split(model.batch_size):
            up = F.interpolate(acts[b, ids][None], size=size, mode="bilinear", align_corners=False)[0]
            flat = up.flatten(1)
            valid = flat.amax(dim=1) > flat.amin(dim=1)
            masks = _normalize(up)
            masked = images[b][None] * masks[:, None].to(images.dtype)
            probs = model.batched_probs(masked)[:, targets[b]].to(weights.dtype)
            weights[b, ids] = torch.where(valid, probs, torch.zeros_like(probs))
    return finish_maps(_weighted_sum(weights, acts), size, normalize)
