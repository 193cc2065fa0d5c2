"""The amortised ranker (issue 24, item 2): one small network per model, learned from exact
greedy runs on a few images, ranks each step's candidates; the search scores only its top few
exactly. :mod:`.ranker_training` runs the greedy searches and fits it; :mod:`.search_methods`
registers the search (``amortised``).

Features of candidate region c at step t (set S_t), all known to the search without extra
forwards (:data:`FEATURES`): its gain F(S ∪ {c}) − F(S) when last scored, split into the
insertion part Δp_t(insert) and the deletion part −Δp_t(delete), and how many steps ago; its
gain alone at the first (full) step with the same split (the deletion part is its
leave-one-out drop); its area (× N) and distance from the image centre; the share of its
boundary that S_t covers; the progress |S_t|/N and p_t of S_t's insertion and deletion images;
its last gain less the best last gain, and its rank among the last gains. Gains are in average shares |F(V) − F(∅)|/N, so the
ranker carries over between images and models of other output scales.

Training (:func:`training_lists`): at every exact greedy step t ≥ 1 all candidates were scored,
so the step is a ranking example whose answer is known. What the search knows then is
simulated: each candidate's "last scored" step is drawn from the steps before t (half the time
t − 1), and its last-gain features are read from the greedy tables at that step (three draws
per step). The network
(:class:`Ranker`, 15 → 32 → 32 → 1) is fitted by a listwise loss: cross-entropy between
softmax(scores) and softmax(exact gains / 0.25) over each step's candidates.

The search (:func:`ranked_search`; registered through :func:`amortised_order`): the first step scores every candidate; each later step
scores the ``ranker_top`` best by the ranker and appends the best exact value (ties: lowest
id). The step after the insertion score saturates (as ``staged``) scores every candidate again,
and so does every ``refresh_every``-th (0: none).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .common.checks import check_int, check_number
from .search_surrogate import boundary_shares, empty_set_start, region_adjacency

FEATURES = ("last gain", "last insertion gain", "last deletion gain", "steps since scored / N",
            "first gain", "first insertion gain", "leave-one-out drop", "area × N", "distance from centre",
            "boundary share in S", "progress |S|/N", "p(insert S)", "p(delete S)", "last gain − best last gain",
            "rank of last gain")
FORMAT = "smdl-ranker-1"
TEMPERATURE = 0.25  # average shares: the softness of the training target over a step's candidates


@dataclass
class Geometry:
    """Per region: area × N, distance of its centroid from the image centre (1 = a corner), and
    the N×N share of each region's boundary shared with each other region."""

    area: np.ndarray
    centre: np.ndarray
    touch: np.ndarray

    @classmethod
    def of(cls, labels: torch.Tensor, n: int) -> "Geometry":
        lab = labels.cpu().numpy()
        h, w = lab.shape
        ys, xs = np.mgrid[0:h, 0:w]
        count = np.bincount(lab.ravel(), minlength=n).astype(float)
        cy = np.bincount(lab.ravel(), ys.ravel(), n) / np.maximum(count, 1)
        cx = np.bincount(lab.ravel(), xs.ravel(), n) / np.maximum(count, 1)
        half = np.hypot((h - 1) / 2, (w - 1) / 2) or 1.0
        return cls(count * n / count.sum(), np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) / half,
                   boundary_shares(region_adjacency(labels, n)[1]))


@dataclass
class Known:
    """What the search knows of every region: its last exact gain (F, insertion and deletion
    parts, in average shares) and the step it was scored at; its first-step gains."""

    gain: np.ndarray
    ins: np.ndarray
    dele: np.ndarray
    step: np.ndarray
    first: np.ndarray  # N×3: gain, insertion part, deletion part at the first step

    @classmethod
    def empty(cls, n: int) -> "Known":
        return cls(np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros((n, 3)))

    def record(self, step: int, ids: np.ndarray, gains: np.ndarray) -> None:
        """``gains``: B×3 (F, insertion, deletion parts) of ``ids`` scored at ``step``."""
        self.gain[ids], self.ins[ids], self.dele[ids] = gains.T
        self.step[ids] = step
        if step == 0:
            self.first[ids] = gains


def features(geometry: Geometry, known: Known, ids: np.ndarray, chosen: np.ndarray, step: int,
             state: tuple[float, float]) -> np.ndarray:
    """B×15 rows of :data:`FEATURES` for candidates ``ids`` at ``step`` over the bool set
    ``chosen``; ``state``: (p_t(insert(S)), p_t(delete(S)))."""
    n = len(chosen)
    last = known.gain[ids]
    order = np.argsort(np.argsort(-last, kind="stable"), kind="stable")
    rows = np.column_stack([
        last, known.ins[ids], known.dele[ids], (step - known.step[ids]) / n, known.first[ids],
        geometry.area[ids], geometry.centre[ids], geometry.touch[ids][:, chosen].sum(1),
        np.full(len(ids), chosen.sum() / n), np.full(len(ids), state[0]), np.full(len(ids), state[1]),
        last - last.max(), order / max(len(ids) - 1, 1)])
    return rows.astype(np.float32)


