"""Searches that order all N regions of an image (spec §4).

* ``greedy``: exact greedy; every step scores each remaining candidate c by F(S ∪ {c}).
* ``bidirectional``: LIMA's search; a forward step is paired with a backward step that
  moves the least important region (exact F(D ∪ {c}) among the ``pending_samples`` = p
  candidates with the lowest forward-step score) to the removed set D. As in the original
  code the rule is decided before the forward step: the backward step follows it while more
  than p candidates remain before that forward step (with p + 1 left, one more backward step
  is taken); after that only forward steps. Order = S + reversed(D).
* ``random``: a seeded random order of the same regions, scored the same way (a control).

Every search returns the order and, for each prefix of it, the four terms and F.
The full set V never costs a forward beyond the two reference images, and the last
forward step of the bidirectional search is the complement of D, already scored; so is a
backward step whose only candidate is the last remaining region (p = 1, two left), since
D ∪ {c} is then the complement of the forward step's S ∪ {best}.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .engine import SetEvaluator, SetScores
from .models import Scorer
from .objective import Weights, angular_distances, effectiveness

SEARCHES = ("greedy", "bidirectional", "random")


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


def _add_each(chosen: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """One row per candidate: the set ``chosen`` (N bool) plus that candidate."""
    sets = chosen.repeat(len(candidates), 1)
    sets[torch.arange(len(candidates), device=chosen.device), candidates] = True
    return sets


def _score(ev: SetEvaluator, sets: torch.Tensor, weights: Weights, distances: torch.Tensor | None):
    scores = ev.score_sets(sets)
    eff = None if distances is None else effectiveness(sets, distances)
    return scores, scores.terms(eff).objective(weights)


def greedy_order(ev: SetEvaluator, weights: Weights, distances: torch.Tensor | None) -> tuple[list[int], list[SetScores]]:
    n = ev.num_regions
    chosen = torch.zeros(n, dtype=torch.bool, device=ev.device)
    order, prefix_scores = [], []
    while len(order) < n:
        candidates = (~chosen).nonzero().flatten()
        if len(candidates) == 1:  # forced: S ∪ {c} = V, scored by the reference forwards
            best, scores = int(candidates[0]), ev.full_set_scores()
        else:
            all_scores, objective = _score(ev, _add_each(chosen, candidates), weights, distances)
            index = int(objective.argmax())  # first maximum: ties go to the lowest region id
            best, scores = int(candidates[index]), all_scores.select(slice(index, index + 1))
        chosen[best] = True
        order.append(best)
        prefix_scores.append(scores)
    return order, prefix_scores


def bidirectional_order(
    ev: SetEvaluator, weights: Weights, distances: torch.Tensor | None, pending_samples: int = 8
) -> tuple[list[int], list[SetScores]]:
    if pending_samples < 1:
        raise ValueError(f"pending_samples must be ≥ 1, got {pending_samples}")
    n = ev.num_regions
    remaining = torch.ones(n, dtype=torch.bool, device=ev.device)
    selected = torch.zeros_like(remaining)
    removed = torch.zeros_like(remaining)
    forward, forward_scores = [], []
    backward, backward_scores = [], []  # backward_scores[m-1]: scores of the first m removed regions
    while remaining.any():
        candidates = remaining.nonzero().flatten()
        # The original's rule, decided before the forward step: a backward step follows it
        # iff more than p candidates remain now (so with p + 1 left, one more is taken).
        # Then at least p others remain after the forward step: the pool always holds p.
        take_backward = len(candidates) > pending_samples
        if len(candidates) == 1:  # forced: S ∪ {c} = V ∖ D, the complement of a scored set
            best = int(candidates[0])
            scores = backward_scores[-1].complement() if backward else ev.full_set_scores()
        else:
            all_scores, objective = _score(ev, _add_each(selected, candidates), weights, distances)
            index = int(objective.argmax())  # first maximum: ties go to the lowest region id
            best, scores = int(candidates[index]), all_scores.select(slice(index, index + 1))
        selected[best], remaining[best] = True, False
        forward.append(best)
        forward_scores.append(scores)
        if not take_backward:
            continue
        # Backward step: the forward step's F(S ∪ {c}) is the proxy, so no new forwards here.
        keep = candidates != best
        others, proxy = candidates[keep], objective[keep]
        if len(others) == 1:  # p = 1, two were left: D ∪ {c} = V ∖ (S ∪ {best}), just scored
            worst, worst_scores = int(others[0]), scores.complement()
        else:
            pool = others[torch.argsort(proxy, stable=True)[:pending_samples]]
            pool_scores, pool_objective = _score(ev, _add_each(removed, pool), weights, distances)
            index = int(pool_objective.argmin())  # first minimum: ties go to the lowest proxy
            worst, worst_scores = int(pool[index]), pool_scores.select(slice(index, index + 1))
        removed[worst], remaining[worst] = True, False
        backward.append(worst)
        backward_scores.append(worst_scores)
    # remaining is empty: S ∪ D = V. S's own score is the last forward step's (computed
    # directly when a backward step emptied ``remaining``, else the forced step's complement).
    # Prefix S + reversed(D)[:j] is V ∖ (first |D|−j removed), the complement of a scored set.
    tail = [backward_scores[m - 1].complement() if m else ev.full_set_scores() for m in range(len(backward) - 1, -1, -1)]
    return forward + backward[::-1], forward_scores + tail


def random_order(
    ev: SetEvaluator, weights: Weights, distances: torch.Tensor | None, seed: int = 0
) -> tuple[list[int], list[SetScores]]:
    n = ev.num_regions
    order = np.random.default_rng(seed).permutation(n).tolist()
    prefixes = _prefix_sets(order, n, ev.device)[:-1]
    scores = [ev.score_sets(prefixes)] if n > 1 else []
    return order, scores + [ev.full_set_scores()]


def _prefix_sets(order: list[int], n: int, device: torch.device) -> torch.Tensor:
    """N×N bool: row i holds the first i+1 regions of ``order``."""
    ranks = torch.empty(n, dtype=torch.long, device=device)
    ranks[torch.tensor(order, device=device)] = torch.arange(n, device=device)
    return ranks[None, :] <= torch.arange(n, device=device)[:, None]


def explain(
    scorer: Scorer,
    image: torch.Tensor,
    labels: torch.Tensor,
    target: int | None,
    weights: Weights,
    search: str = "greedy",
    pending_samples: int = 8,
    batch_size: int = 64,
    seed: int = 0,
) -> SearchTrace:
    """Order all regions of one image.

    image: 3×H×W float RGB in [0, 1]; labels: H×W label map 0..N−1;
    target: class index, or None for the model's prediction on the full image.
    """
    start = time.perf_counter()
    ev = SetEvaluator(scorer, image, labels, target=target, batch_size=batch_size)
    distances = angular_distances(ev.region_embeddings()) if weights.effectiveness != 0 else None
    if search == "greedy":
        order, prefix_scores = greedy_order(ev, weights, distances)
    elif search == "bidirectional":
        order, prefix_scores = bidirectional_order(ev, weights, distances, pending_samples)
    elif search == "random":
        order, prefix_scores = random_order(ev, weights, distances, seed)
    else:
        raise ValueError(f"unknown search {search!r}; choose from {', '.join(SEARCHES)}")
    scores = SetScores.cat(prefix_scores)
    eff = None if distances is None else effectiveness(_prefix_sets(order, ev.num_regions, ev.device), distances)
    terms = scores.terms(eff)
    as_numpy = lambda t: t.double().cpu().numpy()  # noqa: E731
    return SearchTrace(
        order=order,
        consistency=as_numpy(terms.consistency),
        collaboration=as_numpy(terms.collaboration),
        confidence=as_numpy(terms.confidence),
        effectiveness=None if eff is None else as_numpy(eff),
        smdl_score=as_numpy(terms.objective(weights)),
        target=ev.target,
        org_score=ev.org_score,
        baseline_score=ev.baseline_score,
        forward_passes=ev.forward_passes,
        seconds=time.perf_counter() - start,
    )
