"""The benchmark architectures by name, with the preprocessing their published weights expect.

Names are those of "Benchmarking the Attribution Quality of Vision Models" (Hesse, Schaub-Meyer &
Roth, NeurIPS 2024; code: github.com/visinf/idsds, ``evaluate.py --model``). Their fine-tuned
weights are published as ``<model>_imagenet1000_lr0.001_epochs30_step10_checkpoint_best.pth.tar``
(``bagnet9`` and ``bcos_resnet18``, also in its model list, have none): a dict with
``state_dict``, ``epoch``, ``best_acc1``, ``optimizer``, ``scheduler`` and ``args`` (an
``argparse.Namespace``). The state dict was saved from ``torch.nn.DataParallel``, so every key
starts with ``module.`` (``module.model.`` for ``bcos_resnet50``, which their ``BcosModel``
wrapper holds as ``model``); :func:`submodular_attribution.common.checkpoints.load_state` strips
both prefixes.

Normalisation (their ``utils.get_imagenet_loaders``): ImageNet mean/std for every model here
except the B-cos networks, which take RGB in [0, 1] unnormalised (mean 0, std 1) and encode it
themselves as the six channels [r, g, b, 1−r, 1−g, 1−b]. Evaluation size 224×224 (resize 256,
centre crop 224).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..common.errors import InputError
from ..common.images import IMAGENET_MEAN, IMAGENET_STD
from .bagnet import bagnet9, bagnet33
from .bcos import bcos_resnet18, bcos_resnet50
from .fixup import fixup_resnet50
from .xdnn import x_resnet50, x_vgg16

EVAL_SIZE = (224, 224)


@dataclass(frozen=True)
class ArchSpec:
    """build(num_classes) -> randomly initialised net; mean/std: RGB normalisation of images in
    [0, 1] the published weights were trained with; min_size: the smallest input side the net
    accepts; checkpoint: the published fine-tuned file's name (None: the benchmark lists the
    model but published no fine-tuned weights for it)."""

    build: Callable[[int], nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min_size: int
    checkpoint: str | None


def _file(stem: str) -> str:
    return f"{stem}_imagenet1000_lr0.001_epochs30_step10_checkpoint_best.pth.tar"


# The published files of x_resnet50 and x_vgg16 drop the underscore (their README's links).
REGISTRY: dict[str, ArchSpec] = {
    "fixup_resnet50": ArchSpec(fixup_resnet50, IMAGENET_MEAN, IMAGENET_STD, 32, _file("fixup_resnet50")),
    "x_resnet50": ArchSpec(x_resnet50, IMAGENET_MEAN, IMAGENET_STD, 32, _file("xresnet50")),
    "x_vgg16": ArchSpec(x_vgg16, IMAGENET_MEAN, IMAGENET_STD, 32, _file("xvgg16")),
    "bcos_resnet50": ArchSpec(bcos_resnet50, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 32, _file("bcos_resnet50")),
    "bagnet33": ArchSpec(bagnet33, IMAGENET_MEAN, IMAGENET_STD, 33, _file("bagnet33")),
    # in the benchmark's --model list too, without fine-tuned weights
    "bagnet9": ArchSpec(bagnet9, IMAGENET_MEAN, IMAGENET_STD, 9, None),
    # (their loader normalises only bcos_resnet50 with mean 0/std 1; a B-cos net needs [0, 1] input)
    "bcos_resnet18": ArchSpec(bcos_resnet18, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 32, None),
}


def build_arch(name: str, num_classes: int, input_size: tuple[int, int] | None = None) -> tuple[nn.Module, dict]:
    """Build the registered architecture ``name`` randomly initialised with ``num_classes``
    outputs; returns ``(net, {"mean", "std", "input_size"})`` as ``adapters.classifier.build_classifier``.

    These networks pool adaptively, so ``input_size`` (H, W) only sets the reported size
    (default 224×224); a side below the network's minimum is an :class:`InputError`.
    """
    spec = REGISTRY[name]
    size = EVAL_SIZE if input_size is None else (int(input_size[0]), int(input_size[1]))
    if min(size) < spec.min_size:
        raise InputError(f"{name}: input size {size[0]}×{size[1]} is below its minimum {spec.min_size}×{spec.min_size}")
    return spec.build(num_classes), {"mean": spec.mean, "std": spec.std, "input_size": size}
