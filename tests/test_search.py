"""Searches against an independent brute-force oracle, and their forward-pass counts."""
import math

import numpy as np
import pytest
import torch

from submodular_attribution.objective import Weights
from submodular_attribution.search import explain
from tests.conftest import AdditiveScorer, TinyScorer, random_labels


class Oracle:
    """F(S) computed one set at a time, straight from the definitions (no batching, no reuse)."""

    def __init__(self, scorer, image, labels, target, weights):
        self.scorer, self.image, self.labels, self.target, self.w = scorer, image, labels, target, weights
        n = int(labels.max()) + 1
        emb = [self._out(self._insert([i])).embeddings[0].numpy() for i in range(n)]
        self.dist = np.array([[math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)) / math.pi
                               for b in emb] for a in emb])

    def _insert(self, subset):
        mask = torch.isin(self.labels, torch.tensor(subset, dtype=torch.long))
        return self.image * mask

    def _delete(self, subset):
        mask = torch.isin(self.labels, torch.tensor(subset, dtype=torch.long))
        return self.image * ~mask

    def _out(self, img):
        return self.scorer(img[None])

    def terms(self, subset):
        p_ins = self._out(self._insert(subset)).probs[0].numpy()
        p_del = self._out(self._delete(subset)).probs[0].numpy()
        nz = p_ins[p_ins > 0]
        conf = 1 + (nz * np.log(nz)).sum() / math.log(len(p_ins))
        eff = sum(min(self.dist[i, j] for j in subset if j != i) for i in subset) if len(subset) > 1 else 0.0
        return {"consistency": p_ins[self.target], "collaboration": 1 - p_del[self.target],
                "confidence": conf, "effectiveness": eff}

    def F(self, subset):
        t = self.terms(subset)
        return (self.w.confidence * t["confidence"] + self.w.effectiveness * t["effectiveness"]
                + self.w.consistency * t["consistency"] + self.w.collaboration * t["collaboration"])

    def greedy(self, n):
        order = []
        while len(order) < n:
            rest = [c for c in range(n) if c not in order]
            values = [self.F(order + [c]) for c in rest]
            order.append(rest[int(np.argmax(values))])
        return order

    def bidirectional(self, n, p):
        s, d = [], []
        while len(s) + len(d) < n:
            rest = [c for c in range(n) if c not in s and c not in d]
            values = [self.F(s + [c]) for c in rest]
            best = int(np.argmax(values))
            s.append(rest[best])
            others = [(v, c) for i, (v, c) in enumerate(zip(values, rest)) if i != best]
            if len(others) > p:
                pool = [c for _, c in sorted(others, key=lambda vc: vc[0])[:p]]
                d.append(pool[int(np.argmin([self.F(d + [c]) for c in pool]))])
        return s + d[::-1]


WEIGHTS = [Weights(0.0, 0.05, 1.0, 1.0), Weights(1.0, 1.0, 1.0, 1.0), Weights(0.01, 0.0, 20.0, 5.0)]


