"""Single-modal classifiers: any torchvision classification architecture, or any timm model,
by name, with the user's weights loaded from a file.

ImageNet classifiers and the CUB-200 ResNet-101 are configurations of this one adapter
(different ``arch``/``num_classes``). Models are always built with random initialisation
(never downloading anything) and then filled strictly from the checkpoint.

Names: ``resnet101``, ``vit_b_16``, ``convnext_tiny`` … (torchvision) or ``timm:<name>``, e.g.
``timm:vit_base_patch16_224``, ``timm:swin_tiny_patch4_window7_224``.
"""
from __future__ import annotations

import difflib
import numbers
from pathlib import Path

import torch
from torch import nn

from ..common.errors import InputError
from ..common.images import IMAGENET_MEAN, IMAGENET_STD
from ..models import ClassifierScorer
from ..common.checkpoints import load_weights

TIMM_PREFIX = "timm:"

# torchvision builds these with their pretrained weights as below: the weights were trained on
# inputs normalised to [-1, 1], which ``transform_input`` recreates from ImageNet normalisation.
# (Weight init is skipped: the checkpoint overwrites it.)
_TORCHVISION_KWARGS = {
    "googlenet": {"transform_input": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "init_weights": False},
}
# Auxiliary training heads, unused in eval mode; checkpoints saved without them still load.
_OPTIONAL_KEYS = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}


def _torchvision_names() -> list[str]:
    import torchvision

    # module=torchvision.models keeps classification only (no detection/segmentation/video/quantized)
    return torchvision.models.list_models(module=torchvision.models)


def _timm():
    """timm, or None where it is not installed (it is optional: only ``timm:`` names need it)."""
    try:
        import timm
    except ImportError:
        return None
    return timm


def _unknown(arch: str, candidates: list[str], extra: list[str] = ()) -> InputError:
    matches = list(extra) + difflib.get_close_matches(arch, candidates, n=3)
    hint = f"; did you mean: {', '.join(matches)}?" if matches else ""
    return InputError(f"unknown classifier {arch!r}{hint} (torchvision names, or timm:<name>)")


