"""The searches that order all N regions of an image, and their registry (spec §4).

A search is a generator: it yields a B×N bool matrix of region sets to score and receives
their :class:`~submodular_attribution.engine.SetScores` (2B forwards: each set's insertion and
deletion image), until it returns a :class:`SearchResult`: the order of all N regions and the
scores of those prefixes of it that it already evaluated. The driver
(:mod:`submodular_attribution.search`) scores every prefix still missing, so the stored curves
are always model evaluations of exactly the final order's prefixes, and it batches the
requests of several images together.

Adding a search is one function and one :data:`SEARCHES` entry here; its options become CLI
flags (:data:`OPTIONS`), and its result-folder suffix comes from the entry.

Registered searches (F = the objective; "scores c" = evaluates F(S ∪ {c})):

* ``greedy`` — exact greedy: each step scores every remaining candidate, appends the argmax
  (ties: lowest region id). N(N+1) − 2 forwards + 2 references.
* ``bidirectional`` — LIMA: forward steps as greedy; while more than p candidates remain
  before a forward step, a backward step moves the candidate minimising F(D ∪ {c}) among the p
  with the lowest forward score to the removed set D. Order S + reversed(D).
* ``lazy`` — stale-ranking greedy: all remaining candidates are scored on the first
  ``exact_steps`` steps and every ``refresh_every`` steps (0: never again); other steps score
  only the ``lazy_top`` best of the last known values and append the best of those fresh
  scores (the same group's multimodal-LLM attribution code uses refresh 5, top 10).
* ``stochastic`` — stochastic greedy (Mirzasoleiman et al., AAAI 2015): each step scores a
  seeded random subset of ``subset_size`` remaining candidates.
* ``coarse-to-fine`` — regions are merged into ``groups`` spatially connected groups of
  similar size (Ward clustering of region centroids on the region adjacency graph); the groups
  are ordered greedily as units, then the regions inside each group greedily, group by group.
* ``lazy-bidirectional`` — the bidirectional search with lazy steps: after a first full
  ranking, forward steps score the ``lazy_top`` best by last known value and backward steps the
  ``pending_samples`` worst, so both ends of the order are built from fresh scores.
* ``staged`` — exact greedy while some region can still raise the target probability of the
  insertion image by ``saturation``/N or more (more than its share of the image, at 1), and one
  step after the one that finds none; then stale-gain lazy greedy: each step re-scores the
  ``lazy_top`` candidates with the largest last known gain F(S' ∪ {c}) − F(S'), with every
  candidate re-scored every ``refresh_every`` steps. The head decides the insertion curve; the
  gains keep ranking the tail for the deletion curve.
* ``fast`` — the quick option: units of adjacent regions ordered by lazy greedy (2 candidates per
  step), then the regions inside each unit by exact greedy. Its measured cost and AUCs against
  exact greedy are on the benchmark page (docs/benchmarks.md), not here.
* ``surrogate`` — surrogate-ranked greedy (:mod:`.search_surrogate`): the first ``exact_steps``
  steps and the step after the insertion score saturates score every candidate; other steps
  score only the ``surrogate_top`` candidates that a per-image ridge model of the gains (region
  effects, adjacent-region interactions), fitted to every set scored since the last full step,
  ranks best, and append the best of those exact values.
* ``surrogate-tail`` — ``surrogate`` that, once the insertion score has saturated, appends up to
  ``tail_picks`` regions in one step when their exact gains lead the rest by ``tail_margin``
  average shares |F(V) − F(∅)|/N.
* ``amortised`` — ranker-proposed greedy (:mod:`.search_ranker`): a small network per model,
  learned from exact greedy runs on a few images (:mod:`.ranker_training`, file ``ranker``),
  ranks each step's candidates from what the search already knows; the ``ranker_top`` best are
  scored exactly and the best of those appended. The first step and the one after the
  insertion score saturates score every candidate.
* ``random`` — a seeded random order of the same regions, scored the same way (a control).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator

import numpy as np
import torch

from .common.checks import check_int, check_number
from .engine import SetScores
from .objective import Weights, effectiveness, effectiveness_added, without_diagonal
from .search_ranker import Ranker, amortised_order, ranker_missing
from .search_surrogate import surrogate_order

Request = Generator[torch.Tensor, SetScores, "SearchResult"]


@dataclass
class SearchContext:
    """What a search knows about one image: N regions, the weights, the pairwise embedding
    distances (None when λ2 = 0), the label map (on the device), a seeded generator, and the
    scores of the full set V from the two reference forwards (None: unknown)."""

    num_regions: int
    device: torch.device
    weights: Weights
    distances: torch.Tensor | None
    labels: torch.Tensor
    seed: int = 0
    reference: SetScores | None = None
    rng: np.random.Generator = field(init=False)
    singletons: torch.Tensor = field(init=False)  # N×N bool identity: row i is the set {i}
    _apart: torch.Tensor | None = field(init=False)  # the distances with +inf on the diagonal

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.singletons = torch.eye(self.num_regions, dtype=torch.bool, device=self.device)
        self._apart = None if self.distances is None else without_diagonal(self.distances)

    def objective(self, sets: torch.Tensor, scores: SetScores, chosen: torch.Tensor | None = None,
                  added: torch.Tensor | None = None) -> torch.Tensor:
        """F of each row of ``sets`` from its scores → (B,) float64. When the rows are
        ``chosen`` ∪ {added[b]}, passing both makes the effectiveness term O(B·N), not O(B·N²)."""
        if self._apart is None:
            eff = None
        elif added is not None:
            eff = effectiveness_added(chosen, added, self._apart)
        else:
            eff = effectiveness(sets, self.distances, off_diagonal=self._apart)
        return scores.terms(eff).objective(self.weights)

    def empty(self) -> torch.Tensor:
        return torch.zeros(self.num_regions, dtype=torch.bool, device=self.device)


@dataclass
class SearchResult:
    """order: all N regions; prefix[k]: scores of the set of the first k regions, where known."""

    order: list[int]
    prefix: dict[int, SetScores] = field(default_factory=dict)


def add_each(chosen: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """One row per candidate: the set ``chosen`` (N bool) plus that candidate."""
    sets = chosen.repeat(len(candidates), 1)
    sets[torch.arange(len(candidates), device=chosen.device), candidates] = True
    return sets


def _pick(ctx: SearchContext, chosen: torch.Tensor, candidates: torch.Tensor, best: bool = True):
    """Score ``chosen ∪ {c}`` for every candidate (a request); → (index of the first max (or
    min), its scores, all F values). Candidates come in ascending id order, so ties go to the
    lowest id."""
    return (yield from _pick_units(ctx, chosen, ctx.singletons[candidates], best, candidates))


def _pick_units(ctx: SearchContext, chosen: torch.Tensor, units: torch.Tensor, best: bool = True,
                regions: torch.Tensor | None = None):
    """As :func:`_pick`, for candidate units (rows of a bool matrix over the N regions);
    ``regions``: their region ids when every unit is one region."""
    sets = chosen[None] | units
    scores = yield sets
    values = ctx.objective(sets, scores, chosen, regions)
    index = int(values.argmax() if best else values.argmin())
    return index, scores.select(slice(index, index + 1)), values


def _lazy_units(ctx: SearchContext, units: torch.Tensor, refresh_every: int, lazy_top: int, exact_steps: int = 1,
                early_top: int = 0, early_steps: int = 0):
    """Order the U units (U×N bool rows, disjoint, covering all regions) by stale-ranking
    greedy: ``known[u]`` is the last F(S' ∪ u) computed (S' an earlier S). Steps before
    ``exact_steps`` and every ``refresh_every``-th score every unit; the next ``early_steps``
    re-score the ``early_top`` best by known value, later steps the ``lazy_top`` best, and the
    best fresh value wins (ties → lowest unit id). → (unit order, {step + 1: scores of the
    union of the first step + 1 units})."""
    count = units.shape[0]
    chosen, taken = ctx.empty(), torch.zeros(count, dtype=torch.bool, device=ctx.device)
    known = torch.full((count,), -torch.inf, dtype=torch.float64, device=ctx.device)
    order, prefix = [], {}
    for step in range(count):
        remaining = (~taken).nonzero().flatten()
        if len(remaining) == 1:
            unit = int(remaining[0])
        else:
            top = early_top if early_top and exact_steps <= step < exact_steps + early_steps else lazy_top
            full = step < exact_steps or (refresh_every > 0 and step % refresh_every == 0) or len(remaining) <= top
            candidates = remaining
            if not full:  # the best by last known value, re-scored in id order
                best_known = torch.argsort(known[remaining], descending=True, stable=True)[:top]
                candidates = remaining[best_known].sort().values
            regions = candidates if units is ctx.singletons else None  # units that are single regions
            best, prefix[step + 1], values = yield from _pick_units(ctx, chosen, units[candidates], True, regions)
            known[candidates] = values
            unit = int(candidates[best])
        taken[unit] = True
        chosen |= units[unit]
        order.append(unit)
    return order, prefix


# --------------------------------------------------------------------------- searches


def greedy(ctx: SearchContext) -> Request:
    chosen, order, prefix = ctx.empty(), [], {}
    for step in range(ctx.num_regions):
        candidates = (~chosen).nonzero().flatten()
        best = 0
        if len(candidates) > 1:  # the last step is forced: S ∪ {c} = V, known from the references
            best, prefix[step + 1], _ = yield from _pick(ctx, chosen, candidates)
        region = int(candidates[best])
        chosen[region] = True
        order.append(region)
    return SearchResult(order, prefix)


def lazy(ctx: SearchContext, refresh_every: int = 5, lazy_top: int = 10, exact_steps: int = 1,
         early_top: int = 0, early_steps: int = 0) -> Request:
    """Stale-ranking greedy over regions (see :func:`_lazy_units`)."""
    if refresh_every < 0 or lazy_top < 1 or exact_steps < 1 or early_top < 0 or early_steps < 0:
        raise ValueError(f"lazy search needs refresh_every, early_top, early_steps ≥ 0 and lazy_top, exact_steps ≥ 1; "
                         f"got {refresh_every}, {early_top}, {early_steps}, {lazy_top}, {exact_steps}")
    order, prefix = yield from _lazy_units(ctx, ctx.singletons, refresh_every, lazy_top, exact_steps,
                                           early_top, early_steps)
    return SearchResult(order, prefix)


def stochastic(ctx: SearchContext, subset_size: int = 8) -> Request:
    if subset_size < 1:
        raise ValueError(f"stochastic search needs subset_size ≥ 1, got {subset_size}")
    chosen, order, prefix = ctx.empty(), [], {}
    for step in range(ctx.num_regions):
        remaining = (~chosen).nonzero().flatten()
        if len(remaining) == 1:
            region = int(remaining[0])
        else:
            if len(remaining) > subset_size:
                picks = np.sort(ctx.rng.choice(len(remaining), size=subset_size, replace=False))
                candidates = remaining[torch.as_tensor(picks, device=ctx.device)]
            else:
                candidates = remaining
            best, prefix[step + 1], _ = yield from _pick(ctx, chosen, candidates)
            region = int(candidates[best])
        chosen[region] = True
        order.append(region)
    return SearchResult(order, prefix)


def _bidirectional(ctx: SearchContext, pending_samples: int, lazy_top: int | None) -> Request:
    """LIMA's search; with ``lazy_top``, forward steps after the first score only the
    ``lazy_top`` candidates with the best last known F, and the backward step's pool is the
    ``pending_samples`` lowest by last known F among those not just chosen."""
    check_int("pending_samples", pending_samples, 1)
    n = ctx.num_regions
    remaining = torch.ones(n, dtype=torch.bool, device=ctx.device)
    selected, removed = ctx.empty(), ctx.empty()
    known = torch.full((n,), -torch.inf, dtype=torch.float64, device=ctx.device)
    forward, forward_scores = [], []
    backward, backward_scores = [], []  # backward_scores[m-1]: scores of the first m removed regions
    while remaining.any():
        candidates = remaining.nonzero().flatten()
        # The original's rule, decided before the forward step: a backward step follows it
        # iff more than p candidates remain now (so with p + 1 left, one more is taken).
        take_backward = len(candidates) > pending_samples
        if len(candidates) == 1:  # forced: S ∪ {c} = V ∖ D, the complement of a scored set
            region = int(candidates[0])
            scores = backward_scores[-1].complement() if backward else None
        else:
            scored = candidates
            if lazy_top is not None and forward and len(candidates) > lazy_top:
                top = torch.argsort(known[candidates], descending=True, stable=True)[:lazy_top]
                scored = candidates[top].sort().values
            best, scores, values = yield from _pick(ctx, selected, scored)
            known[scored] = values
            region = int(scored[best])
        selected[region], remaining[region] = True, False
        forward.append(region)
        forward_scores.append(scores)
        if not take_backward:
            continue
        # Backward step: the last known F(S ∪ {c}) is the proxy, so choosing the pool costs nothing.
        others = remaining.nonzero().flatten()
        if len(others) == 1:  # p = 1, two were left: D ∪ {c} = V ∖ (S ∪ {region}), just scored
            worst, worst_scores = int(others[0]), scores.complement()
        else:
            pool = others[torch.argsort(known[others], stable=True)[:pending_samples]]
            worst_index, worst_scores, _ = yield from _pick(ctx, removed, pool, best=False)
            worst = int(pool[worst_index])
        removed[worst], remaining[worst] = True, False
        backward.append(worst)
        backward_scores.append(worst_scores)
    prefix = {k + 1: s for k, s in enumerate(forward_scores) if s is not None}
    # Prefix S + reversed(D)[:j] is V ∖ (first |D|−j removed), the complement of a scored set.
    for m in range(1, len(backward)):
        prefix[n - m] = backward_scores[m - 1].complement()
    return SearchResult(forward + backward[::-1], prefix)


def bidirectional(ctx: SearchContext, pending_samples: int = 8) -> Request:
    return (yield from _bidirectional(ctx, pending_samples, None))


def lazy_bidirectional(ctx: SearchContext, pending_samples: int = 4, lazy_top: int = 4) -> Request:
    return (yield from _bidirectional(ctx, pending_samples, lazy_top))


def region_groups(labels: torch.Tensor, groups: int) -> np.ndarray:
    """(N,) group index 0..G−1 of each region: Ward clustering of the region centroids, merging
    only regions that touch (4-connectivity), so each group is spatially connected where the
    regions are; G = min(groups, N)."""
    from scipy.sparse import coo_matrix
    from sklearn.cluster import AgglomerativeClustering

    lab = labels.cpu().numpy()
    n = int(lab.max()) + 1
    groups = min(groups, n)
    if groups >= n:
        return np.arange(n)
    ys, xs = np.indices(lab.shape)
    counts = np.bincount(lab.ravel(), minlength=n)
    centroids = np.stack([np.bincount(lab.ravel(), ys.ravel(), n), np.bincount(lab.ravel(), xs.ravel(), n)], 1)
    centroids /= counts[:, None]
    a = np.concatenate([lab[:, :-1].ravel(), lab[:-1, :].ravel()])
    b = np.concatenate([lab[:, 1:].ravel(), lab[1:, :].ravel()])
    touching = a != b
    adjacency = coo_matrix((np.ones(touching.sum()), (a[touching], b[touching])), shape=(n, n)).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.int8)
    clustering = AgglomerativeClustering(n_clusters=groups, linkage="ward", connectivity=adjacency)
    return clustering.fit_predict(centroids)


def _within_units(ctx: SearchContext, units: torch.Tensor, unit_order: list[int], unit_prefix: dict):
    """Regions inside each unit, in unit order, by exact greedy given all earlier regions; a
    unit's last region completes it, whose set the unit step already scored."""
    chosen, order, prefix = ctx.empty(), [], {}
    for step, u in enumerate(unit_order):
        inside = units[u].nonzero().flatten()
        for _ in range(len(inside)):
            candidates = inside[~chosen[inside]]
            best = 0
            if len(candidates) > 1:
                best, prefix[len(order) + 1], _ = yield from _pick(ctx, chosen, candidates)
            elif step + 1 in unit_prefix:
                prefix[len(order) + 1] = unit_prefix[step + 1]
            region = int(candidates[best])
            chosen[region] = True
            order.append(region)
    return SearchResult(order, prefix)


