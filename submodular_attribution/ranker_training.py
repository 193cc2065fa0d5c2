"""Training the amortised search's ranker (:mod:`.search_ranker`) for one model: exact greedy
on a few images, recorded step by step, and the listwise fit. With ``rounds`` > 1, each further
round runs the search itself with the last ranker on the same images, scoring every candidate
at every step for the exact answers but following its own picks, so the next fit also sees the
states the search reaches (DAgger, Ross et al., AISTATS 2011); on the CNN's pilot (16 images,
N ≈ 49) a second round did not help, so the default is one. The cost is every round's forwards,
exact greedy's on those images each, spread over the images the ranker then serves
(``meta["forwards"]``).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from .common.progress import Progress
from .models import Scorer
from .objective import Weights
from .search import explain_stream
from .search_methods import SearchResult, SearchSpec
from .search_ranker import GreedyRecord, Ranker, fit_ranker, ranked_search, training_lists

__all__ = ["RECORDING", "record_runs", "train_ranker"]


def _recording(ctx, sink, model, top):
    return SearchResult(*(yield from ranked_search(ctx, model, top, sink=sink)))


#: a ranked search (exact greedy without a model) that records every candidate of every step
#: (not a user search: it is not registered)
RECORDING = SearchSpec(_recording, "ranked search, every candidate of every step recorded",
                       {"sink": None, "model": None, "top": 2})


def record_runs(scorer: Scorer, images: Iterable[tuple[torch.Tensor, torch.Tensor, int | None]], weights: Weights,
                model: Ranker | None = None, top: int = 2, batch_size: int = 64, precision: str = "fp32",
                at_once: int = 8) -> tuple[list[GreedyRecord], int]:
    """The recorded search (exact greedy when ``model`` is None) on each (image, label map,
    target) → (their records in input order, forwards)."""
    images = list(images)
    sink: list = []
    forwards = 0
    progress = Progress(len(images), "ranker: " + ("exact greedy" if model is None else "the search, recorded"))
    jobs = ((k, (image, labels, target, k)) for k, (image, labels, target) in enumerate(images))
    for _, trace in explain_stream(scorer, jobs, weights, search=RECORDING,
                                   options={"sink": sink, "model": model, "top": top},
                                   batch_size=batch_size, precision=precision, at_once=at_once):
        if isinstance(trace, Exception):
            raise trace
        forwards += trace.forward_passes
        progress.update()
    progress.close()
    return [record for _, record in sorted(sink, key=lambda entry: entry[0])], forwards


def train_ranker(scorer: Scorer, images: Iterable[tuple[torch.Tensor, torch.Tensor, int | None]], weights: Weights,
                 top: int = 2, rounds: int = 1, batch_size: int = 64, precision: str = "fp32", seed: int = 0,
                 at_once: int = 8) -> Ranker:
    """A ranker for ``scorer`` from ``rounds`` recorded runs on ``images`` (module docstring;
    ``top``: the search's ``ranker_top`` the later rounds follow); ``meta`` records the number of
    images, their mean region count, the forwards of all rounds and the weights."""
    images = list(images)
    rng = np.random.default_rng(seed)
    lists, forwards, ranker = [], 0, None
    for _ in range(rounds):
        records, spent = record_runs(scorer, images, weights, ranker, top, batch_size, precision, at_once)
        lists += training_lists(records, rng)
        forwards += spent
        meta = {"images": len(records), "rounds": rounds, "top": top,
                "regions": float(np.mean([len(r.steps[0].ids) for r in records])), "forwards": forwards,
                "weights": list(weights.positional()), "seed": seed}
        ranker = fit_ranker(lists, seed, meta=meta)
    return ranker
