"""The published evidential (EDL) uncertainty networks, loaded with their key names as published.

The original research code ships three PyTorch files; each is a whole image network (not a
head on the recognition model's embedding) trained with an evidential loss:

* ``edl-101-10177.pth`` (CelebA, 10,177 identities) and ``edl-101-8631.pth`` (VGGFace2, 8,631):
  an insightface IR-ResNet-100 (keys ``conv1 bn1 prelu layer1..4 bn2 fc features``) with one more
  ``fc2: Linear(512, C)``; input 112×112 RGB, ``(x − 0.5)/0.5``. Their evidence is
  ``exp(clamp(5·z, −10, 10))`` (scale 5).
* ``cub-resnet101-edl.pth`` (CUB-200): a torchvision ResNet-101 (keys ``conv1 … layer4 fc``)
  with ``fc: Linear(2048, 200)``; input 224×224 RGB, ``(x − 0.5)/0.5`` (not ImageNet's
  normalisation); evidence ``exp(clamp(z, −10, 10))`` (scale 1).

With α = evidence + 1, the uncertainty is u = C / Σ_k α_k and the objective's confidence term is
1 − u (``objective.edl_confidence``). :class:`EvidentialNetwork` returns the *scaled* logits
s·z, so that ``edl_confidence`` with its default scale 1 gives exactly the published value.
A ``module.`` prefix (DataParallel) is removed; other missing or extra keys are an error.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..common.checkpoints import load_state, read_state_dict, strip_prefixes
from ..common.errors import InputError
from ..models import ModelOutput

FACE_EDL_SCALE = 5.0
CUB_EDL_SCALE = 1.0
CUB_EDL_SIZE = 224


class EvidentialNetwork(nn.Module):
    """An image network whose logits z are evidential: ``forward(images)`` takes ``B×3×H×W``
    RGB in [0, 1], resizes to ``input_size`` (bilinear, antialiased) when needed, normalises
    ``(x − 0.5)/0.5`` and returns ``scale · z`` (B×C)."""

    takes_images = True  # the face scorer feeds it the images, not the embeddings

    def __init__(self, net: nn.Module, num_classes: int, scale: float, input_size: int) -> None:
        super().__init__()
        self.net = net
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.input_size = int(input_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(next(self.net.parameters()).dtype)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return self.scale * self.net((x - 0.5) / 0.5)


def stage_depths(state: dict, prefix: str = "layer") -> tuple[int, ...]:
    """Blocks per stage read from keys ``layer<s>.<b>.…`` (e.g. (3, 13, 30, 3))."""
    blocks: dict[int, set[int]] = {}
    for key in state:
        m = re.match(rf"{prefix}(\d+)\.(\d+)\.", key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return tuple(len(blocks[s]) for s in sorted(blocks))


def load_evidential_network(path: str | Path, build: Callable[[dict], nn.Module], head_key: str,
                            scale: float, input_size: int | Callable[[dict], int]) -> EvidentialNetwork:
    """Read ``path``, build the network with ``build(state)`` (sized from the file), load it
    strictly and wrap it; ``head_key`` (e.g. ``fc2.weight``) gives the class count;
    ``input_size`` is a side length or a function of the state dict."""
    state = read_state_dict(path)
    state = strip_prefixes(state, [head_key])
    head = state.get(head_key)
    if head is None or head.ndim != 2:
        raise InputError(f"{path}: not an evidential network of the expected kind (no {head_key!r} matrix; "
                         f"keys: {', '.join(list(state)[:4])})")
    net = build(state)
    counters = [k for k in net.state_dict() if k.endswith("num_batches_tracked")]
    load_state(net, state, path, allow_missing=counters)
    size = input_size(state) if callable(input_size) else input_size
    return EvidentialNetwork(net.eval(), head.shape[0], scale, size).eval()


def load_cub_edl(path: str | Path) -> EvidentialNetwork:
    """``cub-resnet101-edl.pth``: a torchvision ResNet (depth read from the keys; 101 as
    published) with ``fc`` to C classes; scale 1, 224×224 (module docstring)."""
    import torchvision

    def build(state: dict) -> nn.Module:
        depths = stage_depths(state)
        bottleneck = "layer1.0.conv3.weight" in state
        names = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet50" if bottleneck else "resnet34",
                 (3, 4, 23, 3): "resnet101", (3, 8, 36, 3): "resnet152"}
        if depths not in names:
            raise InputError(f"{path}: blocks per stage {list(depths)} are not a torchvision ResNet's")
        return torchvision.models.get_model(names[depths], weights=None, num_classes=state["fc.weight"].shape[0])

    return load_evidential_network(path, build, "fc.weight", CUB_EDL_SCALE, CUB_EDL_SIZE)


class EvidentialScorer:
    """Any scorer plus an :class:`EvidentialNetwork` run on the same images: its output gains
    ``evidence_logits``; every other attribute is the wrapped scorer's."""

    def __init__(self, scorer, edl: EvidentialNetwork) -> None:
        if edl.num_classes != scorer.num_classes:
            raise InputError(f"evidential network has {edl.num_classes} classes but the model has {scorer.num_classes}")
        self.scorer = scorer
        self.edl = edl.to(scorer.device).eval()

    def __getattr__(self, name: str):
        return getattr(self.__dict__["scorer"], name)

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        out = self.scorer(images)
        return ModelOutput(probs=out.probs, embeddings=out.embeddings, evidence_logits=self.edl(images))


def attach_cub_edl(scorer, path: str | Path | None):
    """``scorer`` with the CUB evidential network of ``path`` (``--uncertainty-head``), or
    ``scorer`` itself when ``path`` is None. Class counts must agree."""
    if path is None:
        return scorer
    edl = load_cub_edl(path)
    try:
        return EvidentialScorer(scorer, edl)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
