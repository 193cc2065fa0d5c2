"""torchvision detection architectures (Faster R-CNN, RetinaNet, FCOS, SSD, Mask R-CNN's boxes) as
:class:`~submodular_attribution.detection.scorer.Detector`\\ s.

Weights: a user's state dict (``--checkpoint``, e.g. ``ckpt/fasterrcnn-mine.pth``; a ``model``/
``state_dict`` wrapper is unwrapped) for a model built with ``num_classes`` outputs, or, with
``weights=NAME`` (``DEFAULT``, ``COCO_V1``, …), torchvision's published weights read from the
torch cache (``$TORCH_HOME/hub/checkpoints``) and downloaded only with ``allow_download``, as
for classifiers. Class indices are the model's own label ids (COCO weights: 91 ids with
``__background__`` at 0 and ``N/A`` gaps; Faster R-CNN and SSD count the background class in
``num_classes``, RetinaNet and FCOS do not).

Images reach the model as RGB [0, 1] tensors at the front end's input resolution; the model's
own transform normalises and resizes them (``min_size``/``max_size``) and maps its boxes back
to that resolution. The score threshold is lowered to 0.001 (from 0.05–0.2) so that weak
detections of partly revealed images still count with their weak scores.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..common.checkpoints import load_state, read_state_dict
from ..common.errors import InputError
from .matching import Detections

SCORE_THRESHOLD = 0.001
# The score-threshold keyword of each family's constructor.
_THRESHOLD_KEY = {"fasterrcnn": "box_score_thresh", "maskrcnn": "box_score_thresh", "keypointrcnn": "box_score_thresh",
                  "retinanet": "score_thresh", "fcos": "score_thresh", "ssd": "score_thresh"}


def detection_architectures() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models.detection))


def _family(arch: str) -> str:
    return next(key for key in _THRESHOLD_KEY if arch.startswith(key))


def _check_arch(arch: str) -> None:
    names = detection_architectures()
    if arch not in names:
        raise InputError(f"--model {arch}: not a torchvision detection architecture (choose from {', '.join(names)})")


def published_detection_weights(arch: str, name: str):
    """The torchvision weights enum member ``name`` of ``arch`` (InputError when unknown)."""
    import torchvision

    _check_arch(arch)
    enum = torchvision.models.get_model_weights(arch)
    key = name.strip().split(".")[-1].upper()
    try:
        return enum[key]
    except KeyError:
        raise InputError(f"--weights {name}: not a torchvision weights name of {arch} "
                         f"(choose from {', '.join(enum.__members__)})") from None


def build_torchvision_detector(arch: str, num_classes: int, **options) -> torch.nn.Module:
    """An untrained ``arch`` with ``num_classes`` outputs, no backbone download, the low score
    threshold; ``options`` go to the constructor (e.g. ``min_size``, ``max_size``)."""
    import torchvision

    _check_arch(arch)
    kwargs = {_THRESHOLD_KEY[_family(arch)]: SCORE_THRESHOLD, **options}
    try:
        return torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as err:
        raise InputError(f"--model {arch}: cannot build it ({str(err).splitlines()[0]})") from None


class TorchvisionDetector:
    """A torchvision detection model in eval mode: images B×3×H×W RGB [0, 1] → :class:`Detections`
    (boxes in the pixels of those images; each detection scores its own label only)."""

    def __init__(self, net: torch.nn.Module, num_classes: int, device: str | torch.device = "cpu",
                 class_names: list[str] | None = None) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.num_classes = num_classes
        self.class_names = class_names

    def __call__(self, images: torch.Tensor) -> Detections:
        outputs = self.net(list(images))
        return Detections.from_labels([o["boxes"] for o in outputs], [o["labels"] for o in outputs],
                                      [o["scores"] for o in outputs], self.num_classes)


def load_torchvision_detector(arch: str, checkpoint: str | Path | None, num_classes: int | None,
                              device: str | torch.device = "cpu", weights: str | None = None,
                              allow_download: bool = False, **options) -> TorchvisionDetector:
    """``arch`` with a user's ``checkpoint`` (``num_classes`` outputs) or torchvision's published
    ``weights`` (their class count and names; from the torch cache unless ``allow_download``)."""
    if weights:
        from ..adapters.classifier import torch_cache_file

        member = published_detection_weights(arch, weights)
        path = torch_cache_file(member.url)
        if not path.is_file() and not allow_download:
            raise InputError(f"--weights {weights}: not in the torch cache ({path}); put the file there "
                             f"(from {member.url}) or pass --allow-download")
        names = [str(c) for c in member.meta.get("categories", [])] or None
        net = build_torchvision_detector(arch, len(names) if names else int(num_classes or 91), **options)
        try:
            state = member.get_state_dict(progress=False, check_hash=True, map_location="cpu", weights_only=True)
        except Exception as err:  # a truncated or foreign file, or a failed download
            raise InputError(f"{path}: cannot read {arch} {member.name} weights ({str(err).splitlines()[0]})") from None
        load_state(net, state, path)
        return TorchvisionDetector(net, len(names) if names else int(num_classes or 91), device, names)
    if num_classes is None or num_classes < 1:
        raise InputError("--num-classes: give the class count of the checkpoint's head (≥ 1)")
    if checkpoint is None:
        raise InputError(f"--model {arch}: give --checkpoint (a state dict) or --weights NAME")
    net = build_torchvision_detector(arch, num_classes, **options)
    load_state(net, read_state_dict(checkpoint), checkpoint)
    return TorchvisionDetector(net, num_classes, device)
