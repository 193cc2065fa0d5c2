"""Grounding DINO (``transformers``) as a phrase :class:`~submodular_attribution.detection.scorer.Detector`.

The model and its processor are read from a local folder written by ``save_pretrained``
(e.g. ``ckpt/grounding-dino-tiny/``, a copy of ``IDEA-Research/grounding-dino-tiny``); nothing
is downloaded. :meth:`GroundingDinoDetector.set_phrases` builds one caption from the bound
phrases (``"a cat. a remote control."``: lower-cased, joined by ``". "``); a detection's score
for a phrase is the maximum over the phrase's tokens of the sigmoid of the model's token logit
(what ``post_process_grounded_object_detection`` thresholds), so every one of the model's
queries is a detection with a score for every phrase. Boxes are the model's normalised
(cx, cy, w, h) scaled to the pixels of the images it was given.

Images arrive as RGB [0, 1] tensors at the front end's input resolution and are normalised
with the processor's image mean and standard deviation (no further resizing; a pixel mask of
ones).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..common.errors import InputError
from .matching import Detections


def caption_of(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The caption and the (start, end) character span of each phrase in it."""
    parts, spans, at = [], [], 0
    for phrase in phrases:
        text = phrase.strip().lower().rstrip(".").strip()
        spans.append((at, at + len(text)))
        parts.append(text)
        at += len(text) + 2  # ". "
    return ". ".join(parts) + ".", spans


class GroundingDinoDetector:
    """A zero-shot detection model from ``transformers`` (``AutoModelForZeroShotObjectDetection``)
    and its processor, read from ``folder``."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise InputError(f"--checkpoint {folder}: not a model folder (no config.json); save the model and "
                             "its processor there with save_pretrained")
        try:
            from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor
        except ImportError:
            raise InputError("grounding models need the 'transformers' package (pip install transformers)") from None
        try:
            self.model = AutoModelForZeroShotObjectDetection.from_pretrained(folder, local_files_only=True)
            processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(f"--checkpoint {folder}: cannot load the model or its processor "
                             f"({type(err).__name__}: {str(err).splitlines()[0]})") from None
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.tokenizer = getattr(processor, "tokenizer", processor)
        image_processor = getattr(processor, "image_processor", None)
        mean = getattr(image_processor, "image_mean", None) or (0.485, 0.456, 0.406)
        std = getattr(image_processor, "image_std", None) or (0.229, 0.224, 0.225)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.max_text_len = int(getattr(self.model.config, "max_text_len", 256))
        self.phrases: list[str] = []
        self.text: dict[str, torch.Tensor] = {}
        self.token_phrase = torch.zeros(0, 0, device=self.device)

    def set_phrases(self, phrases: Sequence[str]) -> None:
        """Tokenise the caption of ``phrases``; query q of the detections is ``phrases[q]``."""
        caption, spans = caption_of(phrases)
        encoded = self.tokenizer(caption, return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded.pop("offset_mapping")[0]
        length = int(encoded["input_ids"].shape[1])
        if length > self.max_text_len:
            raise InputError(f"{len(phrases)} phrases make a caption of {length} tokens, more than the model's "
                             f"{self.max_text_len}; use fewer --images-at-once")
        token_phrase = torch.zeros(length, len(phrases))
        for q, (start, end) in enumerate(spans):
            inside = (offsets[:, 0] >= start) & (offsets[:, 1] <= end) & (offsets[:, 1] > offsets[:, 0])
            if not inside.any():
                raise InputError(f"phrase {phrases[q]!r} gives no text tokens (empty once trailing dots are removed)")
            token_phrase[inside, q] = 1.0
        self.phrases = list(phrases)
        self.text = {k: v.to(self.device) for k, v in encoded.items()}
        self.token_phrase = token_phrase.to(self.device)

    def __call__(self, images: torch.Tensor) -> Detections:
        if not self.phrases:
            raise ValueError("set_phrases() first: a grounding model needs the phrases it looks for")
        b, _, h, w = images.shape
        text = {k: v.expand(b, -1) for k, v in self.text.items()}
        pixel_mask = torch.ones(b, h, w, dtype=torch.long, device=images.device)
        out = self.model(pixel_values=(images - self.mean) / self.std, pixel_mask=pixel_mask, **text)
        length = self.token_phrase.shape[0]
        probs = out.logits[..., :length].float().sigmoid()  # B×N×L
        scores = (probs[..., :, None] * self.token_phrase).amax(dim=2)  # B×N×Q
        cx, cy, bw, bh = out.pred_boxes.float().unbind(-1)
        boxes = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], dim=-1)
        return Detections(boxes, scores)
