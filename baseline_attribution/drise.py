"""Saliency baselines for detection targets, scored with the same detection score as SMDL.

:func:`detection_attribution_model` wraps a
:class:`~submodular_attribution.detection.scorer.DetectionScorer` (bound to its targets) as an
:class:`~baseline_attribution.base.AttributionModel` whose ``probs`` *and* ``logits`` are the
detection scores (B×T: max over detections of IoU with target t's box × score for its class or
phrase), so every registered method and metric reads the detection score where it would read
a class probability or logit:

* :func:`drise` — D-RISE-style random masks (Petsiuk et al., CVPR 2021): RISE's masks and
  weighted sum, each mask weighted by the detection score of the masked image (D-RISE's
  similarity of detection vectors is replaced by our IoU × score); defaults as D-RISE's
  (p = 0.5 kept, 16×16 cells), N = 1000 masks.
* Grad-CAM (``attribute("gradcam", model, …)``) differentiates the detection score through
  the detector's CAM layer (``cam_layer`` of the detector adapter, when it has one).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import AttributionModel
from .blackbox import _rise


@dataclass
class DetectionAttributionModel(AttributionModel):
    """An AttributionModel whose probabilities are the (unnormalised) detection scores."""

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images)


def detection_attribution_model(scorer, batch_size: int = 64) -> DetectionAttributionModel:
    """``scorer``: a bound DetectionScorer; its detector's ``attribution_module`` and
    ``cam_layer`` (if any) serve CAM methods."""
    detector = scorer.detector
    return DetectionAttributionModel(logits=scorer.scores, num_classes=scorer.num_classes, device=scorer.device,
                                     module=getattr(detector, "attribution_module", None),
                                     cam_layer=getattr(detector, "cam_layer", None), batch_size=batch_size)


def drise(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, N: int = 1000, s: int = 16,
          p: float = 0.5, seed: int = 0) -> torch.Tensor:
    """B×H×W: Σ_i score_t(image ⊙ M_i) · M_i / (N·p) over N random masks M_i (s×s cells kept with
    probability p, bilinearly upsampled and randomly shifted, as RISE), black fill; score_t
    the detection score of target t (``model.probs``)."""
    return _rise(model, images, targets, N, s, p, seed, uniform_fill=False)
