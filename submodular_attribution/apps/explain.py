"""Explain images from Python: ``explain(model, image)`` → :class:`Explanation`.

The same pipeline as the command line (``smdl_explanation_<task>``): the image is divided into
regions, a search orders them (:func:`submodular_attribution.search.explain_many`), and the
result is the record and rank map that the command line saves, plus the curves, AUCs and a
figure. ::

    import submodular_attribution as smdl
    exp = smdl.explain(model, "cat.jpg", target=281, mean=smdl.IMAGENET_MEAN, std=smdl.IMAGENET_STD)
    exp.plot("cat_smdl.png"); print(exp.insertion_auc, exp.deletion_auc)

``model`` is any ``torch.nn.Module`` mapping a normalised batch to logits, or one of the
toolkit's scorers (:class:`~submodular_attribution.models.Scorer`, e.g. a CLIP zero-shot
scorer). Bad arguments raise ``TypeError``/``ValueError`` naming the argument.
"""
from __future__ import annotations

import itertools
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..common.checks import check_int
from ..common.curves import deletion_curve, image_aucs, insertion_curve
from ..common.results import LoadedResult, rank_map_saliency
from ..engine import PRECISIONS
from ..models import Scorer
from ..objective import Weights
from ..records import build_record
from ..regions import DivisionConfig
from ..search import SearchTrace
from ..search import explain_many as _search_many

from .arguments import (DEFAULT_MEAN, DEFAULT_NUM_REGIONS, DEFAULT_STD, DEFAULT_WEIGHTS, ApiInput, ApiRegions,
                        check_input_size, check_search_options, check_target, check_weights, prepare_image,
                        region_divider, scorer_for)
from .explanation import Explanation, ExplanationFigure

__all__ = ["DEFAULT_NUM_REGIONS", "DEFAULT_WEIGHTS", "Explanation", "ExplanationFigure", "explain", "explain_many"]

# --------------------------------------------------------------------------- explaining


def explain(
    model: nn.Module | Scorer,
    image: Any,
    target: int | None = None,
    *,
    mean: Sequence[float] = DEFAULT_MEAN,
    std: Sequence[float] = DEFAULT_STD,
    input_size: int | tuple[int, int] | None = None,
    num_regions: int | None = None,
    region_size: int | None = None,
    division: str | DivisionConfig | np.ndarray = "slico",
    search: str = "fast",
    weights: Weights | Mapping[str, float] | None = None,
    options: Mapping[str, int] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    **search_options: int,
) -> Explanation:
    """Order the regions of one image by their contribution to the model's score of ``target``.

    Arguments:
        model: a ``torch.nn.Module`` taking a normalised float batch N×3×H×W (RGB) to N×C logits
            (probabilities are their softmax); it is wrapped in a
            :class:`~submodular_attribution.models.ClassifierScorer` with ``mean``/``std``, moved
            to ``device`` and put in eval mode for the call (its mode and device are restored
            afterwards). Or any :class:`~submodular_attribution.models.Scorer` (e.g. a CLIP
            zero-shot scorer from ``submodular_attribution.adapters.clip``), used as is.
        image: a file path (read as RGB), a PIL image, an H×W×3 uint8 RGB numpy array, or a
            3×H×W float tensor, RGB in [0, 1] (searched as given; divided and drawn at 8 bits).
        target: the class index to explain, 0..C−1; None explains the model's prediction on the
            full image.
        mean, std: the model's input normalisation, 3 numbers each on the [0, 1] pixel scale
            (e.g. ``IMAGENET_MEAN``, ``IMAGENET_STD``); default none. Only for an ``nn.Module``.
        input_size: ``H`` or ``(H, W)``: resize the image (bilinear) to the size the model
            expects; default: the image's own size.
        num_regions: about this many regions (default 49); or ``region_size``: the superpixel /
            grid cell side in pixels at the input size. Not both.
        division: ``slico`` (default), ``seeds`` or ``grid``; or a
            :class:`~submodular_attribution.regions.DivisionConfig`; or an H×W integer label map
            with values 0..N−1 (e.g. SAM masks) at the input size.
        search: a name in :data:`~submodular_attribution.search_methods.SEARCHES` (each
            described there once); default ``fast``, the quick option, which trades faithfulness
            for speed: its orders are not exact greedy's, and its measured loss of Insertion and
            Deletion AUC against exact greedy is on the benchmark page (docs/benchmarks.md). For
            numbers compared with published ones use ``greedy`` (exact) or ``bidirectional``
            (LIMA's search).
        weights: the objective's λ, a :class:`~submodular_attribution.objective.Weights` or a
            dict of ``confidence``, ``effectiveness``, ``consistency``, ``collaboration``
            (names not given keep the default); default the published single-modal values
            0.01, 0, 20, 5 (CLIP's are 0, 0.05, 1, 1). A non-zero effectiveness needs embeddings:
            the input of the module's final ``nn.Linear`` with C outputs, or its
            ``forward_features``.
        options, **search_options: the search's options, e.g. ``pending_samples=8`` for
            ``bidirectional``, ``refresh_every``/``lazy_top``/``exact_steps`` for ``lazy``,
            ``saturation``/``lazy_top``/``refresh_every`` for ``staged``
            (:data:`~submodular_attribution.search_methods.OPTIONS`); other searches' options
            are errors.
        batch_size: images per forward pass (default 64).
        device: ``auto`` (default: the module's accelerator if it is on one, else CUDA when
            available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, or a ``torch.device``. A
            scorer keeps its own device (a different one here is an error).
        precision: ``fp32`` (default), ``bf16`` or ``fp16``: autocast around the model only
            (scores stay float64).
        seed: the random searches' seed (``stochastic``, ``random``); default 0.
        class_names: C names, to fill :attr:`Explanation.target_name`.

    Returns:
        an :class:`Explanation`: the order, label map, image, saliency, curves, AUCs, forward
        passes, target, the search trace and the record; ``.plot()`` and ``.save()``.

    Raises:
        TypeError / ValueError naming the argument for a bad input.
    """
    settings = _settings(mean=mean, std=std, input_size=input_size, num_regions=num_regions,
                         region_size=region_size, division=division, search=search, weights=weights,
                         options=options, batch_size=batch_size, device=device, precision=precision, seed=seed,
                         class_names=class_names, search_options=search_options)
    with _Session(model, settings) as session:
        return session.run([image], [target], ["image"])[0]