@pytest.mark.parametrize("weights", WEIGHTS, ids=["clip", "ones", "classifier"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_matches_brute_force_step_by_step(weights, seed):
    h, w, n = 4, 5, 6
    labels = random_labels(h, w, n, seed=seed)
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
    scorer = TinyScorer(h * w, seed=seed)
    oracle = Oracle(scorer, image, labels, target=1, weights=weights)
    trace = explain(scorer, image, labels, 1, weights, search="greedy", batch_size=5)
    assert trace.order == oracle.greedy(n)
    for i in range(n):
        prefix = trace.order[: i + 1]
        assert trace.smdl_score[i] == pytest.approx(oracle.F(prefix), abs=1e-9)
        t = oracle.terms(prefix)
        assert trace.consistency[i] == pytest.approx(t["consistency"], abs=1e-9)
        assert trace.collaboration[i] == pytest.approx(t["collaboration"], abs=1e-9)
        assert trace.confidence[i] == pytest.approx(t["confidence"], abs=1e-9)


@pytest.mark.parametrize("weights", WEIGHTS, ids=["clip", "ones", "classifier"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bidirectional_matches_its_definition_and_reports_true_prefix_scores(weights, seed):
    h, w, n, p = 4, 5, 7, 2
    labels = random_labels(h, w, n, seed=seed)
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed + 20), dtype=torch.float64)
    scorer = TinyScorer(h * w, seed=seed + 5)
    oracle = Oracle(scorer, image, labels, target=2, weights=weights)
    trace = explain(scorer, image, labels, 2, weights, search="bidirectional", pending_samples=p, batch_size=3)
    assert trace.order == oracle.bidirectional(n, p)
    # The scores of the removed-set part come from complements; they must equal direct evaluation.
    for i in range(n):
        prefix = trace.order[: i + 1]
        t = oracle.terms(prefix)
        assert trace.consistency[i] == pytest.approx(t["consistency"], abs=1e-9)
        assert trace.collaboration[i] == pytest.approx(t["collaboration"], abs=1e-9)
        assert trace.confidence[i] == pytest.approx(t["confidence"], abs=1e-9)
        assert trace.smdl_score[i] == pytest.approx(oracle.F(prefix), abs=1e-9)


def test_additive_model_greedy_orders_by_contribution():
    labels = torch.arange(8).reshape(2, 4)
    contributions = torch.tensor([0.3, -1.0, 2.0, 0.0, 1.5, -0.2, 0.9, 0.1])
    scorer = AdditiveScorer(labels, contributions)
    trace = explain(scorer, torch.ones(3, 2, 4), labels, 1, Weights(0, 0, 1, 0), search="greedy")
    assert trace.order == torch.argsort(contributions, descending=True).tolist()
    # deletion alone picks the same order: removing the biggest contributor first lowers p_1 most
    trace = explain(scorer, torch.ones(3, 2, 4), labels, 1, Weights(0, 0, 0, 1), search="greedy")
    assert trace.order == torch.argsort(contributions, descending=True).tolist()


@pytest.mark.parametrize("side,p,greedy_count,bidirectional_count", [(7, 8, 2499, 1659), (10, 8, 10200, 5968)])
def test_forward_pass_counts_match_spec(side, p, greedy_count, bidirectional_count):
    n = side * side
    labels = torch.arange(n).reshape(side, side)
    image = torch.rand(3, side, side)
    scorer = TinyScorer(n)
    weights = Weights(0.0, 0.05, 1.0, 1.0)  # effectiveness on: N single-region embeddings counted
    greedy = explain(scorer, image, labels, 0, weights, search="greedy", batch_size=256)
    bidir = explain(scorer, image, labels, 0, weights, search="bidirectional", pending_samples=p, batch_size=256)
    assert greedy.forward_passes == greedy_count == n + n * (n + 1)
    assert bidir.forward_passes == bidirectional_count
    no_eff = explain(scorer, image, labels, 0, Weights(0.01, 0, 20, 5), search="bidirectional", pending_samples=p)
    assert no_eff.forward_passes == bidirectional_count - n  # embeddings only when λ_eff ≠ 0


def test_random_order_is_seeded_and_cheap():
    labels = random_labels(5, 5, 9, seed=3)
    image = torch.rand(3, 5, 5)
    scorer = TinyScorer(25)
    a = explain(scorer, image, labels, 0, Weights(0, 0, 1, 1), search="random", seed=4)
    b = explain(scorer, image, labels, 0, Weights(0, 0, 1, 1), search="random", seed=4)
    c = explain(scorer, image, labels, 0, Weights(0, 0, 1, 1), search="random", seed=5)
    assert a.order == b.order and sorted(a.order) == list(range(9)) and a.order != c.order
    assert a.forward_passes == 2 * 9
    assert a.consistency[-1] == pytest.approx(a.org_score)
    assert a.collaboration[-1] == pytest.approx(1 - a.baseline_score)


def test_search_is_batch_size_invariant(tiny_case):
    image, labels, scorer = tiny_case
    w = Weights(1.0, 1.0, 1.0, 1.0)
    runs = [explain(scorer, image, labels, 0, w, search="bidirectional", pending_samples=2, batch_size=b)
            for b in (1, 4, 100)]
    assert runs[0].order == runs[1].order == runs[2].order
    assert np.allclose(runs[0].smdl_score, runs[2].smdl_score, atol=1e-12)


def test_single_region_image():
    labels = torch.zeros(3, 3, dtype=torch.long)
    trace = explain(TinyScorer(9), torch.rand(3, 3, 3), labels, 0, Weights(0, 0.05, 1, 1), search="bidirectional")
    assert trace.order == [0]
    assert trace.consistency[0] == pytest.approx(trace.org_score)
    assert trace.effectiveness[0] == 0.0


def test_unknown_search_name(tiny_case):
    image, labels, scorer = tiny_case
    with pytest.raises(ValueError, match="unknown search 'beam'"):
        explain(scorer, image, labels, 0, Weights(), search="beam")


def test_engine_benchmark_prints_counts(capsys):
    from submodular_attribution import benchmark_engine

    assert benchmark_engine.main(["--device", "cpu", "--regions", "4", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "greedy" in out and " 24 " in out  # N + N(N+1) = 24 forwards for N = 4
