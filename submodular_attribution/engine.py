"""Scoring sets of regions: composition on the device, batched forwards, counting.

A set of regions is a row of a B×N bool matrix. ``insert(S)`` keeps the pixels of
S and sets the rest to the baseline; ``delete(S)`` does the opposite (spec §2).
Both are built from the label map by indexing, on the scorer's device, one
forward batch at a time, so no per-region image copies ever exist.

:func:`score_requests` scores the sets of *several* images together (:func:`forward_rows`, which
also takes other rows an image needs, such as its reference images): their rows are packed
into full batches of one shared scorer, so late search steps with few candidates and small
models still fill the device. Scores stay in float64 whatever the model's precision.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import Callable

import torch

from .common.checks import check_int
from .models import ModelOutput, Scorer, model_input_space
from .objective import Terms, edl_confidence, entropy_confidence


@dataclass
class SetScores:
    """Model numbers for B sets, each (B,) float64: target probability and confidence
    of the insertion image and of the deletion image."""

    insert_target: torch.Tensor
    delete_target: torch.Tensor
    insert_confidence: torch.Tensor
    delete_confidence: torch.Tensor

    def terms(self, effectiveness: torch.Tensor | None = None) -> Terms:
        return Terms(self.insert_target, 1.0 - self.delete_target, self.insert_confidence, effectiveness)

    def complement(self) -> "SetScores":
        """Scores of V∖S: its insertion image is the deletion image of S and vice versa."""
        return SetScores(self.delete_target, self.insert_target, self.delete_confidence, self.insert_confidence)

    def select(self, index: torch.Tensor | int) -> "SetScores":
        return SetScores(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def cat(parts: list["SetScores"]) -> "SetScores":
        return SetScores(*(torch.cat([getattr(p, f.name).reshape(-1) for p in parts]) for f in fields(SetScores)))


class SetEvaluator:
    """Evaluates sets of regions of one image for one target class.

    image: 3×H×W float tensor, RGB in [0, 1]. labels: H×W integer label map 0..N−1.
    target: class index, or None to use the model's prediction on the full image.
    batch_size: images per forward call. ``forward_passes`` counts every image sent.
    Composed images go through ``model``: the scorer, or its ``score_input`` when they are
    composed in its input space (:func:`~submodular_attribution.models.model_input_space`).
    """

    def __init__(
        self,
        scorer: Scorer,
        image: torch.Tensor,
        labels: torch.Tensor,
        target: int | None = None,
        batch_size: int = 64,
        baseline: float = 0.0,
        edl_scale: float = 1.0,
        precision: str = "fp32",
    ) -> None:
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be 3×H×W, got shape {tuple(image.shape)}")
        if tuple(labels.shape) != tuple(image.shape[1:]):
            raise ValueError(f"label map {tuple(labels.shape)} does not match image {tuple(image.shape[1:])}")
        check_int("batch_size", batch_size, 1)
        self.scorer = scorer
        self.device = scorer.device
        if not image.is_floating_point():
            raise ValueError(f"image must be a float tensor in [0, 1], got {image.dtype}")
        image = image.to(self.device)  # keeps its float dtype (float64 in exact tests)
        self.labels = labels.to(self.device, torch.long)
        self.num_regions = int(self.labels.max().item()) + 1
        self.batch_size = batch_size
        # Compositions are built where the model reads them: in its input space when its
        # transform is pixelwise (the same numbers, without normalising every batch).
        input_space = model_input_space(scorer)
        self.model: Callable[[torch.Tensor], ModelOutput] = scorer.score_input if input_space else scorer
        to_input = scorer.model_input if input_space else (lambda x: x)
        self._image_input = to_input(image[None])
        self._baseline_input = to_input(torch.full((1, 3, 1, 1), baseline, dtype=image.dtype, device=self.device))
        self._pixels = self.labels.flatten()
        self.edl_scale = edl_scale
        self.forward_passes = 0
        self.precision = check_precision(precision)
        self._reference: ModelOutput | None = None
        self._target = None if target is None else self._checked_target(int(target))

    def _checked_target(self, target: int) -> int:
        if not 0 <= target < self.scorer.num_classes:
            raise ValueError(f"target class {target} is outside 0..{self.scorer.num_classes - 1}")
        return target

    @property
    def target(self) -> int:
        """The class explained: the one given, else the model's prediction on the full image."""
        if self._target is None:
            self._target = self._checked_target(self.prediction)
        return self._target

    # -- model access -------------------------------------------------------
    def _forward(self, images: torch.Tensor) -> ModelOutput:
        self.forward_passes += images.shape[0]
        return forward(self.model, images, self.precision)

    def _confidence(self, out: ModelOutput) -> torch.Tensor:
        if out.evidence_logits is not None:
            return edl_confidence(out.evidence_logits.double(), self.edl_scale)
        return entropy_confidence(out.probs.double())

    def compose_rows(self, sets: torch.Tensor, rows: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Model inputs for ``rows`` of the 2B rows of a request of B sets (row r < B is
        insert(S_r), row B + r is delete(S_r)), written into ``out`` when given."""
        b = sets.shape[0]
        return self._compose(sets[rows % b], rows >= b, out)

    def read(self, out: ModelOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """(target probability, confidence) of each image of ``out``, float64."""
        return out.probs[:, self.target].double(), self._confidence(out)

    @property
    def input_layout(self) -> tuple[tuple[int, ...], torch.dtype]:
        """The shape (C×H×W) and dtype of one model input: evaluators that agree share batches."""
        return tuple(self._image_input.shape[1:]), self._image_input.dtype

    def empty_inputs(self, count: int) -> torch.Tensor:
        """Room for ``count`` model inputs (contiguous)."""
        return self._image_input.new_empty((count, *self._image_input.shape[1:]))

    def _compose(self, sets: torch.Tensor, delete: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of ``sets`` (b×N bool) → b model inputs, into ``out`` if given; row i is
        delete(S_i) where delete[i] else insert(S_i)."""
        kept = (sets ^ delete[:, None]).T.contiguous()  # N×b: the regions each image keeps
        # Whole rows of b flags per pixel, then a transposed view: ~50× cheaper than gathering
        # sets[:, labels] pixel by pixel. The output must be given: torch.where would lay out
        # its own after this view's strides (batch innermost), which the model then pays to undo.
        keep = kept.index_select(0, self._pixels).T.view(len(sets), 1, *self.labels.shape)
        out = self.empty_inputs(len(sets)) if out is None else out
        return torch.where(keep, self._image_input, self._baseline_input, out=out)

    # -- references ---------------------------------------------------------
    def reference_images(self, rows: torch.Tensor | slice = slice(None), out: torch.Tensor | None = None) -> torch.Tensor:
        """``rows`` of [full image, baseline image] (insert(V) and delete(V)), as model inputs,
        written into ``out`` when given."""
        images = torch.cat([self._image_input, self._baseline_input.expand_as(self._image_input)])[rows]
        return images if out is None else out.copy_(images)

    def reference_output(self) -> ModelOutput:
        """Model output on :meth:`reference_images` (2 forwards, computed once, unless given to
        :meth:`set_reference` by a caller that batched them with other images' rows)."""
        if self._reference is None:
            self._reference = self._forward(self.reference_images())
        return self._reference

    def set_reference(self, output: ModelOutput) -> None:
        self._reference = output

    @property
    def prediction(self) -> int:
        return int(self.reference_output().probs[0].argmax().item())

    @property
    def org_score(self) -> float:
        return float(self.reference_output().probs[0, self.target])

    @property
    def baseline_score(self) -> float:
        return float(self.reference_output().probs[1, self.target])

    def full_set_scores(self) -> SetScores:
        """Scores of S = V (insert = image, delete = baseline) from the reference forwards."""
        out = self.reference_output()
        target = out.probs[:, self.target].double()
        confidence = self._confidence(out)
        return SetScores(target[:1], target[1:], confidence[:1], confidence[1:])

    # -- sets ---------------------------------------------------------------
    def score_sets(self, sets: torch.Tensor) -> SetScores:
        """Insertion and deletion numbers for each row of ``sets`` (B×N bool): 2B forwards."""
        return score_requests([(self, sets)], self.batch_size)[0]

    def singleton_images(self, rows: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """insert({v_i}) for each region index i in ``rows``, as model inputs, into ``out`` if given."""
        singletons = torch.eye(self.num_regions, dtype=torch.bool, device=self.device)[rows]
        return self._compose(singletons, torch.zeros(len(singletons), dtype=torch.bool, device=self.device), out)


def embeddings_of(output: ModelOutput) -> torch.Tensor:
    """The embeddings of a model output, float64 (the effectiveness term needs them)."""
    if output.embeddings is None:
        raise ValueError("the effectiveness term needs a model that returns embeddings; set its weight to 0")
    return output.embeddings.double()


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def forward(scorer: Scorer, images: torch.Tensor, precision: str = "fp32") -> ModelOutput:
    """The scorer on a batch under ``inference_mode``, with autocast around the model alone when
    ``precision`` is bf16 or fp16 (the caller reads probabilities in float64)."""
    dtype = PRECISIONS[precision]
    autocast = contextlib.nullcontext() if dtype is None else torch.autocast(images.device.type, dtype=dtype)
    with torch.inference_mode(), autocast:
        return scorer(images)


def join_outputs(outs: list[ModelOutput]) -> ModelOutput:
    """The rows of several model outputs, in order."""
    if len(outs) == 1:
        return outs[0]
    join = lambda ts: None if ts[0] is None else torch.cat(ts)  # noqa: E731
    return ModelOutput(join([o.probs for o in outs]), join([o.embeddings for o in outs]),
                       join([o.evidence_logits for o in outs]))


RowSource = tuple[SetEvaluator, int, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
"""``(evaluator, number of rows, (rows, out) → those rows' model inputs written into out)``: the
inputs one evaluator needs."""


def _forward_pieces(sources: list[RowSource], pieces: list[tuple[int, int, int]], precision: str) -> ModelOutput:
    """One forward of the pieces ``(source, first row, end row)`` laid end to end, composed
    straight into one input batch; pieces of different input shapes (several images explained
    at their own sizes) or dtypes go through the model one run at a time, in order."""
    runs: list[list[tuple[int, int, int]]] = []
    for piece in pieces:
        if runs and sources[runs[-1][0][0]][0].input_layout == sources[piece[0]][0].input_layout:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    outs = []
    for run in runs:
        first = sources[run[0][0]][0]
        batch = first.empty_inputs(sum(b - a for _, a, b in run))
        offset = 0
        for j, a, b in run:
            ev, _, inputs = sources[j]
            inputs(torch.arange(a, b, device=ev.device), batch[offset:offset + b - a])
            offset += b - a
        outs.append(forward(first.model, batch, precision))
    return join_outputs(outs)


def forward_rows(sources: list[RowSource], batch_size: int) -> list[ModelOutput | None]:
    """The rows of several sources (all on one scorer) laid end to end and cut into batches of
    ``batch_size`` images, so one forward may hold rows of several images; each evaluator counts
    its own rows. Returns each source's output, its rows in order (None for a source of none)."""
    if not sources:
        return []
    precision = sources[0][0].precision
    starts = torch.tensor([0, *(count for _, count, _ in sources)]).cumsum(0).tolist()
    outputs: list[list[ModelOutput]] = [[] for _ in sources]
    counts = [0] * len(sources)  # counted once every batch went through, so a failed call counts nothing
    for lo in range(0, starts[-1], batch_size):
        hi = min(lo + batch_size, starts[-1])
        pieces = [(j, max(lo, starts[j]) - starts[j], min(hi, starts[j + 1]) - starts[j])
                  for j in range(len(sources)) if max(lo, starts[j]) < min(hi, starts[j + 1])]
        out = _forward_pieces(sources, pieces, precision)
        offset = 0
        for j, a, b in pieces:
            counts[j] += b - a
            # copies, not views: a view would keep the whole batch's output alive, and holding those
            # until the round ends slowed the next forwards by a third (CPU allocator reuse)
            outputs[j].append(ModelOutput(*(None if t is None else t[offset:offset + b - a].clone() for t in
                                            (out.probs, out.embeddings, out.evidence_logits))))
            offset += b - a
    for (ev, _, _), count in zip(sources, counts):
        ev.forward_passes += count
    return [join_outputs(parts) if parts else None for parts in outputs]


@dataclass
class Singles:
    """What the model said of insert({i}) for every region i (target probability and confidence,
    (N,) float64), from the forwards of the region embeddings: a set of one region need not be
    inserted again."""

    target: torch.Tensor
    confidence: torch.Tensor


class SetRequest:
    """B sets of one image as model rows, insertions then deletions (:attr:`source`), less the
    insertions of one-region sets that ``singles`` already knows; :meth:`scores` reads the
    output back, those rows put back in their places."""

    def __init__(self, ev: SetEvaluator, sets: torch.Tensor, singles: Singles | None = None) -> None:
        self.ev, self.sets = ev, sets.to(ev.device, torch.bool)
        self.singles, self.known, self.needed = singles, None, None
        b = len(self.sets)
        if singles is not None and b:
            one_region = self.sets.sum(dim=1) == 1
            known = one_region.nonzero().flatten()
            if len(known):
                self.known = known
                self.needed = torch.cat([(~one_region).nonzero().flatten(),
                                         torch.arange(b, 2 * b, device=self.sets.device)])

    @property
    def source(self) -> RowSource:
        ev, sets, needed = self.ev, self.sets, self.needed
        if needed is None:
            return ev, 2 * len(sets), lambda rows, out: ev.compose_rows(sets, rows, out)
        return ev, len(needed), lambda rows, out: ev.compose_rows(sets, needed[rows], out)

    def scores(self, output: ModelOutput | None) -> SetScores:
        b = len(self.sets)
        if output is None:
            empty = torch.zeros(0, dtype=torch.float64, device=self.ev.device)
            return SetScores(empty, empty, empty, empty)
        target, confidence = self.ev.read(output)
        if self.known is not None:
            region = self.sets[self.known].int().argmax(dim=1)
            full_target, full_confidence = target.new_empty(2 * b), confidence.new_empty(2 * b)
            full_target[self.needed], full_confidence[self.needed] = target, confidence
            full_target[self.known] = self.singles.target[region]
            full_confidence[self.known] = self.singles.confidence[region]
            target, confidence = full_target, full_confidence
        return SetScores(target[:b], target[b:], confidence[:b], confidence[b:])


def score_requests(requests: list[tuple[SetEvaluator, torch.Tensor]], batch_size: int) -> list[SetScores]:
    """Score the sets of several images (all on one scorer) in shared batches.

    requests: ``(evaluator, B_j×N_j bool sets)`` per image. Each request's 2·B_j images
    (insertions, then deletions) are laid end to end with the others' (:func:`forward_rows`).
    Returns one :class:`SetScores` per request, in order. With one request this is exactly
    :meth:`SetEvaluator.score_sets`.
    """
    asked = [SetRequest(ev, sets) for ev, sets in requests]
    return [request.scores(out) for request, out in zip(asked, forward_rows([r.source for r in asked], batch_size))]