def _group_units(ctx: SearchContext, groups: int) -> torch.Tensor:
    member = torch.as_tensor(region_groups(ctx.labels, groups), device=ctx.device)
    return torch.stack([member == k for k in range(int(member.max()) + 1)])  # G×N


def coarse_to_fine(ctx: SearchContext, groups: int = 7) -> Request:
    """Exact greedy over groups of adjacent regions, then over the regions inside each group."""
    if groups < 1:
        raise ValueError(f"coarse-to-fine search needs groups ≥ 1, got {groups}")
    units = _group_units(ctx, groups)
    unit_order, unit_prefix = yield from _lazy_units(ctx, units, refresh_every=1, lazy_top=1)
    return (yield from _within_units(ctx, units, unit_order, unit_prefix))


def staged(ctx: SearchContext, saturation: float = 1.0, lazy_top: int = 2, refresh_every: int = 8) -> Request:
    """Exact greedy steps until one shows that no candidate raises p_t of the insertion image by
    ``saturation`` / N over the current set's (by more than an N-th, a region's share of the
    image, at 1), and one more (the deletion side has changed regime by then); then lazy steps
    ranked by last known gain, with a full re-scoring every ``refresh_every`` steps (0: none)."""
    if saturation < 0 or lazy_top < 1 or refresh_every < 0:
        raise ValueError(f"staged search needs saturation ≥ 0, lazy_top ≥ 1 and refresh_every ≥ 0; "
                         f"got {saturation}, {lazy_top}, {refresh_every}")
    if ctx.reference is None:
        raise ValueError("staged search needs the reference scores (SearchContext.reference)")
    n = ctx.num_regions
    chosen, singletons = ctx.empty(), ctx.singletons
    current = ctx.reference.complement()  # ∅: the baseline image inserted, the whole image deleted
    value = float(ctx.objective(chosen[None], current)[0])
    gain = torch.full((n,), torch.inf, dtype=torch.float64, device=ctx.device)
    order, prefix, lazy_from = [], {}, None  # lazy_from: the first step after the exact head
    for step in range(n):
        remaining = (~chosen).nonzero().flatten()
        if len(remaining) == 1:
            region = int(remaining[0])
        else:
            full = (lazy_from is None or step == lazy_from or len(remaining) <= lazy_top
                    or (refresh_every > 0 and (step - lazy_from) % refresh_every == 0))
            candidates = remaining
            if not full:
                best_known = torch.argsort(gain[remaining], descending=True, stable=True)[:lazy_top]
                candidates = remaining[best_known].sort().values
            sets = chosen[None] | singletons[candidates]
            scores = yield sets
            values = ctx.objective(sets, scores, chosen, candidates)
            # One read to the host: the first maximum (ties go to the lowest id), its value (the
            # maximum itself, exactly), its region and, in the head, the saturation test's rise.
            read = [values.argmax().to(values.dtype), values.max(), candidates[values.argmax()].to(values.dtype)]
            if lazy_from is None:
                read.append(scores.insert_target.max() - current.insert_target[0])
            best, top, picked, *rise = torch.stack(read).tolist()
            gain[candidates] = values - value
            if rise and rise[0] < saturation / n:
                lazy_from = step + 1
            best, region, value = int(best), int(picked), top
            current = prefix[step + 1] = scores.select(slice(best, best + 1))
        chosen[region] = True
        order.append(region)
    return SearchResult(order, prefix)


