"""Running the searches: one image (:func:`explain`), several at once (:func:`explain_many`), or a
stream of images with a fixed number in flight (:func:`explain_stream`).

The searches themselves and their registry are :mod:`submodular_attribution.search_methods`.
The driver feeds each search the scores it asks for, then scores every prefix of the final
order that the search did not evaluate itself, so the stored insertion and deletion curves are
model evaluations of exactly those prefixes (the full set V never costs a forward beyond the
two reference images, nor a one-region set's insertion beyond the embedding forwards). With
several images, the requests of all of them are scored together in shared batches
(:func:`~submodular_attribution.engine.score_requests`): results are the same as one image at
a time. A stream starts the next image as soon as one finishes, so a slow image
never leaves the others' batches half empty.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from .common.checks import check_int
from .engine import RowSource, SetEvaluator, SetRequest, SetScores, Singles, embeddings_of, forward_rows
from .models import ModelOutput, Scorer
from .objective import Weights, angular_distances, effectiveness
from .search_methods import SEARCHES, SearchContext, SearchResult, SearchSpec

__all__ = ["SEARCHES", "SearchTrace", "explain", "explain_many", "explain_stream", "prefix_sets"]


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


def _lifecycle(ev: SetEvaluator, weights: Weights, search: str, options: dict, seed: int):
    """One image's whole run as requests for model rows (:data:`~.engine.RowSource`), each
    answered with their output: its two reference images, its N region embeddings (when λ2 ≠ 0),
    then the sets its search asks for. → (context, order, N prefix scores). The embedding
    forwards are the insertion images of the one-region sets, so those are never sent again."""
    ev.set_reference((yield ev, 2, ev.reference_images))  # the prediction, when it is the target, is known now
    distances, singles = None, None
    if weights.effectiveness != 0:
        output = yield ev, ev.num_regions, ev.singleton_images
        distances, singles = angular_distances(embeddings_of(output)), Singles(*ev.read(output))
    ctx = SearchContext(ev.num_regions, ev.device, weights, distances, ev.labels, seed, ev.full_set_scores())
    spec = search if isinstance(search, SearchSpec) else SEARCHES[search]
    run = _with_honest_curves(ctx, spec.run(ctx, **spec.options(options)), ev)
    try:
        sets = next(run)
        while True:
            request = SetRequest(ev, sets, singles)
            sets = run.send(request.scores((yield request.source)))
    except StopIteration as stop:
        order, prefix = stop.value
    return ctx, order, prefix


@dataclass
class _Job:
    ev: SetEvaluator
    steps: Any  # the running :func:`_lifecycle`
    pending: RowSource | None = None
    done: tuple[SearchContext, list[int], list[SetScores]] | None = None
    key: Any = None
    seconds: float = 0.0  # this image's own work plus its share of each round it took part in


def _start(scorer: Scorer, image: torch.Tensor, labels: torch.Tensor, target: int | None, weights: Weights,
           search: str, options: dict, batch_size: int, seed: int, precision: str) -> _Job:
    """Check one image's inputs (no forward yet); its first request is its reference images."""
    if not isinstance(search, SearchSpec) and search not in SEARCHES:
        raise ValueError(f"unknown search {search!r}; choose from {', '.join(SEARCHES)}")
    ev = SetEvaluator(scorer, image, labels, target=target, batch_size=batch_size, precision=precision)
    job = _Job(ev, _lifecycle(ev, weights, search, options, seed))
    job.pending = next(job.steps)
    return job


def _advance(job: _Job, output: ModelOutput | None) -> None:
    """Hand a job the output of its pending rows; → its next request, or its result when done."""
    try:
        job.pending = job.steps.send(output)
    except StopIteration as stop:
        job.pending, job.done = None, stop.value


def _trace(job: _Job) -> SearchTrace:
    ctx, order, prefix_scores = job.done
    ev = job.ev
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
        seconds=job.seconds,
    )


