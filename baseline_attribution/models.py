"""What the baselines need to know about a network: where to hook a CAM, how to turn ViT tokens
into a patch grid, and a hidden representation — and :func:`attribution_model`, which fills all
of that in for a scorer.

Supported layouts
-----------------
* Vision transformers (the CAM layer is the *input normalisation of the last block*, whose
  output feeds the last attention over all tokens, so every patch token gets a gradient):

  - timm ``VisionTransformer``-style models (``blocks``, ``patch_embed``, ``num_prefix_tokens``;
    DeiT, DeiT-distilled, register-token and EVA-style models included): ``blocks[-1].norm1``;
    the ``num_prefix_tokens`` CLS/register/distillation tokens are dropped;
  - torchvision ``VisionTransformer``: ``encoder.layers[-1].ln_1``; one CLS token dropped;
  - open_clip ``VisionTransformer``: ``transformer.resblocks[-1].ln_1``; one CLS token dropped;
    sequence-first (N×B×D) towers (``transformer.batch_first == False``) are transposed first.

* CNNs: the last module whose output is the final B×C×h×w map before global pooling, found by
  attribute name (:data:`CNN_LAYER_PATHS`, first match wins: ``layer4`` for torchvision ResNets,
  IR-ResNet and CLIP's ModifiedResNet; ``features`` for VGG / DenseNet /
  MobileNet / EfficientNet / ConvNeXt / SqueezeNet and :class:`ShapesCNN`; …), else the last
  ``nn.Conv2d`` in ``named_modules()`` order.

* Channels-last hierarchical transformers (Swin: their maps are B×h×w×C) have no default CAM
  layer (``None``): pass ``layer=`` and a suitable reshape yourself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import base
from .base import AttributionModel

__all__ = [
    "CNN_LAYER_PATHS",
    "ViTLayout",
    "attribution_model",
    "default_cam_layer",
    "vit_layout",
    "vit_tokens_to_grid",
]

#: Attribute paths tried in order for a CNN's CAM layer (the first one that names a module holding
#: an ``nn.Conv2d`` or ``nn.BatchNorm2d``); the module itself is hooked (a ``nn.ModuleList``: its
#: last element). Checked on torchvision and timm classifiers: each gives the last NCHW map
#: before global pooling.
CNN_LAYER_PATHS: tuple[str, ...] = (
    "layer4",  # torchvision ResNet/ResNeXt/Wide-ResNet, IR-ResNet, open_clip ModifiedResNet, timm ResNet
    "features",  # torchvision VGG, AlexNet, DenseNet, MobileNet, EfficientNet, ConvNeXt, SqueezeNet; ShapesCNN
    "trunk_output",  # torchvision RegNet
    "Mixed_7c",  # torchvision Inception v3
    "inception5b",  # torchvision GoogLeNet
    "conv5",  # torchvision ShuffleNet v2
    "layers",  # torchvision MNASNet
    "stages",  # timm ConvNeXt, CSPNet, …
    "s4",  # timm RegNet
    "bn2",  # timm EfficientNet (conv_head -> bn2 with activation -> pooling)
    "blocks",  # timm MobileNetV3 (pools before its conv_head), torchvision MaxViT
)


@dataclass(frozen=True)
class ViTLayout:
    """How a vision transformer lays out its tokens.

    kind: ``"timm"``, ``"torchvision"`` or ``"open_clip"``.
    num_prefix_tokens: CLS / register / distillation tokens before the patch tokens.
    grid: the (h, w) patch grid the model was built for, or None when unknown.
    batch_first: False for sequence-first (N×B×D) token tensors.
    """

    kind: str
    num_prefix_tokens: int
    grid: tuple[int, int] | None
    batch_first: bool = True

    def patch_grid(self, num_patches: int) -> tuple[int, int]:
        """The (h, w) grid for ``num_patches`` patch tokens: the model's own grid when it has that
        many cells, else a square one; anything else is a ValueError."""
        if self.grid is not None and self.grid[0] * self.grid[1] == num_patches:
            return self.grid
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            raise ValueError(f"{num_patches} patch tokens do not form the model's grid {self.grid} or a square one")
        return side, side


def _callable_layer(layer: nn.Module) -> nn.Module:
    """``layer`` itself, or for a ``nn.ModuleList`` (not run as a whole) its last element."""
    while isinstance(layer, nn.ModuleList) and len(layer):
        layer = layer[-1]
    return layer


def vit_layout(module: nn.Module | None) -> ViTLayout | None:
    """The :class:`ViTLayout` of a supported vision transformer, or None for anything else."""
    if module is None:
        return None
    blocks = getattr(module, "blocks", None)
    if (isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks) and hasattr(module, "num_prefix_tokens")
            and hasattr(module, "patch_embed") and hasattr(blocks[-1], "norm1")):
        grid = getattr(module.patch_embed, "grid_size", None)
        grid = tuple(int(g) for g in grid) if grid is not None else None
        return ViTLayout("timm", int(module.num_prefix_tokens), grid)
    encoder = getattr(module, "encoder", None)
    if (hasattr(module, "class_token") and hasattr(module, "patch_size") and encoder is not None
            and isinstance(getattr(encoder, "layers", None), nn.Sequential)):
        side = int(module.image_size) // int(module.patch_size)
        return ViTLayout("torchvision", 1, (side, side))
    transformer = getattr(module, "transformer", None)
    if (hasattr(module, "class_embedding") and hasattr(module, "conv1") and transformer is not None
            and hasattr(transformer, "resblocks")):
        grid = getattr(module, "grid_size", None)
        grid = tuple(int(g) for g in grid) if grid is not None else None
        # older open_clip runs its transformer sequence-first without a batch_first attribute; its
        # blocks' nn.MultiheadAttention then has batch_first=False
        batch_first = getattr(transformer, "batch_first", None)
        if batch_first is None:
            batch_first = getattr(getattr(transformer.resblocks[-1], "attn", None), "batch_first", True)
        return ViTLayout("open_clip", 1, grid, batch_first=bool(batch_first))
    return None


def vit_tokens_to_grid(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping the model's token tensors (B×N×D; N×B×D for sequence-first open_clip
    towers) to B×D×h×w patch maps: the prefix tokens (CLS, registers, distillation) are dropped
    and the remaining N − prefix tokens are laid out row-major on the patch grid. Raises
    ValueError for a module that is not a supported vision transformer."""
    layout = vit_layout(module)
    if layout is None:
        raise ValueError(f"{type(module).__name__} is not a supported vision transformer "
                         "(timm, torchvision, open_clip)")
    return _TokensToGrid(layout)


