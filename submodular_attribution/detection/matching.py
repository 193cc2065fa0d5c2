"""The detection score of a target: the best IoU × score match among a model's detections.

For an image with detections k = 1..K (box b_k, a score s_k[q] for each query q: a class, or a
phrase of a grounding model) and a target (box g, query q_t):

    score(image, target) = max_k IoU(b_k, g) · s_k[q_t]

with no IoU threshold, and 0 when the image has no detection (K = 0, or every score 0). Boxes
are ``x1, y1, x2, y2`` in the pixels of the image the model saw, continuous coordinates (a box
covering pixel columns 3..7 is x1 = 3, x2 = 8); area = (x2 − x1)(y2 − y1). The value lies in
[0, 1] when scores do.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Detections:
    """A batch of detections, padded to K per image.

    boxes: B×K×4 float, x1 y1 x2 y2 in input pixels. scores: B×K×Q, each detection's score for
    each query (0 for padding, and for the classes a class-specific detector did not assign)."""

    boxes: torch.Tensor
    scores: torch.Tensor

    def __post_init__(self) -> None:
        if self.boxes.ndim != 3 or self.boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be B×K×4, got {tuple(self.boxes.shape)}")
        if self.scores.ndim != 3 or self.scores.shape[:2] != self.boxes.shape[:2]:
            raise ValueError(f"scores must be B×K×Q matching boxes {tuple(self.boxes.shape)}, "
                             f"got {tuple(self.scores.shape)}")

    @staticmethod
    def from_labels(boxes: list[torch.Tensor], labels: list[torch.Tensor], scores: list[torch.Tensor],
                    num_queries: int) -> "Detections":
        """Class-specific detections (torchvision's ``boxes``, ``labels``, ``scores`` per image,
        K_i each) → one padded batch: detection k scores ``scores[k]`` for ``labels[k]``, 0 for
        every other class."""
        b = len(boxes)
        k = max([len(x) for x in boxes] + [0])
        device = boxes[0].device if b else torch.device("cpu")
        out_boxes = torch.zeros(b, k, 4, device=device)
        out_scores = torch.zeros(b, k, num_queries, device=device)
        for i, (box, label, score) in enumerate(zip(boxes, labels, scores)):
            n = len(box)
            if n:
                out_boxes[i, :n] = box.float()
                valid = (label >= 0) & (label < num_queries)
                rows = torch.arange(n, device=device)[valid]
                out_scores[i, rows, label[valid].long()] = score[valid].float()
        return Detections(out_boxes, out_scores)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` (…×K×4) with every box of ``b`` (T×4) → …×K×T; 0 where the
    union is empty (degenerate boxes)."""
    a = a.unsqueeze(-2)  # …×K×1×4
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def match_scores(detections: Detections, target_boxes: torch.Tensor, target_queries: torch.Tensor) -> torch.Tensor:
    """B×T: for each image and target t, max_k IoU(box_k, target_boxes[t]) · score_k[target_queries[t]];
    0 for an image without detections. Differentiable where the detector's outputs are."""
    boxes, scores = detections.boxes, detections.scores
    b, k = boxes.shape[:2]
    t = target_boxes.shape[0]
    if k == 0 or t == 0:
        return boxes.new_zeros(b, t)
    iou = box_iou(boxes, target_boxes.to(boxes))  # B×K×T
    per_target = scores[..., target_queries.to(scores.device).long()]  # B×K×T
    return (iou * per_target).amax(dim=1)
