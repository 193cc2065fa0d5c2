"""Explanations that specific architectures give of themselves: ``bcos`` (a B-cos network's
dynamic-linear contributions) and ``bagnet`` (a BagNet's patch logits) — the ``Bcos`` and
``BagNet`` explainers of "Benchmarking the Attribution Quality of Vision Models" (Hesse et al.,
NeurIPS 2024). Both need their architecture (:mod:`submodular_attribution.archs`) and raise an
:class:`InputError` for any other model.

The networks are found in ``model.module`` (the scorer's network, or a module inside it); the
input they receive is taken by a hook during ``model.logits(images)``, so whatever normalisation
the scorer applies is the one explained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from submodular_attribution.archs import BagNet, BcosResNet
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.hooks import capture

from .base import AttributionModel, register

__all__ = ["bagnet", "bagnet_patch_map", "bcos", "bcos_contributions", "upsample_patch_map"]


def _find(model: AttributionModel, kind: type, method: str, what: str) -> nn.Module:
    module = model.module
    found = [m for m in module.modules() if isinstance(m, kind)] if isinstance(module, nn.Module) else []
    if len(found) != 1:
        got = type(module).__name__ if module is not None else "a model without a network (module=None)"
        raise InputError(f"{method}: needs a {what}, got {got}; use another attribution method for this model")
    return found[0]


def _chunks(model: AttributionModel, count: int):
    step = max(1, int(model.batch_size))
    return [(lo, min(count, lo + step)) for lo in range(0, count, step)]


# ---------------------------------------------------------------------------------------- B-cos

def bcos_contributions(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """B×6×H×W contributions W(x) ⊙ x̃ of a B-cos network to each target's **logit**.

    x̃ is the six-channel input [r, g, b, 1−r, 1−g, 1−b] the network encodes (after the scorer's
    normalisation, the identity for ``bcos_resnet50``); W(x) = ∂logit_t/∂x̃ computed in
    explanation mode (dynamic scalings detached), which is the network's dynamic linear map. The
    network having no bias, the contributions sum exactly to logit_t − the fixed logit bias
    log(1/(C−1)) (up to floating-point rounding).
    """
    net = _find(model, BcosResNet, "bcos", "B-cos network (bcos_resnet50, bcos_resnet18)")
    captured: list[torch.Tensor] = []

    def leaf(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        # replace the encoded input by a leaf, so the gradient is taken w.r.t. all six channels
        x6 = output.detach().requires_grad_(True)
        captured.append(x6)
        return x6

    out = []
    handle = net.add_inverse.register_forward_hook(leaf)
    try:
        with net.explanation_mode(), torch.enable_grad():
            for lo, hi in _chunks(model, len(images)):
                captured.clear()
                logits = model.logits(images[lo:hi])
                if len(captured) != 1:
                    raise RuntimeError(f"bcos: the B-cos input encoding ran {len(captured)} times in one forward pass")
                score = logits.gather(1, targets[lo:hi].reshape(-1, 1)).sum()
                (grad,) = torch.autograd.grad(score, captured[0])
                out.append((grad * captured[0]).detach())
    finally:
        handle.remove()
    return torch.cat(out)


@register("bcos")
def bcos(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """B-cos explanation (Böhle et al.): the contributions W(x) ⊙ x̃ to the target's **logit**,
    summed over **all six** input channels [r, g, b, 1−r, 1−g, 1−b] — as the benchmark's
    ``BcosExplainer`` (``(grad * input).sum(dim=1)`` on the six-channel input). Signed; the map
    sums to logit_t − log(1/(C−1)). Only for B-cos networks (``bcos_resnet50``, ``bcos_resnet18``)."""
    return bcos_contributions(model, images, targets).sum(dim=1)


# --------------------------------------------------------------------------------------- BagNet

def _network_input(model: AttributionModel, net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The tensor ``net`` receives when the model scores ``images`` (the normalised image)."""
    with capture(net, "bagnet: the BagNet", of="input") as seen:
        model.logits(images)
    return seen.one()


@torch.no_grad()
def bagnet_patch_map(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """B×h×w target **patch logits** p_ij = w_t·f_ij + b_t of a BagNet (one per receptive-field
    window, ``patch_stride`` px apart; 24×24 for BagNet-33 at 224×224). Their mean over (i, j) is
    exactly the target's logit, i.e. Σ_ij (p_ij − b_t) = h·w·(logit_t − b_t)."""
    net = _find(model, BagNet, "bagnet", "BagNet (bagnet33, bagnet9)")
    out = []
    for lo, hi in _chunks(model, len(images)):
        logits = net.patch_logits(_network_input(model, net, images[lo:hi]))
        index = targets[lo:hi].reshape(-1, 1, 1, 1).expand(-1, 1, *logits.shape[2:])
        out.append(logits.gather(1, index).squeeze(1))
    return torch.cat(out)


def upsample_patch_map(patch_map: torch.Tensor, size: tuple[int, int], receptive_field: int,
                       stride: int) -> torch.Tensor:
    """B×h×w patch values → B×H×W: each value sits at its window's centre pixel
    (stride·i + (receptive_field − 1)/2, likewise for j), pixels in between are bilinearly
    interpolated, and pixels beyond the outermost centres take the nearest centre's value."""
    b, h, w = patch_map.shape
    offset = (receptive_field - 1) / 2

    def coords(n_out: int, n_in: int) -> torch.Tensor:
        u = ((torch.arange(n_out, dtype=patch_map.dtype, device=patch_map.device) - offset) / stride).clamp(0, n_in - 1)
        return 2 * u / (n_in - 1) - 1 if n_in > 1 else torch.zeros_like(u)

    ys, xs = coords(size[0], h), coords(size[1], w)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # H×W×2 as (x, y)
    grid = grid.unsqueeze(0).expand(b, -1, -1, -1)
    return F.grid_sample(patch_map.unsqueeze(1), grid, mode="bilinear", align_corners=True).squeeze(1)


@register("bagnet")
@torch.no_grad()
def bagnet(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *,
           dense: bool = True) -> torch.Tensor:
    """BagNet explanation (Brendel & Bethge): the target's **logit** of local patches as the map.

    ``dense=True`` (default; the benchmark's ``BagNetExplainer``, via the BagNet code's
    ``generate_heatmap_pytorch``): at every pixel, the target logit of the receptive-field window
    centred there (33×33 for BagNet-33), the network input zero-padded by (33 − 1)/2 = 16 px (zero
    = the mean colour after ImageNet normalisation). Exact, computed with 64 shifted passes (:meth:`BagNet.dense_patch_logits`;
    ~14× fewer input pixels than the original's 50176 window passes, but still minutes per 224×224
    image for BagNet-33 on one CPU core — use a GPU, or ``dense=False``).
    ``dense=False``: the network's own h×w patch logits (:func:`bagnet_patch_map`, one forward
    pass) upsampled by :func:`upsample_patch_map`. Bias b_t included in both. Only for BagNets
    (``bagnet33``, ``bagnet9``).
    """
    net = _find(model, BagNet, "bagnet", "BagNet (bagnet33, bagnet9)")
    if not dense:
        coarse = bagnet_patch_map(model, images, targets)
        return upsample_patch_map(coarse, tuple(images.shape[2:]), net.receptive_field, net.patch_stride)
    out = []
    for lo, hi in _chunks(model, len(images)):
        out.append(net.dense_patch_logits(_network_input(model, net, images[lo:hi]), targets[lo:hi]))
    return torch.cat(out)
