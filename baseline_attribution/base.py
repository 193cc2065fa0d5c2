"""One interface for every baseline attribution method.

A method is a function ``fn(model, images, targets, **options) -> B×H×W`` registered by name:

* ``model``: an :class:`AttributionModel` (built from any scorer with :func:`from_scorer`);
* ``images``: B×3×H×W float, RGB in [0, 1], on ``model.device`` (the scorer normalises);
* ``targets``: B class indices (long tensor);
* returns B×H×W float saliency maps on the device, at the images' resolution; larger = more
  important for the target class.

Methods differentiate or score the model's *logits* or *probabilities* as each one's
docstring states; every path method accepts ``recalibrate=True`` (Yang et al., ICLR 2023).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from submodular_attribution.models import DifferentiableScorer

MethodFn = Callable[..., torch.Tensor]
# A batch of images, or a builder ``build(lo, hi)`` of images lo..hi−1 (see AttributionModel.batched).
Images = torch.Tensor | Callable[[int, int], torch.Tensor]
REGISTRY: dict[str, MethodFn] = {}


def register(name: str) -> Callable[[MethodFn], MethodFn]:
    """Decorator: add a method to :data:`REGISTRY` under ``name`` (CLI choices come from its keys)."""

    def add(fn: MethodFn) -> MethodFn:
        if name in REGISTRY:
            raise ValueError(f"attribution method {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return add


@dataclass
class AttributionModel:
    """What baseline methods need of a model.

    logits: differentiable ``images (B×3×H×W RGB [0, 1]) -> B×C`` logits.
    module: the image network, for hooks (CAM target layers, attention maps), or None.
    cam_layer: default CAM target layer, or None where CAMs do not apply.
    tokens_to_grid: for transformers, maps a B×N×D token activation to B×D×h×w with the
        CLS/register tokens dropped; None for CNNs.
    representation: hidden representation ``images -> B×…`` (IG²'s path), or None.
    batch_size: images per forward pass for methods that score many perturbations.
    pixel_mean: the RGB [0, 1] colour the model's normalisation maps to zero, or None.
    """

    logits: Callable[[torch.Tensor], torch.Tensor]
    num_classes: int
    device: torch.device
    module: nn.Module | None = None
    cam_layer: nn.Module | None = None
    tokens_to_grid: Callable[[torch.Tensor], torch.Tensor] | None = None
    representation: Callable[[torch.Tensor], torch.Tensor] | None = None
    batch_size: int = 64
    pixel_mean: tuple[float, float, float] | None = None

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).softmax(dim=-1)

    @torch.no_grad()
    def batched(self, fn: Callable[[torch.Tensor], torch.Tensor], images: Images,
                count: int | None = None) -> torch.Tensor:
        """``fn`` of many images, ``batch_size`` at a time, without gradients: N×… results
        concatenated along dim 0.

        images: an N×3×H×W tensor, or a builder ``build(lo, hi) -> (hi − lo)×3×H×W`` together
        with ``count`` = N, so that perturbed images exist one chunk at a time.
        """
        if callable(images):
            if count is None:
                raise ValueError("count is required when images is a builder")
            build = images
        else:
            count, build = len(images), lambda lo, hi: images[lo:hi]
        step = max(1, int(self.batch_size))
        return torch.cat([fn(build(lo, min(count, lo + step))) for lo in range(0, count, step)])

    def batched_logits(self, images: Images, count: int | None = None) -> torch.Tensor:
        """N×C logits of many images (a tensor, or a builder and ``count``: see :meth:`batched`)."""
        return self.batched(self.logits, images, count)

    def batched_probs(self, images: Images, count: int | None = None) -> torch.Tensor:
        """N×C softmax probabilities of many images (as :meth:`batched_logits`)."""
        return self.batched(self.probs, images, count)


def from_scorer(scorer: DifferentiableScorer, batch_size: int = 64) -> AttributionModel:
    """An :class:`AttributionModel` for a scorer that meets the :class:`DifferentiableScorer`
    contract (differentiable logits, the network to hook, its neutral colour, a representation)."""
    if not isinstance(scorer, DifferentiableScorer):
        raise TypeError(f"{type(scorer).__name__} is not a DifferentiableScorer (needs logits(), representation(), "
                        "attribution_module and pixel_mean); gradient methods need one")
    return AttributionModel(logits=scorer.logits, num_classes=scorer.num_classes, device=scorer.device,
                            module=scorer.attribution_module, representation=scorer.representation,
                            batch_size=batch_size, pixel_mean=scorer.pixel_mean)


def attribute(method: str, model: AttributionModel, images: torch.Tensor, targets, *, numpy: bool = False,
              **options) -> torch.Tensor | np.ndarray:
    """Run a registered method; returns B×H×W maps (a float32 numpy array with ``numpy=True``)."""
    if method not in REGISTRY:
        raise KeyError(f"unknown attribution method {method!r}; choose from {', '.join(sorted(REGISTRY))}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be B×3×H×W, got {tuple(images.shape)}")
    images = images.to(model.device)
    targets = torch.as_tensor(targets, device=model.device).long().reshape(-1)
    if len(targets) != len(images):
        raise ValueError(f"{len(targets)} targets for {len(images)} images")
    maps = REGISTRY[method](model, images, targets, **options)
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise AssertionError(f"{method} returned {tuple(maps.shape)}, expected B×H×W {tuple(images.shape[:1] + images.shape[2:])}")
    return maps.detach().float().cpu().numpy() if numpy else maps