def _score_round(jobs: list[_Job], batch_size: int) -> list[ModelOutput | None | Exception]:
    """The pending rows of ``jobs`` in shared batches; if that fails, each job's alone, so that
    an error (a bad image, memory) is pinned on the images that cause it."""
    try:
        return forward_rows([job.pending for job in jobs], batch_size)
    except Exception as err:  # noqa: BLE001 - retried one by one below
        if len(jobs) == 1:
            return [err]
    results: list[ModelOutput | None | Exception] = []
    for job in jobs:
        try:
            results += forward_rows([job.pending], batch_size)
        except Exception as err:  # noqa: BLE001 - this image fails, the others go on
            results.append(err)
    return results


_END = object()


def explain_stream(
    scorer: Scorer,
    images: Iterable[tuple[Any, tuple[torch.Tensor, torch.Tensor, int | None, int]]],
    weights: Weights,
    search: str = "greedy",
    options: dict | None = None,
    batch_size: int = 64,
    precision: str = "fp32",
    at_once: int = 8,
) -> Iterator[tuple[Any, SearchTrace | Exception]]:
    """Order the regions of a stream of images, at least ``at_once`` of them in flight.

    images: ``(key, (image 3×H×W float RGB in [0, 1], label map H×W 0..N−1, target or None,
    seed))``, read lazily. Each round, the pending requests of the images in flight are scored
    in shared batches of ``batch_size``; as soon as an image finishes, the next one starts, and
    while a round's requests would not fill one batch (cheap searches, late steps) more images
    join, up to ``batch_size / 2`` in flight.
    Yields ``(key, trace)`` as each image finishes (not in input order), or ``(key, exception)``
    for an image that failed (bad target or label map, an error in its forwards); the others go
    on. A trace's ``seconds`` is its own set-up plus its share of each round it was in, so
    they sum to the stream's time. Results equal one image at a time.
    """
    check_int("at_once", at_once, 1)
    source, active = iter(images), []
    most = max(at_once, batch_size // 2)  # each image adds ≥ 2 rows to a round: batch/2 of them fill a batch

    def wanted() -> bool:  # another image in flight: below at_once, or this round's rows would not fill a batch
        rows = sum(count for _, count, _ in (job.pending for job in active))
        return len(active) < at_once or (len(active) < most and rows < batch_size)

    while True:
        while wanted() and (entry := next(source, _END)) is not _END:
            key, (image, labels, target, seed) = entry
            begin = time.perf_counter()
            try:
                job = _start(scorer, image, labels, target, weights, search, options or {}, batch_size, seed, precision)
            except Exception as err:  # noqa: BLE001 - this image fails, the others go on
                yield key, err
                continue
            job.key, job.seconds = key, time.perf_counter() - begin
            active.append(job)
        if not active:
            return
        begin = time.perf_counter()
        results = _score_round(active, batch_size)
        share = (time.perf_counter() - begin) / len(active)
        still = []
        for job, output in zip(active, results):
            begin = time.perf_counter()
            if not isinstance(output, Exception):
                try:
                    _advance(job, output)
                except Exception as err:  # noqa: BLE001 - a failing search costs only its image
                    output = err
            job.seconds += share + time.perf_counter() - begin
            if isinstance(output, Exception):
                yield job.key, output
            elif job.done is not None:
                yield job.key, _trace(job)
            else:
                still.append(job)
        active = still


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
    per image (sizes may differ). All of them are in flight at once (:func:`explain_stream`);
    the first failure is raised. Returns one :class:`SearchTrace` per image, in order.
    """
    traces: dict[int, SearchTrace] = {}
    for index, outcome in explain_stream(scorer, enumerate(images), weights, search, options, batch_size, precision,
                                         at_once=max(1, len(images))):
        if isinstance(outcome, Exception):
            raise outcome
        traces[index] = outcome
    return [traces[index] for index in range(len(images))]


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
    search: a name in :data:`SEARCHES` (or an unregistered :class:`SearchSpec`), with ``options``
    (``pending_samples`` may also be given directly); precision: fp32, bf16 or fp16 (autocast around the model only).
    """
    options = dict(options or {})
    if pending_samples is not None:
        options["pending_samples"] = pending_samples
    return explain_many(scorer, [(image, labels, target, seed)], weights, search, options, batch_size, precision)[0]
