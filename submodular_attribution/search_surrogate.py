"""Surrogate-ranked greedy (issue 24): each step scores exactly only the candidates that a small
per-image model of the objective ranks best, and every scored set trains that model. No
forwards beyond the sets it scores; :mod:`.search_methods` registers the searches.

The model (:class:`GainModel`) predicts the gain F(S ∪ {c}) − F(S) of adding region c to the
current set S, fitted by closed-form weighted ridge (numpy) to every gain the search has seen:

    gain_t(c) = d_t + w_c + β·touch(c, S_t) + Σ_{j ∈ S_t adjacent to c} v_cj

d_t: one offset per step (the gains of all candidates shrink or grow together; ranking ignores
it); w_c: the region's own effect; touch(c, S): the share of c's boundary that S covers, one
coefficient shared by all regions (objects are contiguous, so a neighbour of the chosen set
often gains more); v_cj: the interaction of adjacent regions c and j, the pairwise term x_c·x_j
of F. Gains are in units of |F(V) − F(∅)| / N, an average region's share; w and d are nearly
unpenalised, β and v carry ``ridge_alpha``; older steps weigh ``FORGET`` per step less.

Seeding: the first ``exact_steps`` steps score every candidate (as exact greedy), so every w_c
starts from an exact gain; after that each step scores the ``surrogate_top`` best by prediction,
appends the best of those exact values (ties: lowest id), and feeds their gains back. The step
after the one where the insertion score saturates (no scored candidate raises p_t of the
insertion image by ``saturation`` / N, as in ``staged``) is a full one too, and so is every
``refresh_every``-th (0: none); a full step re-seeds the model, because the gains seen before
it (ruled by the insertion image) mislead the ranking after it (ruled by the deletion image).

Multi-pick tail (``tail_picks`` > 1): once the insertion score has saturated, a step
appends its m best candidates at once when the ranking is clear: all m were scored exactly and
the m-th gain exceeds the (m+1)-th (exact or predicted) by ``tail_margin`` average shares. The
m − 1 new prefixes are then scored (they are curve points the driver would score anyway) and
train the model as single additions.
"""
from __future__ import annotations

import numpy as np
import torch

from .common.checks import check_int, check_number

FORGET = 0.85  # weight of a gain seen one step earlier, relative to this step's
_FREE = 1e-6  # the ridge of d and w: only resolves the d + w ambiguity


