"""Attention-based attributions for vision transformers.

* ``rollout``: attention rollout (Abnar & Zuidema, ACL 2020);
* ``transformer-attribution``: gradient-weighted attention rollout (Chefer, Gur & Wolf, ICCV 2021,
  "Generic Attention-model Explainability…", the self-attention rule). Their CVPR 2021 method
  ("Transformer Interpretability Beyond Attention Visualization") weights LRP relevances of the
  attention maps instead of the maps themselves; this LRP-free rule is the one implemented here.

Both read the softmax attention maps of every block. Supported: timm ``VisionTransformer``-style
models with a class token (DeiT, register and distilled variants included) whose blocks hold a
timm ``Attention`` (``attn.attn_drop``, ``attn.fused_attn``): during the call each block's fused
(scaled-dot-product) attention is switched off so that the explicit softmax runs, the maps are
taken from the input of ``attn.attn_drop`` (an identity in eval mode), and the flag is restored
afterwards. Any other network (torchvision or open_clip ViTs, CNNs, ViTs without a class token)
raises a TypeError.

The function-level cores :func:`rollout_from_attentions` and :func:`chefer_from_attentions` work
on any list of B×heads×N×N attention tensors.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .base import AttributionModel, register
from .cam import finish_maps
from .models import vit_layout

__all__ = [
    "capture_attentions",
    "chefer_from_attentions",
    "rollout_from_attentions",
    "rollout",
    "transformer_attribution",
]

_FUSIONS = ("mean", "max", "min")


def _check(attns: list[torch.Tensor]) -> None:
    if not attns:
        raise ValueError("need at least one attention map")
    for a in attns:
        if a.ndim != 4 or a.shape[-1] != a.shape[-2] or a.shape != attns[0].shape:
            raise ValueError(f"attention maps must all be B×heads×N×N, got {[tuple(x.shape) for x in attns]}")


def rollout_from_attentions(attns: list[torch.Tensor], head_fusion: str = "mean",
                            num_prefix_tokens: int = 1) -> torch.Tensor:
    """Attention rollout over blocks given in forward order; returns B×(N − prefix).

    Per block, heads are fused (``mean``, ``max`` or ``min`` over dim 1) into ``A`` (B×N×N), the
    residual is accounted for by ``Â = (A + I)`` with rows renormalised to sum to 1 (for
    ``mean``: ``(A + I)/2``), and ``R = Â_L ⋯ Â_2 Â_1``. The result is the row of the first
    (CLS) token over the patch tokens, ``R[:, 0, prefix:]``.
    """
    _check(attns)
    if head_fusion not in _FUSIONS:
        raise ValueError(f"head_fusion must be one of {_FUSIONS}, got {head_fusion!r}")
    n = attns[0].shape[-1]
    eye = torch.eye(n, dtype=attns[0].dtype, device=attns[0].device)
    result = None
    for a in attns:
        fused = {"mean": lambda t: t.mean(dim=1), "max": lambda t: t.amax(dim=1),
                 "min": lambda t: t.amin(dim=1)}[head_fusion](a)
        fused = fused + eye
        fused = fused / fused.sum(dim=-1, keepdim=True)
        result = fused if result is None else fused @ result
    return result[:, 0, num_prefix_tokens:]


def chefer_from_attentions(attns: list[torch.Tensor], grads: list[torch.Tensor],
                           num_prefix_tokens: int = 1) -> torch.Tensor:
    """Gradient-weighted attention rollout (Chefer et al., ICCV 2021, eqs. 5–6); returns B×(N − prefix).

    Blocks in forward order; ``grads[i] = ∂y_c/∂attns[i]``. Starting from ``R = I`` (B×N×N), per
    block ``Ā = E_heads[(∇A ⊙ A)⁺]`` and ``R ← R + Ā R``. The result is the CLS row over the
    patch tokens, ``R[:, 0, prefix:]``.
    """
    _check(attns)
    if len(grads) != len(attns) or any(g.shape != a.shape for g, a in zip(grads, attns)):
        raise ValueError("need one gradient per attention map, of the same shape")
    b, _, n, _ = attns[0].shape
    relevance = torch.eye(n, dtype=attns[0].dtype, device=attns[0].device).expand(b, n, n)
    for a, g in zip(attns, grads):
        weighted = (g * a).clamp(min=0).mean(dim=1)
        relevance = relevance + weighted @ relevance
    return relevance[:, 0, num_prefix_tokens:]


def _attention_modules(module: nn.Module | None) -> list[nn.Module]:
    layout = vit_layout(module)
    if layout is None or layout.kind != "timm":
        name = "no network" if module is None else type(module).__name__
        raise TypeError(f"attention-based attribution supports timm VisionTransformer-style models only, got {name}")
    found = []
    for i, block in enumerate(module.blocks):
        attn = getattr(block, "attn", None)
        if (attn is None or not isinstance(getattr(attn, "attn_drop", None), nn.Module)
                or not hasattr(attn, "fused_attn")):
            raise TypeError(f"block {i} ({type(block).__name__}) has no timm Attention with attn_drop/fused_attn; "
                            "cannot read its attention maps")
        found.append(attn)
    return found


@contextmanager
def capture_attentions(module: nn.Module):
    """Context manager yielding a list that collects, per forward pass, each block's softmax
    attention (B×heads×N×N, still in the autograd graph) of a timm ViT, in block order."""
    attns = _attention_modules(module)
    captured: list[torch.Tensor] = []
    saved = [a.fused_attn for a in attns]
    handles = []
    try:
        for a in attns:
            a.fused_attn = False
            handles.append(a.attn_drop.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0])))
        yield captured
    finally:
        for h in handles:
            h.remove()
        for a, flag in zip(attns, saved):
            a.fused_attn = flag


def _to_image(model: AttributionModel, scores: torch.Tensor, size, normalize: bool) -> torch.Tensor:
    """B×P patch scores -> laid out on the patch grid -> upsampled bilinearly to ``size``."""
    h, w = vit_layout(model.module).patch_grid(scores.shape[1])
    return finish_maps(scores.reshape(-1, h, w), size, normalize)


@register("rollout")
def rollout(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, head_fusion: str = "mean",
            normalize: bool = False) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020), class-agnostic (``targets`` are ignored).

    :func:`rollout_from_attentions` of all blocks' attention maps (heads fused by ``head_fusion``),
    CLS row over the patch tokens, laid out on the patch grid and upsampled bilinearly to H×W.
    Raw values (rows of a product of row-stochastic matrices) unless ``normalize=True`` (min-max).
    """
    prefix = _prefix(model)
    maps = []
    with torch.no_grad():
        for chunk in images.split(model.batch_size):
            with capture_attentions(model.module) as attns:
                model.logits(chunk)
            maps.append(rollout_from_attentions(_one_pass(attns, model), head_fusion, prefix))
    return _to_image(model, torch.cat(maps), images.shape[-2:], normalize)


