"""A detector (or grounding model) as an engine scorer, bound to the targets being explained.

The engine reads ``probs[:, target]`` of a :class:`~submodular_attribution.models.ModelOutput`.
:class:`DetectionScorer` returns, for each image of a batch, one column per bound target:
column t = max over the model's detections of IoU(detection box, box_t) × the detection's score
for target t's class (or phrase) (:func:`~submodular_attribution.detection.matching.match_scores`;
no IoU threshold; 0 without detections). So consistency is the detection score of insert(S) and
collaboration 1 − that of delete(S), and the searches, images-at-once batching, honest curves
and result files work as for classes. The columns are not a distribution: the confidence and
effectiveness terms do not apply (their weights must be 0). With fewer than two targets a zero
column pads the matrix to two.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch

from ..models import ModelOutput
from .matching import Detections, match_scores


@runtime_checkable
class Detector(Protocol):
    """images B×3×H×W (RGB, [0, 1], on ``device``) → :class:`Detections` with boxes in the pixels
    of those images and scores over the detector's queries (classes, or phrases set by
    ``set_phrases`` for a grounding model)."""

    device: torch.device

    def __call__(self, images: torch.Tensor) -> Detections: ...


class DetectionScorer:
    """Wraps a :class:`Detector`; :meth:`bind` sets the targets whose columns ``probs`` holds.

    Targets are ``(box, query)``: box x1 y1 x2 y2 in the pixels of the images the scorer is
    given (the model's input resolution), query a class index, or a phrase for a detector with
    ``set_phrases``."""

    def __init__(self, detector: Detector, class_names: Sequence[str] | None = None) -> None:
        self.detector = detector
        self.device = torch.device(detector.device)
        self.class_names = None if class_names is None else list(class_names)
        self.boxes = torch.zeros(0, 4, device=self.device)
        self.queries = torch.zeros(0, dtype=torch.long, device=self.device)
        self.phrases: list[str] = []

    @property
    def num_classes(self) -> int:
        return max(2, int(self.boxes.shape[0]))

    def bind(self, targets: Sequence[tuple[Sequence[float], int | str]]) -> "DetectionScorer":
        """Bind targets (column t = targets[t]); phrases are handed to the detector's
        ``set_phrases`` in first-seen order. Returns self."""
        phrases = [q for _, q in targets if isinstance(q, str)]
        if phrases:
            if not hasattr(self.detector, "set_phrases"):
                raise ValueError(f"{type(self.detector).__name__} takes class indices, not phrases")
            self.phrases = list(dict.fromkeys(phrases))
            self.detector.set_phrases(self.phrases)
        index = {p: i for i, p in enumerate(self.phrases)}
        self.boxes = torch.tensor([list(map(float, box)) for box, _ in targets], dtype=torch.float32,
                                  device=self.device).reshape(-1, 4)
        self.queries = torch.tensor([index[q] if isinstance(q, str) else int(q) for _, q in targets],
                                    dtype=torch.long, device=self.device)
        return self

    def detect(self, images: torch.Tensor) -> Detections:
        return self.detector(images)

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """B×num_classes detection scores (differentiable when the detector is)."""
        matched = match_scores(self.detector(images), self.boxes, self.queries).float()
        if matched.shape[1] < 2:
            matched = torch.cat([matched, matched.new_zeros(matched.shape[0], 2 - matched.shape[1])], dim=1)
        return matched

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        return ModelOutput(probs=self.scores(images))