# ``fast`` orders about this many units, so its cost grows ~linearly beyond it
FAST_UNITS = 50


def fast(ctx: SearchContext) -> Request:
    """The quick option, chosen with ``evals.benchmark_search``: regions are merged into
    U = min(N, 50) units of adjacent regions; the units are ordered by lazy greedy scoring the 2
    best-known units per step, with every unit re-scored on the first step and every round(U/4)
    steps; then the regions inside each unit by exact greedy."""
    n = ctx.num_regions
    units = ctx.singletons if n <= FAST_UNITS else _group_units(ctx, FAST_UNITS)
    count = units.shape[0]
    unit_order, unit_prefix = yield from _lazy_units(ctx, units, refresh_every=max(1, round(count / 4)), lazy_top=2)
    return (yield from _within_units(ctx, units, unit_order, unit_prefix))


def random(ctx: SearchContext) -> Request:
    order = ctx.rng.permutation(ctx.num_regions).tolist()
    return SearchResult(order)
    yield  # a generator that needs no scores of its own  # noqa: unreachable


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Option:
    """A search option, exposed as ``--<name with dashes>``."""

    type: type
    default: Any
    help: str
    minimum: float = 1

    def flag(self, name: str) -> str:
        return "--" + name.replace("_", "-")

    def check(self, label: str, value: Any) -> None:
        """TypeError (wrong type) or ValueError (below the minimum, an empty text) naming ``label``."""
        if self.type is str:
            if not isinstance(value, (str, Path)) or not str(value):
                raise TypeError(f"{label} must be a file name, got {value!r}")
            return
        (check_int if self.type is int else check_number)(label, value, self.minimum)


