"""Running the searches: one image (:func:`explain`) or several at once (:func:`explain_many`).

The searches themselves and their registry are :mod:`submodular_attribution.search_methods`.
The driver feeds each search the scores it asks for, then scores every prefix of the final
order that the search did not evaluate itself, so the stored insertion and deletion curves are
model evaluations of exactly those prefixes (the full set V never costs a forward beyond the
two reference images). With several images, the requests of all of them are scored together
in shared batches (:func:`~submodular_attribution.engine.score_requests`): results are the same
as one image at a time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .engine import SetEvaluator, SetScores, score_requests
from .models import Scorer
from .objective import Weights, angular_distances, effectiveness
from .search_methods import SEARCHES, SearchContext, SearchResult

__all__ = ["SEARCHES", "SearchTrace", "explain", "explain_many", "prefix_sets"]


@dataclass
class SearchTrace:
    """The ordering of all N regions and per-prefix scores (arrays of length N).

    Entry i describes the first i+1 regions of ``order``.
    """

    order: list[int]
    consistency: np.ndarray
    collaboration: np.ndarray
    confidence: np.ndarray
    effectiveness: np.ndarray | None
    smdl_score: np.ndarray
    target: int
    org_score: float
    baseline_score: float
    forward_passes: int
    seconds: float = 0.0


def prefix_sets(order: list[int], n: int, device: torch.device) -> torch.Tensor:
    """N×N bool: row i holds the first i+1 regions of ``order``."""
    ranks = torch.empty(n, dtype=torch.long, device=device)
    ranks[torch.tensor(order, device=device)] = torch.arange(n, device=device)
    return ranks[None, :] <= torch.arange(n, device=device)[:, None]


def _with_honest_curves(ctx: SearchContext, run, ev: SetEvaluator):
    """The search, then one request for the prefixes it left unscored; → (order, N SetScores)."""
    result: SearchResult = yield from run
    n = ctx.num_regions
    if sorted(result.order) != list(range(n)):
        raise AssertionError(f"search returned {result.order}, not an order of {n} regions")
    prefix = dict(result.prefix)
    prefix.setdefault(n, ev.full_set_scores())
    missing = [k for k in range(1, n) if k not in prefix]
    if missing:
        sets = prefix_sets(result.order, n, ctx.device)[torch.tensor(missing, device=ctx.device) - 1]
        scores = yield sets
        for i, k in enumerate(missing):
            prefix[k] = scores.select(slice(i, i + 1))
    return result.order, [prefix[k] for k in range(1, n + 1)]


@dataclass
class _Job:
    ev: SetEvaluator
    ctx: SearchContext
    steps: Any  # the running generator
    pending: torch.Tensor | None = None
    done: tuple[list[int], list[SetScores]] | None = None


def _start(scorer: Scorer, image: torch.Tensor, labels: torch.Tensor, target: int | None, weights: Weights,
           search: str, options: dict, batch_size: int, seed: int, precision: str) -> _Job:
    if search not in SEARCHES:
        raise ValueError(f"unknown search {search!r}; choose from {', '.join(SEARCHES)}")
    ev = SetEvaluator(scorer, image, labels, target=target, batch_size=batch_size, precision=precision)
    distances = angular_distances(ev.region_embeddings()) if weights.effectiveness != 0 else None
    ctx = SearchContext(ev.num_regions, ev.device, weights, distances, ev.labels, seed, ev.full_set_scores())
    spec = SEARCHES[search]
    job = _Job(ev, ctx, _with_honest_curves(ctx, spec.run(ctx, **spec.options(options)), ev))
    _advance(job, None)
    return job


def _advance(job: _Job, scores: SetScores | None) -> None:
    try:
        job.pending = next(job.steps) if scores is None else job.steps.send(scores)
    except StopIteration as stop:
        job.pending, job.done = None, stop.value


def _trace(job: _Job, seconds: float) -> SearchTrace:
    order, prefix_scores = job.done
    ctx, ev = job.ctx, job.ev
    scores = SetScores.cat(prefix_scores)
    eff = None if ctx.distances is None else effectiveness(prefix_sets(order, ctx.num_regions, ctx.device),
                                                            ctx.distances)
    terms = scores.terms(eff)
    as_numpy = lambda t: t.double().cpu().numpy()  # noqa: E731
    return SearchTrace(
        order=order,
        consistency=as_numpy(terms.consistency),
        collaboration=as_numpy(terms.collaboration),
        confidence=as_numpy(terms.confidence),
        effectiveness=None if eff is None else as_numpy(eff),
        smdl_score=as_numpy(terms.objective(ctx.weights)),
        target=ev.target,
        org_score=ev.org_score,
        baseline_score=ev.baseline_score,
        forward_passes=ev.forward_passes,
        seconds=seconds,
    )


def explain_many(
    scorer: Scorer,
    images: Sequence[tuple[torch.Tensor, torch.Tensor, int | None, int]],
    weights: Weights,
    search: str = "greedy",
    options: dict | None = None,
    batch_size: int = 64,
    precision: str = "fp32",
) -> list[SearchTrace]:
    """Order the regions of several images, their searches advancing together.

    images: ``(image 3×H×W float RGB in [0, 1], label map H×W 0..N−1, target or None, seed)``
    per image (sizes may differ). Each round, the pending requests of every unfinished image
    are scored in shared batches of ``batch_size`` images. ``seconds`` of each trace is its
    share of the group's wall time (that time over the number of images), so that means over
    traces are seconds per image. Returns one :class:`SearchTrace` per image, in order.
    """
    start = time.perf_counter()
    jobs = [_start(scorer, image, labels, target, weights, search, options or {}, batch_size, seed, precision)
            for image, labels, target, seed in images]
    while True:
        active = [job for job in jobs if job.pending is not None]
        if not active:
            break
        results = score_requests([(job.ev, job.pending) for job in active], batch_size)
        for job, scores in zip(active, results):
            _advance(job, scores)
    share = (time.perf_counter() - start) / max(len(jobs), 1)
    return [_trace(job, share) for job in jobs]


def explain(
    scorer: Scorer,
    image: torch.Tensor,
    labels: torch.Tensor,
    target: int | None,
    weights: Weights,
    search: str = "greedy",
    pending_samples: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    options: dict | None = None,
    precision: str = "fp32",
) -> SearchTrace:
    """Order all regions of one image.

    image: 3×H×W float RGB in [0, 1]; labels: H×W label map 0..N−1;
    target: class index, or None for the model's prediction on the full image;
    search: a name in :data:`SEARCHES`, with ``options`` (``pending_samples`` may also be given
    directly); precision: fp32, bf16 or fp16 (autocast around the model only).
    """
    options = dict(options or {})
    if pending_samples is not None:
        options["pending_samples"] = pending_samples
    return explain_many(scorer, [(image, labels, target, seed)], weights, search, options, batch_size, precision)[0]