def _build_torchvision(arch: str, num_classes: int, input_size: tuple[int, int] | None) -> tuple[nn.Module, dict]:
    import torchvision

    names = _torchvision_names()
    if arch not in names:
        timm = _timm()
        # a timm name given without its prefix: point at the spelling that works
        extra = [TIMM_PREFIX + arch] if timm is not None and timm.is_model(arch) else []
        raise _unknown(arch, names, extra)
    kwargs: dict = dict(_TORCHVISION_KWARGS.get(arch, {}))
    if input_size is not None:
        h, w = (int(s) for s in input_size)
        if arch.startswith("vit_"):  # position embeddings are sized for one square resolution
            if h != w:
                raise InputError(f"{arch}: torchvision ViTs need a square input size, got {h}×{w}")
            kwargs["image_size"] = h
        elif arch.startswith("maxvit"):  # its attention grids are fixed at build time
            kwargs["input_size"] = (h, w)
        # the others pool adaptively and accept any size above their minimum
    try:
        net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    except ValueError as err:  # e.g. maxvit_t: a size its attention windows do not divide
        raise InputError(f"{arch}: cannot build for input size {input_size} ({str(err).splitlines()[0]})") from None
    if input_size is not None:
        size = (int(input_size[0]), int(input_size[1]))
    elif hasattr(net, "image_size"):  # torchvision ViT
        size = (int(net.image_size), int(net.image_size))
    else:  # the resolution torchvision's own weights for this architecture were evaluated at
        crop = torchvision.models.get_model_weights(arch).DEFAULT.transforms().crop_size
        size = (int(crop[0]), int(crop[-1]))
    return net, {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": size}


def _build_timm(arch: str, num_classes: int, input_size: tuple[int, int] | None) -> tuple[nn.Module, dict]:
    timm = _timm()
    if timm is None:
        raise InputError(f"{arch}: timm is not installed (pip install timm)")
    name = arch[len(TIMM_PREFIX):]
    if not timm.is_model(name):
        matches = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise _unknown(arch, [], [TIMM_PREFIX + m for m in matches])
    if input_size is None:
        net = timm.create_model(name, pretrained=False, num_classes=num_classes)
    else:
        size = (int(input_size[0]), int(input_size[1]))
        try:
            net = timm.create_model(name, pretrained=False, num_classes=num_classes, img_size=size)
        except TypeError as err:  # convnets take no img_size: any size works for them
            if "img_size" not in str(err):
                raise
            net = timm.create_model(name, pretrained=False, num_classes=num_classes)
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    if input_size is not None:
        size = (int(input_size[0]), int(input_size[1]))
    else:
        size = tuple(int(v) for v in cfg.get("input_size", (3, 224, 224))[1:])
    return net, {"mean": mean, "std": std, "input_size": size}


def build_classifier(arch: str, num_classes: int, input_size: tuple[int, int] | None = None) -> tuple[nn.Module, dict]:
    """Build a randomly initialised classifier with ``num_classes`` outputs.

    ``arch`` is a torchvision classification name (``resnet101``) or ``timm:<name>``.
    ``input_size`` = (H, W) resizes the architectures whose shape depends on it (torchvision
    ``vit_*`` — square only — and ``maxvit_t``; timm ViT/Swin and others accepting ``img_size``);
    convolutional networks pool adaptively and ignore it.

    Returns ``(net, preprocessing)`` where preprocessing is ``{"mean": (r, g, b), "std": (r, g, b),
    "input_size": (H, W)}``: the normalisation the net expects of RGB images in [0, 1] (ImageNet
    statistics for torchvision, the model's ``pretrained_cfg`` for timm) and the resolution it
    was built for (``input_size`` when given, else the architecture's usual evaluation size).
    Unknown names raise :class:`InputError` with close matches.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise InputError(f"{arch}: number of classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    if arch.startswith(TIMM_PREFIX):
        return _build_timm(arch, num_classes, input_size)
    return _build_torchvision(arch, num_classes, input_size)


def _is_head(module: nn.Module, num_classes: int) -> bool:
    if isinstance(module, nn.Linear):
        return module.out_features == num_classes
    if isinstance(module, nn.Conv2d):  # squeezenet-style head: 1×1 conv, then global pooling
        return module.out_channels == num_classes and tuple(module.kernel_size) == (1, 1)
    return False


def find_classifier_layer(net: nn.Module, num_classes: int) -> nn.Module | None:
    """The final classifier layer: an ``nn.Linear`` (or 1×1 ``nn.Conv2d``) with ``num_classes``
    outputs. Its input is the penultimate feature, used as the embedding.

    A model's own ``get_classifier()`` (timm) wins when it is such a layer; otherwise the last
    match in ``named_modules()`` order. Returns None when there is none.
    """
    getter = getattr(net, "get_classifier", None)
    if callable(getter):
        try:
            head = getter()
        except Exception:  # a foreign get_classifier with another meaning: fall back to the search
            head = None
        if isinstance(head, tuple) and head:  # distilled timm ViTs: (head, head_dist); head reads the class token
            head = head[0]
        if isinstance(head, nn.Module) and _is_head(head, num_classes):
            return head
    found = None
    for _, module in net.named_modules():
        if _is_head(module, num_classes):
            found = module
    return found


def _pooled_probe(conv: nn.Conv2d) -> nn.Module:
    """A module that receives the globally averaged input of a 1×1 conv head on every forward.

    A conv head's input is a B×C×h×w map; averaging it gives the B×C pooled feature that a
    linear head would see, whose size does not depend on the image size.
    """
    probe = nn.Identity()

    def feed(_: nn.Module, inputs: tuple) -> None:  # returning None leaves the conv's input as is
        probe(inputs[0].mean(dim=(2, 3)))

    conv.register_forward_pre_hook(feed)
    return probe


def build_classifier_scorer(
    arch: str,
    checkpoint: str | Path | None,
    num_classes: int,
    device: str | torch.device = "cpu",
    with_embeddings: bool = False,
    input_size: tuple[int, int] | None = None,
) -> ClassifierScorer:
    """Build ``arch`` with ``num_classes`` outputs, load ``checkpoint`` strictly, wrap it.

    The scorer takes images ``B×3×H×W`` float32, RGB, values in [0, 1], on ``device``, at the
    model's input resolution (``build_classifier(...)[1]["input_size"]``); it normalises them
    with the model's mean/std and returns probabilities = softmax(logits), B×C.

    Embeddings are the input of the final classifier layer (B×D pooled penultimate features;
    for a 1×1 conv head, its input averaged over space). They are returned whenever that layer
    is found; ``with_embeddings=True`` makes its absence an :class:`InputError`. Weight problems
    (missing file, unreadable file, wrong keys or shapes) are one-line :class:`InputError`s.
    """
    if checkpoint is None:
        raise InputError(f"--checkpoint is required for {arch}")
    net, prep = build_classifier(arch, num_classes, input_size)
    load_weights(net, checkpoint, allow_missing=_OPTIONAL_KEYS.get(arch, ()))
    head = find_classifier_layer(net, num_classes)
    if head is None and with_embeddings:
        raise InputError(f"{arch}: no final linear layer with {num_classes} outputs to take embeddings from")
    if isinstance(head, nn.Conv2d):
        head = _pooled_probe(head)
    # Hook the head even when embeddings are not asked for: it is free, and it keeps
    # ClassifierScorer off its forward_features path, which for timm ViTs gives unpooled tokens.
    return ClassifierScorer(net, prep["mean"], prep["std"], device=device, num_classes=num_classes,
                            embedding_layer=head)