def _network(width: int = 32) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(len(FEATURES), width), torch.nn.ReLU(),
                               torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 1))


class Ranker:
    """The network with its feature standardisation; ``meta``: how it was trained."""

    def __init__(self, net: torch.nn.Module, mean: np.ndarray, std: np.ndarray, meta: dict):
        self.net, self.mean, self.std, self.meta = net.eval(), mean, std, meta

    @torch.no_grad()
    def score(self, rows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy((rows - self.mean) / self.std).float()
        return self.net(x).squeeze(1).double().numpy()

    def save(self, path: Path) -> None:
        from .common.atomic import atomic_write

        blob = {"format": FORMAT, "features": list(FEATURES), "mean": torch.from_numpy(self.mean),
                "std": torch.from_numpy(self.std), "state": self.net.state_dict(), "meta": self.meta}
        atomic_write(Path(path), lambda handle: torch.save(blob, handle))

    @staticmethod
    def load(path: str | Path) -> "Ranker":
        """One-line ValueError naming the file when it is missing or not a ranker."""
        path = Path(path)
        return _load(str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else -1)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: int) -> Ranker:  # cached per file version: every image of a run reads it
    if mtime < 0:
        raise ValueError(f"ranker file {path} not found (make one with the task's --train-ranker FILE)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != FORMAT or tuple(blob["features"]) != FEATURES:
            raise ValueError
        net = _network()
        net.load_state_dict(blob["state"])
    except Exception:  # noqa: BLE001 - any unreadable file is one message
        raise ValueError(f"{path} is not a ranker of this version ({FORMAT})") from None
    return Ranker(net, blob["mean"].numpy(), blob["std"].numpy(), blob.get("meta", {}))


# --------------------------------------------------------------------------- training


@dataclass
class StepTable:
    """One exact greedy step: the set before it, its scores, and every candidate's scores."""

    chosen: np.ndarray  # N bool
    state: tuple[float, float, float]  # F(S), p(insert S), p(delete S)
    ids: np.ndarray
    value: np.ndarray  # F(S ∪ {c})
    ins: np.ndarray  # p(insert(S ∪ {c}))
    dele: np.ndarray  # p(delete(S ∪ {c}))
    rows: np.ndarray | None = None  # the features a ranked search saw (None: exact greedy, simulated)


@dataclass
class GreedyRecord:
    """An image's exact greedy run, step by step, with its geometry and average share."""

    geometry: Geometry
    unit: float
    steps: list[StepTable]


def step_gains(table: StepTable, unit: float, ids: np.ndarray | None = None) -> np.ndarray:
    """B×3 gains (F, insertion part, deletion part) of the candidates (all, or ``ids``)."""
    pick = slice(None) if ids is None else np.searchsorted(table.ids, ids)
    value, ins, dele = table.state
    return np.column_stack([(table.value[pick] - value) / unit, table.ins[pick] - ins, dele - table.dele[pick]])


def training_lists(records: list[GreedyRecord], rng: np.random.Generator, repeats: int = 3):
    """Ranking examples: per record, step t ≥ 1 and repeat, (features of the candidates with a
    simulated last-scored step each, their exact gains in average shares)."""
    lists = []
    for record in records:
        n = len(record.steps[0].chosen)
        for t in range(1, len(record.steps)):
            table = record.steps[t]
            ids, target = table.ids, step_gains(table, record.unit)[:, 0]
            if table.rows is not None:  # a ranked search's own state
                lists.append((table.rows, target))
                continue
            for _ in range(repeats):
                known = Known.empty(n)
                known.record(0, record.steps[0].ids, step_gains(record.steps[0], record.unit))
                fresh = rng.random(len(ids)) < 0.5
                when = np.where(fresh, t - 1, rng.integers(0, t, len(ids)))
                for s in np.unique(when):
                    some = ids[when == s]
                    known.record(int(s), some, step_gains(record.steps[s], record.unit, some))
                lists.append((features(record.geometry, known, ids, table.chosen, t, table.state[1:]), target))
    return lists


def fit_ranker(lists, seed: int = 0, epochs: int = 400, meta: dict | None = None) -> Ranker:
    """The listwise fit (module docstring), full batch, deterministic for a seed."""
    if not lists:
        raise ValueError("no ranking examples: the training images need at least 3 regions each")
    torch.manual_seed(seed)
    rows = np.concatenate([x for x, _ in lists])
    mean, std = rows.mean(0), rows.std(0) + 1e-6
    width = max(len(x) for x, _ in lists)
    x = torch.zeros(len(lists), width, len(FEATURES))
    y = torch.full((len(lists), width), -torch.inf)
    for i, (rows_i, target) in enumerate(lists):
        x[i, : len(rows_i)] = torch.from_numpy((rows_i - mean) / std)
        y[i, : len(target)] = torch.from_numpy(target / TEMPERATURE).float()
    valid = torch.isfinite(y)
    wanted = torch.softmax(y, 1)
    net = _network()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        optimiser.zero_grad()
        scores = net(x).squeeze(2).masked_fill(~valid, -torch.inf)
        loss = -(wanted * torch.log_softmax(scores, 1).masked_fill(~valid, 0.0)).sum(1).mean()
        loss.backward()
        optimiser.step()
    return Ranker(net, mean.astype(np.float32), std.astype(np.float32),
                  {**(meta or {}), "examples": len(lists), "loss": float(loss.detach())})


# --------------------------------------------------------------------------- the searches


def ranked_search(ctx, model: Ranker | None, top: int = 2, saturation: float = 1.0, refresh_every: int = 0,
                  sink: list | None = None):
    """The amortised search (module docstring) as a request generator; → (order, {k: prefix
    scores}). ``model`` None: every step is full (exact greedy). With ``sink``, every step also
    scores all candidates, for their exact gains, while the order still follows the search's own
    rule, and ``(ctx.seed, GreedyRecord)`` is appended to it: with a model, each step's table
    holds the features the search saw (the states the search itself reaches, for training)."""
    if ctx.reference is None:
        raise ValueError("the amortised search needs the reference scores (SearchContext.reference)")
    n = ctx.num_regions
    geometry, known = Geometry.of(ctx.labels, n), Known.empty(n)
    chosen, current, value, unit = empty_set_start(ctx)
    order, prefix, tables, refresh_at, saturated = [], {}, [], -1, False
    while len(order) < n:
        remaining = (~chosen).nonzero().flatten()
        if len(remaining) == 1:  # forced: S ∪ {c} = V, known from the references
            order.append(int(remaining[0]))
            break
        step, base = len(order), chosen.cpu().numpy()
        state = (float(current.insert_target[0]), float(current.delete_target[0]))
        ids = remaining.cpu().numpy()
        proposed, rows = np.arange(len(ids)), None
        if not (model is None or step == 0 or step == refresh_at or len(remaining) <= top
                or (refresh_every > 0 and step % refresh_every == 0)):
            rows = features(geometry, known, ids, base, step, state)
            proposed = np.sort(np.argsort(-model.score(rows), kind="stable")[:top])
        scored = np.arange(len(ids)) if sink is not None else proposed
        candidates = remaining[torch.as_tensor(scored, device=ctx.device)]
        sets = chosen[None] | ctx.singletons[candidates]
        scores = yield sets
        # one read to the host per step
        values, ins, dele = torch.stack([ctx.objective(sets, scores, chosen, candidates), scores.insert_target,
                                         scores.delete_target]).cpu().numpy()
        gains = np.column_stack([(values - value) / unit, ins - state[0], state[1] - dele])
        if sink is not None:
            tables.append(StepTable(base.copy(), (value, *state), ids, values, ins, dele, rows))
            values, ins, gains, scores = values[proposed], ins[proposed], gains[proposed], scores.select(
                torch.as_tensor(proposed, device=ctx.device))
        known.record(step, ids[proposed], gains)
        if not saturated and float(ins.max()) - state[0] < saturation / n:
            saturated, refresh_at = True, step + 1  # the deletion image rules the gains from here
        best = int(np.argmax(values))
        current = prefix[step + 1] = scores.select(slice(best, best + 1))
        value = float(values[best])
        chosen[int(ids[proposed[best]])] = True
        order.append(int(ids[proposed[best]]))
    if sink is not None:
        sink.append((ctx.seed, GreedyRecord(geometry, unit, tables)))
    return order, prefix


def ranker_missing():
    raise ValueError("the amortised search needs a ranker file (--ranker FILE; make one with --train-ranker FILE)")


def amortised_order(ctx, ranker: str | None = None, ranker_top: int = 2, saturation: float = 1.0,
                    refresh_every: int = 0):
    """The registered search: :func:`ranked_search` with the ranker saved in the file ``ranker``."""
    if not ranker:
        ranker_missing()
    check_int("ranker_top", ranker_top, 1)
    check_number("saturation", saturation, 0.0, finite=True)
    check_int("refresh_every", refresh_every, 0)
    return (yield from ranked_search(ctx, Ranker.load(ranker), ranker_top, saturation, refresh_every))