OPTIONS: dict[str, Option] = {
    "pending_samples": Option(int, 8, "bidirectional searches: candidates re-scored exactly in each backward step"),
    "refresh_every": Option(int, 5, "lazy searches: re-score all candidates every this many steps (0: only the first)",
                            minimum=0),
    "lazy_top": Option(int, 10, "lazy searches: candidates re-scored per step, the best by last known score"),
    "exact_steps": Option(int, 1, "lazy: first steps that score every candidate, as exact greedy"),
    "early_top": Option(int, 0, "lazy: candidates re-scored per step during the early steps (0: lazy_top)",
                        minimum=0),
    "early_steps": Option(int, 0, "lazy: steps after the exact ones that re-score early_top candidates", minimum=0),
    "subset_size": Option(int, 8, "stochastic: random candidates scored per step"),
    "saturation": Option(float, 1.0, "staged: exact steps until no region raises p_t of the insertion image by this "
                                      "over N (N regions)", minimum=0),
    "groups": Option(int, 7, "coarse-to-fine: groups of adjacent regions ordered first"),
    "surrogate_top": Option(int, 2, "surrogate searches: candidates scored exactly per step, the best by the model"),
    "ridge_alpha": Option(float, 1.0, "surrogate searches: ridge penalty of the interaction terms (gains in "
                                      "average shares |F(V) − F(∅)|/N)", minimum=0),
    "tail_picks": Option(int, 3, "surrogate-tail: most regions appended in one step once insertion saturates"),
    "tail_margin": Option(float, 0.5, "surrogate-tail: lead (in average shares) the picked gains need over the "
                                      "next candidate", minimum=0),
    "ranker": Option(str, None, "amortised: the model's ranker file (made by the task's --train-ranker FILE)"),
    "ranker_top": Option(int, 2, "amortised: candidates scored exactly per step, the best by the ranker"),
}