def region_adjacency(labels: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(E×2 int pairs i < j of 4-connected regions, N×N shared-boundary pixel counts)."""
    lab = labels.cpu().numpy()
    a = np.concatenate([lab[:, :-1].ravel(), lab[:-1, :].ravel()])
    b = np.concatenate([lab[:, 1:].ravel(), lab[1:, :].ravel()])
    keep = a != b
    shared = np.zeros((n, n))
    np.add.at(shared, (a[keep], b[keep]), 1.0)
    shared += shared.T
    pairs = np.argwhere(np.triu(shared) > 0)
    return pairs, shared


def boundary_shares(shared: np.ndarray) -> np.ndarray:
    """N×N: row c, the share of region c's boundary that each other region shares with it."""
    perimeter = shared.sum(1)
    return shared / np.where(perimeter > 0, perimeter, 1.0)[:, None]


def empty_set_start(ctx) -> tuple[torch.Tensor, object, float, float]:
    """(∅ as a bool set, its scores, F(∅), the average share |F(V) − F(∅)|/N) from the reference
    scores: the empty set's insertion image is V's deletion image and vice versa."""
    chosen, current = ctx.empty(), ctx.reference.complement()
    value = float(ctx.objective(chosen[None], current)[0])
    unit = max(abs(float(ctx.objective(chosen[None] | True, ctx.reference)[0]) - value) / ctx.num_regions, 1e-12)
    return chosen, current, value, unit


class GainModel:
    """Weighted ridge model of single-region gains (see the module docstring). ``add`` records
    the gains of candidates over a base set at a step; ``predict`` ranks candidates over a base
    set (without the step offset, which does not change a ranking)."""

    def __init__(self, n: int, pairs: np.ndarray, shared: np.ndarray, alpha: float, forget: float = FORGET):
        self.n, self.alpha, self.forget, self.edges = n, alpha, forget, len(pairs)
        self.pair_column = np.full((n, n), -1)
        self.pair_column[pairs[:, 0], pairs[:, 1]] = self.pair_column[pairs[:, 1], pairs[:, 0]] = np.arange(len(pairs))
        self.touch_share = boundary_shares(shared)
        self.offsets = 0  # step offset columns in use
        self.size = 1 + n + len(pairs) + n  # β, w, v, then up to N step offsets
        self.gram = np.zeros((self.size, self.size))
        self.moment = np.zeros(self.size)
        self.coef = np.zeros(self.size)
        self.step = None

    def features(self, base: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """B×(1 + N + E) rows: touch share, one-hot w_c, one-hot v_cj for j ∈ base adjacent to c."""
        rows = np.zeros((len(candidates), 1 + self.n + self.edges))
        rows[:, 0] = self.touch_share[candidates][:, base].sum(1)
        rows[np.arange(len(candidates)), 1 + candidates] = 1.0
        columns = self.pair_column[candidates][:, base]  # B×|S|, −1 where not adjacent
        r, k = np.nonzero(columns >= 0)
        rows[r, 1 + self.n + columns[r, k]] = 1.0
        return rows

    def add(self, step: int, base: np.ndarray, candidates: np.ndarray, gains: np.ndarray) -> None:
        """Gains (in average shares) of ``candidates`` over the bool set ``base``, seen at ``step``."""
        if self.step is not None and step > self.step:  # older gains fade
            self.gram *= self.forget ** (step - self.step)
            self.moment *= self.forget ** (step - self.step)
        if self.step != step:
            self.offsets = min(self.offsets + 1, self.n)
        self.step = step
        x = self.features(base, candidates)
        x = np.concatenate([x, np.zeros((len(x), self.n))], 1)
        x[:, self.size - self.n + self.offsets - 1] = 1.0  # this step's offset
        self.gram += x.T @ x
        self.moment += x.T @ gains
        penalty = np.full(self.size, _FREE)
        penalty[0] = self.alpha + _FREE  # + _FREE: an interaction never seen stays 0 at alpha 0
        penalty[1 + self.n: self.size - self.n] = self.alpha + _FREE
        self.coef = np.linalg.solve(self.gram + np.diag(penalty), self.moment)

    def predict(self, base: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        x = self.features(base, candidates)
        return x @ self.coef[: x.shape[1]]


def _clear_picks(exact: dict[int, float], predicted: dict[int, float], most: int, margin: float) -> int:
    """How many of the best candidates to take: the largest m ≤ ``most`` whose m best (by exact
    gain where scored, else predicted) were all scored and beat the (m+1)-th by ≥ ``margin``; 1
    when no m ≥ 2 qualifies."""
    ranked = sorted(({**predicted, **exact}).items(), key=lambda kv: (-kv[1], kv[0]))
    gains = [g for _, g in ranked] + [-np.inf]
    picks = 1
    for m in range(2, min(most, len(ranked)) + 1):
        if ranked[m - 1][0] not in exact:
            break
        if gains[m - 1] - gains[m] >= margin:
            picks = m
    return picks


def surrogate_order(ctx, surrogate_top: int = 2, ridge_alpha: float = 1.0, exact_steps: int = 2,
                    refresh_every: int = 0, tail_picks: int = 1, tail_margin: float = 0.5,
                    saturation: float = 1.0):
    """The search as a request generator over a :class:`~.search_methods.SearchContext`;
    → (order of all N regions, {k: scores of the first k regions})."""
    check_int("surrogate_top", surrogate_top, 1)
    check_number("ridge_alpha", ridge_alpha, 0.0, finite=True)
    check_int("exact_steps", exact_steps, 1)
    check_int("refresh_every", refresh_every, 0)
    check_int("tail_picks", tail_picks, 1)
    check_number("tail_margin", tail_margin, 0.0, finite=True)
    check_number("saturation", saturation, 0.0, finite=True)
    if ctx.reference is None:
        raise ValueError("the surrogate searches need the reference scores (SearchContext.reference)")
    n, singletons = ctx.num_regions, ctx.singletons
    chosen, current, value, unit = empty_set_start(ctx)
    adjacency = region_adjacency(ctx.labels, n)
    model = GainModel(n, *adjacency, ridge_alpha)
    order, prefix, saturated, step, refresh_at = [], {}, False, 0, -1
    while len(order) < n:
        remaining = (~chosen).nonzero().flatten()
        if len(remaining) == 1:  # forced: S ∪ {c} = V, known from the references
            order.append(int(remaining[0]))
            break
        base = chosen.cpu().numpy()
        full = (step < exact_steps or step == refresh_at or len(remaining) <= surrogate_top
                or (refresh_every > 0 and step % refresh_every == 0))
        if full:  # a full step re-seeds the model: gains of an older regime would mislead it
            model = GainModel(n, *adjacency, ridge_alpha)
        candidates, predicted = remaining, {}
        if not full:
            ids = remaining.cpu().numpy()
            guess = model.predict(base, ids)
            best_guess = np.argsort(-guess, kind="stable")[:surrogate_top]
            candidates = remaining[torch.as_tensor(np.sort(best_guess), device=ctx.device)]
            predicted = dict(zip(ids.tolist(), guess.tolist()))
        sets = chosen[None] | singletons[candidates]
        scores = yield sets
        values = ctx.objective(sets, scores, chosen, candidates)
        gains = ((values - value) / unit).cpu().numpy()
        ids = candidates.cpu().numpy()
        model.add(step, base, ids, gains)
        best = int(values.argmax())
        if not saturated and float(scores.insert_target.max() - current.insert_target[0]) < saturation / n:
            saturated, refresh_at = True, step + 1  # the deletion side changes regime: re-seed
        picks = [int(ids[best])]
        if saturated and tail_picks > 1 and len(remaining) > 2:
            exact = dict(zip(ids.tolist(), gains.tolist()))
            if predicted:  # the unscored, re-predicted with this step's gains learnt
                rest = np.array(sorted(set(predicted) - set(exact)), dtype=int)
                predicted = dict(zip(rest.tolist(), model.predict(base, rest).tolist())) if len(rest) else {}
            m = _clear_picks(exact, predicted, min(tail_picks, len(remaining) - 1), tail_margin)
            picks = [c for c, _ in sorted(exact.items(), key=lambda kv: (-kv[1], kv[0]))[:m]]
        current = prefix[len(order) + 1] = scores.select(slice(best, best + 1))
        value = float(values[best])
        chosen[picks[0]] = True
        order.append(picks[0])
        if len(picks) > 1:  # score the new prefixes: curve points and gains of single additions
            steps = torch.stack([chosen | singletons[picks[1:j + 1]].any(0) for j in range(1, len(picks))])
            more = yield steps
            more_values = ctx.objective(steps, more)
            previous = np.concatenate([[value], more_values[:-1].cpu().numpy()])
            for j, c in enumerate(picks[1:]):
                base_j = steps[j].clone()
                base_j[c] = False
                model.add(step, base_j.cpu().numpy(), np.array([c]),
                          np.array([(float(more_values[j]) - previous[j]) / unit]))
                order.append(c)
                prefix[len(order)] = more.select(slice(j, j + 1))
            chosen = steps[-1].clone()
            current, value = prefix[len(order)], float(more_values[-1])
        step += 1
    return order, prefix