@register("transformer-attribution")
def transformer_attribution(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
                            normalize: bool = False) -> torch.Tensor:
    """Gradient-weighted attention rollout (Chefer et al., ICCV 2021) for the target *logit*.

    :func:`chefer_from_attentions` with ``∇A = ∂y_c/∂A`` of every block's attention map, CLS row
    over the patch tokens, laid out on the patch grid and upsampled bilinearly to H×W. Raw values
    unless ``normalize=True`` (min-max).
    """
    prefix = _prefix(model)
    maps = []
    for chunk, chunk_targets in zip(images.split(model.batch_size), targets.split(model.batch_size)):
        x = chunk.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            with capture_attentions(model.module) as attns:
                logits = model.logits(x)
            attns = _one_pass(attns, model)
            score = logits.gather(1, chunk_targets.view(-1, 1)).sum()
            grads = torch.autograd.grad(score, attns, allow_unused=True)
        grads = [torch.zeros_like(a) if g is None else g for a, g in zip(attns, grads)]
        maps.append(chefer_from_attentions([a.detach() for a in attns], [g.detach() for g in grads], prefix))
    return _to_image(model, torch.cat(maps), images.shape[-2:], normalize)


def _prefix(model: AttributionModel) -> int:
    _attention_modules(model.module)  # raises for unsupported networks
    if getattr(model.module, "cls_token", None) is None:
        raise TypeError(f"{type(model.module).__name__} has no class token, whose attention row these methods read")
    return vit_layout(model.module).num_prefix_tokens


def _one_pass(attns: list[torch.Tensor], model: AttributionModel) -> list[torch.Tensor]:
    expected = len(model.module.blocks)
    if len(attns) != expected:
        raise RuntimeError(f"captured {len(attns)} attention maps in one forward pass, expected {expected}")
    return list(attns)