def amortised(ctx: SearchContext, **options) -> Request:
    """Ranker-proposed greedy (:func:`.search_ranker.amortised_order`)."""
    return SearchResult(*(yield from amortised_order(ctx, **options)))


def surrogate(ctx: SearchContext, **options) -> Request:
    """Surrogate-ranked greedy (:func:`.search_surrogate.surrogate_order`)."""
    return SearchResult(*(yield from surrogate_order(ctx, **options)))


@dataclass(frozen=True)
class SearchSpec:
    """A registered search: its generator, what it is, its options (names in :data:`OPTIONS`)
    with per-search defaults, and its result-folder suffix."""

    run: Callable[..., Request]
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)
    suffix: Callable[[dict, int], str] = lambda options, seed: ""
    check: Callable[[dict], None] = lambda options: None  # before any image: ValueError for unusable options

    def options(self, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """This search's options: its defaults, overridden by ``given`` (other keys ignored)."""
        given = given or {}
        return {k: given[k] if given.get(k) is not None else v for k, v in self.defaults.items()}


SEARCHES: dict[str, SearchSpec] = {
    "greedy": SearchSpec(greedy, "exact greedy"),
    "bidirectional": SearchSpec(
        bidirectional, "LIMA's bidirectional search: a forward step and a backward step each round",
        {"pending_samples": 8},
        lambda o, seed: f"-pending-samples-{o['pending_samples']}"),
    "fast": SearchSpec(fast, "quick: lazy greedy over ≤ 50 units, 2 candidates per step, full re-scoring every "
                             "U/4 steps, then the regions inside each unit by exact greedy",
                       suffix=lambda o, seed: "-fast"),
    "lazy": SearchSpec(lazy, "stale-ranking greedy", {"refresh_every": 5, "lazy_top": 10, "exact_steps": 1,
                                                      "early_top": 0, "early_steps": 0},
                       lambda o, seed: "-lazy-" + "-".join(str(o[k]) for k in (
                           "refresh_every", "lazy_top", "exact_steps", "early_top", "early_steps"))),
    "staged": SearchSpec(staged, "exact greedy until the insertion score saturates, then stale-gain lazy greedy",
                         {"saturation": 1.0, "lazy_top": 2, "refresh_every": 8},
                         lambda o, seed: f"-staged-{o['saturation']}-{o['lazy_top']}-{o['refresh_every']}"),
    "lazy-bidirectional": SearchSpec(
        lazy_bidirectional, "bidirectional with lazy steps", {"pending_samples": 4, "lazy_top": 4},
        lambda o, seed: f"-lazy-bidirectional-{o['pending_samples']}-{o['lazy_top']}"),
    "stochastic": SearchSpec(stochastic, "stochastic greedy", {"subset_size": 8},
                             lambda o, seed: f"-stochastic-{o['subset_size']}-seed-{seed}"),
    "coarse-to-fine": SearchSpec(coarse_to_fine, "groups of adjacent regions, then regions", {"groups": 7},
                                 lambda o, seed: f"-coarse-to-fine-{o['groups']}"),
    "surrogate": SearchSpec(
        surrogate, "surrogate-ranked greedy: each step scores the candidates a per-image ridge model of the gains "
                   "ranks best", {"surrogate_top": 2, "ridge_alpha": 1.0, "exact_steps": 2, "saturation": 1.0},
        lambda o, seed: "-surrogate-" + "-".join(str(o[k]) for k in (
            "surrogate_top", "ridge_alpha", "exact_steps", "saturation"))),
    "surrogate-tail": SearchSpec(
        surrogate, "surrogate-ranked greedy that appends several regions per step once insertion saturates",
        {"surrogate_top": 2, "ridge_alpha": 1.0, "exact_steps": 2, "saturation": 1.0, "tail_picks": 3,
         "tail_margin": 0.5},
        lambda o, seed: "-surrogate-tail-" + "-".join(str(o[k]) for k in (
            "surrogate_top", "ridge_alpha", "exact_steps", "saturation", "tail_picks", "tail_margin"))),
    "amortised": SearchSpec(
        amortised, "ranker-proposed greedy: each step scores the candidates a per-model network, learned from exact "
                   "greedy runs, ranks best", {"ranker": None, "ranker_top": 2, "saturation": 1.0, "refresh_every": 0},
        lambda o, seed: f"-amortised-{Path(str(o['ranker'])).stem}-{o['ranker_top']}-{o['saturation']}-"
                        f"{o['refresh_every']}",
        lambda o: Ranker.load(o["ranker"]) if o["ranker"] else ranker_missing()),
    "random": SearchSpec(random, "a seeded random order (control)", suffix=lambda o, seed: f"-random-seed-{seed}"),
}