def explain_many(
    model: nn.Module | Scorer,
    images: Iterable[Any],
    targets: Iterable[int | None] | None = None,
    *,
    mean: Sequence[float] = DEFAULT_MEAN,
    std: Sequence[float] = DEFAULT_STD,
    input_size: int | tuple[int, int] | None = None,
    num_regions: int | None = None,
    region_size: int | None = None,
    division: str | DivisionConfig | np.ndarray = "slico",
    search: str = "fast",
    weights: Weights | Mapping[str, float] | None = None,
    options: Mapping[str, int] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    images_at_once: int = 8,
    **search_options: int,
) -> list[Explanation]:
    """:func:`explain` for several images, the same results as one at a time, faster.

    ``images``: any iterable of what :func:`explain` takes as ``image`` (sizes may differ unless
    ``input_size`` is given); ``targets``: one class index or None per image (default: None for
    all, the predictions). The searches of ``images_at_once`` images (default 8) advance together,
    each forward batch of ``batch_size`` filled across them
    (:func:`submodular_attribution.search.explain_many`); the iterable is read that many images
    at a time. Every image uses the same ``seed``. Other arguments as for :func:`explain`.
    Returns one :class:`Explanation` per image, in order (names ``image_<i>`` unless a path gave one).
    """
    images_at_once = check_int("images_at_once", images_at_once, 1)
    settings = _settings(mean=mean, std=std, input_size=input_size, num_regions=num_regions,
                         region_size=region_size, division=division, search=search, weights=weights,
                         options=options, batch_size=batch_size, device=device, precision=precision, seed=seed,
                         class_names=class_names, search_options=search_options)
    if isinstance(images, (str, os.PathLike, np.ndarray, torch.Tensor)) or not isinstance(images, Iterable):
        raise TypeError(f"images must be an iterable of images (a list of paths, arrays, ...), "
                        f"got {type(images).__name__}")
    if targets is not None and (isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable)):
        raise TypeError(f"targets must be an iterable of class indices or None, got {type(targets).__name__}")
    if targets is not None and hasattr(images, "__len__") and hasattr(targets, "__len__") \
            and len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    missing = object()
    if targets is None:
        pairs = ((image, None) for image in images)
    else:
        pairs = itertools.zip_longest(images, targets, fillvalue=missing)
    results: list[Explanation] = []
    with _Session(model, settings) as session:
        while True:
            group = list(itertools.islice(pairs, images_at_once))
            if any(image is missing for image, _ in group):
                raise ValueError("targets has more entries than images")
            if any(target is missing for _, target in group):
                raise ValueError("images has more entries than targets")
            if not group:
                return results
            start = len(results)
            results += session.run([image for image, _ in group], [target for _, target in group],
                                   [f"image_{start + i}" for i in range(len(group))], first=start)