@dataclass(frozen=True)
class _TokensToGrid:
    layout: ViTLayout

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3:
            raise ValueError(f"expected a 3-D token tensor, got shape {tuple(tokens.shape)}")
        if not self.layout.batch_first:
            tokens = tokens.transpose(0, 1)
        patches = tokens[:, self.layout.num_prefix_tokens:]
        h, w = self.layout.patch_grid(patches.shape[1])
        return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def default_cam_layer(module: nn.Module | None) -> nn.Module | None:
    """The default CAM target layer of ``module`` (see the module docstring), or None where there
    is none (no module, channels-last Swin-style networks, no convolution at all)."""
    if module is None:
        return None
    layout = vit_layout(module)
    if layout is not None:
        if layout.kind == "timm":
            return module.blocks[-1].norm1
        if layout.kind == "torchvision":
            return module.encoder.layers[-1].ln_1
        return module.transformer.resblocks[-1].ln_1
    if "swin" in type(module).__name__.lower():
        return None
    for path in CNN_LAYER_PATHS:
        layer = getattr(module, path, None)
        if isinstance(layer, nn.Module) and any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in layer.modules()):
            return _callable_layer(layer)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def attribution_model(scorer, batch_size: int = 64) -> AttributionModel:
    """:func:`base.from_scorer`, with what the baselines need filled in from the scorer's
    ``attribution_module``:

    * ``cam_layer`` = :func:`default_cam_layer`; ``tokens_to_grid`` = :func:`vit_tokens_to_grid`
      for vision transformers (None otherwise);
    * ``representation`` = the scorer's own (image embedding, or pooled penultimate features).
    """
    model = base.from_scorer(scorer, batch_size=batch_size)
    module = model.module
    model.cam_layer = default_cam_layer(module)
    model.tokens_to_grid = vit_tokens_to_grid(module) if vit_layout(module) is not None else None
    return model
