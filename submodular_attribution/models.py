"""The one interface through which the search reaches a model.

A *scorer* takes a batch of images and returns class probabilities (and, when it
can, embeddings and evidential logits). Images always arrive as float tensors
``B×3×H×W`` in RGB, values in [0, 1], on ``scorer.device``; the scorer applies
its own normalisation. Compositions therefore happen in pixel space, where the
baseline (black) is exactly 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import nn

from .common.errors import InputError
from .common.hooks import capture


@dataclass(frozen=True)
class ModelOutput:
    """What a scorer returns for a batch of B images.

    probs: B×C class probabilities (rows sum to 1).
    embeddings: B×D image embeddings (any scale) or None; used by the effectiveness term.
    evidence_logits: B×C logits of an evidential (EDL) uncertainty head, or None.
    """

    probs: torch.Tensor
    embeddings: torch.Tensor | None = None
    evidence_logits: torch.Tensor | None = None


@runtime_checkable
class Scorer(Protocol):
    """The black-box contract (SMDL's search): images ``B×3×H×W`` (RGB, [0, 1], on ``device``)
    in, :class:`ModelOutput` out."""

    device: torch.device
    num_classes: int

    def __call__(self, images: torch.Tensor) -> ModelOutput: ...


@runtime_checkable
class DifferentiableScorer(Scorer, Protocol):
    """The white-box contract (gradient, CAM and path baselines): a :class:`Scorer` that also
    exposes its differentiable parts. Images as for :class:`Scorer`.

    attribution_module: the image network that CAM and attention methods hook into, or None.
    pixel_mean: the RGB [0, 1] colour that the model's normalisation maps to zero (a "neutral"
        fill), or None when there is none.
    logits(images) -> B×C, differentiable.
    representation(images) -> B×D hidden representation (pooled penultimate features or the
        image embedding), differentiable; IG²'s path follows it.
    """

    attribution_module: nn.Module | None
    pixel_mean: tuple[float, float, float] | None

    def logits(self, images: torch.Tensor) -> torch.Tensor: ...

    def representation(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TunableScorer(Protocol):
    """A scorer whose network can be switched to channels-last memory and/or compiled."""

    def tune(self, channels_last: bool = False, compile: bool = False) -> None: ...


def model_input_space(scorer) -> bool:
    """Whether ``scorer`` maps each pixel to the model's input on its own (a per-channel affine
    normalisation), through ``model_input(images)`` and ``score_input(x)``, with
    ``scorer(images) == scorer.score_input(scorer.model_input(images))``. Composition then
    commutes with the transform, so the engine composes in the model's input space and skips it
    per batch. Looked up on the class, not the instance: a wrapper that forwards attributes (an
    evidential head) must not be bypassed."""
    kind = type(scorer)
    return callable(getattr(kind, "model_input", None)) and callable(getattr(kind, "score_input", None))


def tune_module(module: nn.Module, channels_last: bool = False, compile: bool = False):
    """``module`` in channels-last memory format and/or wrapped by ``torch.compile`` (same weights)."""
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return torch.compile(module) if compile else module


class ClassifierScorer:
    """Wraps an ``nn.Module`` classifier: probabilities = softmax(logits).

    Embeddings (for the effectiveness term) are the input of ``embedding_layer`` — typically
    the final linear classifier, so they are the pooled penultimate features — captured by a
    hook at no extra cost. With ``embedding_layer=None``, a network exposing
    ``forward_features(x) -> B×D`` and ``forward_head(f) -> B×C`` has its features used;
    otherwise no embeddings are returned.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        device: str | torch.device = "cpu",
        num_classes: int | None = None,
        embedding_layer: nn.Module | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._captured: torch.Tensor | None = None  # input of embedding_layer in the last forward
        self.embedding_layer = embedding_layer
        if embedding_layer is not None:
            embedding_layer.register_forward_pre_hook(self._capture)
        self._split = embedding_layer is None and hasattr(net, "forward_features") and hasattr(net, "forward_head")
        self.channels_last = False
        self._run, self._split_run = self.net, self._split_forward  # as called by __call__ (see tune)
        if num_classes is None:
            num_classes = int(getattr(net, "num_classes"))
        self.num_classes = num_classes

    @property
    def attribution_module(self) -> nn.Module:
        """The network that baseline methods hook into (CAM layers)."""
        return self.net

    @property
    def pixel_mean(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.mean.reshape(-1))

    def tune(self, channels_last: bool = False, compile: bool = False) -> None:
        """Channels-last memory for the network and its inputs; ``torch.compile`` of the forward."""
        self.channels_last = channels_last
        self._run = tune_module(self.net, channels_last, compile)
        self._split_run = torch.compile(self._split_forward) if compile else self._split_forward

    def _split_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.forward_features(x)
        return features, self.net.forward_head(features)

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """The network's input for RGB [0, 1] images: (images − mean) / std, pixel by pixel."""
        return (images - self.mean) / self.std

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable B×C logits (for gradient baselines); no embeddings captured."""
        return self.net(self.model_input(images))

    def representation(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable B×D features: the input of ``embedding_layer`` (averaged over space when
        it is a map), or ``forward_features``; taken by a hook that lives only during the call."""
        if self.embedding_layer is None:
            if not self._split:
                raise TypeError(f"{type(self.net).__name__}: no embedding layer to take a representation from")
            features = self.net.forward_features(self.model_input(images))
        else:
            with capture(self.embedding_layer, "embedding layer", of="input") as seen:
                self.logits(images)
            features = seen.one()
        return features.mean(dim=(2, 3)) if features.ndim == 4 else features.flatten(1)

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        return self.score_input(self.model_input(images))

    def score_input(self, x: torch.Tensor) -> ModelOutput:
        """The output for images already in the network's input space (:meth:`model_input`)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self._split:
            features, logits = self._split_run(x)
            return ModelOutput(probs=logits.softmax(dim=-1), embeddings=features)
        self._captured = None
        logits = self._run(x)
        embeddings = self._captured.flatten(1) if self._captured is not None else None
        self._captured = None
        return ModelOutput(probs=logits.softmax(dim=-1), embeddings=embeddings)

    def _capture(self, module: nn.Module, inputs: tuple) -> None:
        self._captured = inputs[0]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise InputError(f"--device {name}: {str(err).splitlines()[0]}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return device