@dataclass
class _Settings:
    mean: Any
    std: Any
    input_size: tuple[int, int] | None
    regions: ApiRegions
    search: str
    options: dict
    weights: Weights
    batch_size: int
    device: Any
    precision: str
    seed: int
    class_names: list[str] | None


def _settings(*, mean, std, input_size, num_regions, region_size, division, search, weights, options, batch_size,
              device, precision, seed, class_names, search_options) -> _Settings:
    """Every argument checked once, before any image is read or the model runs."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if class_names is not None:
        if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
            raise TypeError(f"class_names must be a list of C names, got {type(class_names).__name__}")
        class_names = [str(name) for name in class_names]
    return _Settings(
        mean=mean, std=std, input_size=check_input_size(input_size),
        regions=region_divider(division, num_regions, region_size),
        search=search, options=check_search_options(search, options, search_options), weights=check_weights(weights),
        batch_size=check_int("batch_size", batch_size, 1), device=device, precision=precision,
        seed=check_int("seed", seed, 0), class_names=class_names)


class _Session:
    """The scorer (built on the first image, which it needs for a probe) and the runs through it."""

    def __init__(self, model: Any, settings: _Settings) -> None:
        self.model, self.settings = model, settings
        self.scorer: Scorer | None = None
        self._stack = ExitStack()

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc) -> bool | None:
        return self._stack.__exit__(*exc)

    def _start(self, probe: torch.Tensor) -> None:
        s = self.settings
        self.scorer = self._stack.enter_context(
            scorer_for(self.model, s.mean, s.std, s.device, s.weights.effectiveness != 0, probe))
        if s.class_names is not None and len(s.class_names) != self.scorer.num_classes:
            raise ValueError(f"class_names has {len(s.class_names)} names for a model with "
                             f"{self.scorer.num_classes} classes")
        s.regions.device = self.scorer.device

    def run(self, images: list, targets: list, names: list[str], first: int | None = None) -> list[Explanation]:
        """Explain ``images`` (their searches advance together, whatever their sizes);
        ``first``: their index in ``explain_many``'s input, for error messages (None: ``explain``)."""
        s = self.settings
        where = ["image"] if first is None else [f"images[{first + i}]" for i in range(len(images))]
        inputs = [prepare_image(image, s.input_size, name, argument)
                  for image, name, argument in zip(images, names, where)]
        if self.scorer is None:
            self._start(inputs[0].tensor)
        checked = [check_target(t, self.scorer.num_classes, "target" if first is None else f"targets[{first + i}]")
                   for i, t in enumerate(targets)]
        divided = [s.regions(inp) for inp in inputs]
        traces = _search_many(
            self.scorer, [(inp.tensor, torch.from_numpy(labels), target, s.seed)
                          for inp, (labels, _), target in zip(inputs, divided, checked)],
            s.weights, search=s.search, options=s.options, batch_size=s.batch_size, precision=s.precision)
        return [self._explanation(inp, labels, describe, trace)
                for inp, (labels, describe), trace in zip(inputs, divided, traces)]

    def _explanation(self, inp: ApiInput, labels: np.ndarray, division: dict, trace: SearchTrace) -> Explanation:
        s = self.settings
        record, ranks = build_record(trace, labels, s.weights, image=inp.source, class_name=str(trace.target),
                                     division=division, search=s.search, options=s.options,
                                     class_names=s.class_names)
        # The curves and AUCs exactly as the evaluation computes them from the saved files.
        loaded = LoadedResult(Path(f"{inp.name}.json"), record, np.asarray(record["region_areas"]), ranks)
        insertion_auc, deletion_auc = image_aucs(loaded)
        return Explanation(
            order=list(trace.order), labels=np.asarray(labels, dtype=np.int32), image=inp.pixels,
            saliency=rank_map_saliency(ranks, len(trace.order)), ranks=ranks,
            insertion_curve=insertion_curve(loaded), deletion_curve=deletion_curve(loaded),
            insertion_auc=insertion_auc, deletion_auc=deletion_auc, forward_passes=trace.forward_passes,
            target=trace.target, target_name=None if s.class_names is None else s.class_names[trace.target],
            trace=trace, record=record, name=inp.name)
