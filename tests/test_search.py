"""Searches against an independent brute-force oracle, and their forward-pass counts."""
import math

import numpy as np
import pytest
import torch

from submodular_attribution.objective import Weights
from submodular_attribution.search import explain
from submodular_attribution.models import ModelOutput
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
        """LIMA's rule as in the original code, decided before each forward step: while more
        than p candidates remain, the forward step is followed by a backward step."""
        s, d, rest = [], [], set(range(n))
        while rest:
            with_backward = len(rest) > p
            candidates = sorted(rest)
            values = [self.F(s + [c]) for c in candidates]
            best = candidates[int(np.argmax(values))]
            s.append(best)
            rest.discard(best)
            if with_backward:
                # proxy: the forward step's values; ties to the lower region id
                others = sorted((v, c) for v, c in zip(values, candidates) if c != best)
                pool = [c for _, c in others[:p]]
                worst = pool[int(np.argmin([self.F(d + [c]) for c in pool]))]
                d.append(worst)
                rest.discard(worst)
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


def _check_bidirectional(n, p, weights, seed, h=4, w=5):
    """The search's order equals the oracle's, and every per-prefix term equals direct evaluation."""
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
        if trace.effectiveness is not None:
            assert trace.effectiveness[i] == pytest.approx(t["effectiveness"], abs=1e-9)
        assert trace.smdl_score[i] == pytest.approx(oracle.F(prefix), abs=1e-9)
    return trace


@pytest.mark.parametrize("weights", WEIGHTS, ids=["clip", "ones", "classifier"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bidirectional_matches_its_definition_and_reports_true_prefix_scores(weights, seed):
    _check_bidirectional(7, 2, weights, seed)


# Odd N, p = 1 (a backward step can empty the remaining set), N = p + 1 and N = p + 2.
EDGE_CASES = [(7, 2), (9, 4), (8, 4), (7, 1), (8, 1), (9, 1), (2, 1), (3, 1), (3, 2), (4, 2), (5, 4), (6, 4)]


@pytest.mark.parametrize("weights", WEIGHTS[:2], ids=["clip", "ones"])
@pytest.mark.parametrize("n,p", EDGE_CASES, ids=[f"N{n}-p{p}" for n, p in EDGE_CASES])
@pytest.mark.parametrize("seed", [3, 4])
def test_bidirectional_edge_cases_match_oracle_prefix_by_prefix(n, p, weights, seed):
    _check_bidirectional(n, p, weights, seed)


class TableScorer:
    """Two classes; p_1 of an image = table[set of regions present] (region r present when its
    pixels are non-zero): any interaction between regions can be written down by hand."""

    def __init__(self, labels, table, default=0.5):
        self.device = torch.device("cpu")
        self.num_classes = 2
        self.labels, self.table, self.default = labels.flatten(), table, default

    def __call__(self, images):
        red = images[:, 0].double().reshape(len(images), -1)
        n = int(self.labels.max()) + 1
        present = [frozenset(r for r in range(n) if bool((row[self.labels == r] > 0).all())) for row in red]
        p1 = torch.tensor([self.table.get(s, self.default) for s in present], dtype=torch.float64)
        return ModelOutput(probs=torch.stack([1 - p1, p1], -1))


def test_step_with_p_plus_one_candidates_left_takes_a_backward_step():
    """Regression: with p + 1 candidates left before a forward step, the original code follows it
    with one more backward step. The old rule (checked after the forward step) took none, so at
    N = p + 1 it degenerated to exact greedy: here [0, 2, 1] instead of [0, 1, 2]."""
    labels = torch.arange(3).reshape(1, 3)
    table = {frozenset({0}): 0.9, frozenset({1}): 0.5, frozenset({2}): 0.1,
             frozenset({0, 1}): 0.2, frozenset({0, 2}): 0.8, frozenset({1, 2}): 0.3, frozenset({0, 1, 2}): 0.7}
    scorer = TableScorer(labels, table, default=0.05)
    image = torch.ones(3, 1, 3, dtype=torch.float64)
    consistency_only = Weights(0, 0, 1, 0)
    # forward: argmax F({c}) = 0; backward (pool = {1, 2}, D = ∅): argmin F({c}) = 2; forced: 1
    trace = explain(scorer, image, labels, 1, consistency_only, search="bidirectional", pending_samples=2)
    assert trace.order == [0, 1, 2]
    assert trace.consistency == pytest.approx([0.9, 0.2, 0.7], abs=1e-12)
    # exact greedy (what the old rule gave at N = p + 1) adds 2 second since F({0, 2}) > F({0, 1})
    greedy = explain(scorer, image, labels, 1, consistency_only, search="greedy")
    assert greedy.order == [0, 2, 1]


def test_additive_model_greedy_orders_by_contribution():
    labels = torch.arange(8).reshape(2, 4)
    contributions = torch.tensor([0.3, -1.0, 2.0, 0.0, 1.5, -0.2, 0.9, 0.1])
    scorer = AdditiveScorer(labels, contributions)
    trace = explain(scorer, torch.ones(3, 2, 4), labels, 1, Weights(0, 0, 1, 0), search="greedy")
    assert trace.order == torch.argsort(contributions, descending=True).tolist()
    # deletion alone picks the same order: removing the biggest contributor first lowers p_1 most
    trace = explain(scorer, torch.ones(3, 2, 4), labels, 1, Weights(0, 0, 0, 1), search="greedy")
    assert trace.order == torch.argsort(contributions, descending=True).tolist()


def bidirectional_forwards(n, p, effectiveness):
    """Forward passes of the bidirectional search: 2 reference images, 2k for a forward step with
    k > 1 candidates (the forced k = 1 step is free), 2p per backward step (free when its only
    candidate is the last region: p = 1, even N). With the effectiveness term, N embedding
    forwards, which are the insertion images of one-region sets: the first forward step's N and
    the first backward step's min(p, N − 1) are not sent again."""
    b = (n - p + 1) // 2 if n > p else 0  # backward steps, at k = N, N − 2, … while k > p
    k0 = n - 2 * b  # candidates left for the forward-only steps (p − 1 or p, or N ≤ p)
    paired = 2 * b * (n - b + 1) + 2 * p * b - (2 if b and k0 == 0 else 0)
    forward_only = k0 * (k0 + 1) - 2 if k0 >= 1 else 0  # Σ 2k for k = k0 … 2
    reused = (n if n > 1 else 0) + (min(p, n - 1) if b and n > 2 else 0)
    return 2 + paired + forward_only + ((n - reused) if effectiveness else 0)


@pytest.mark.parametrize("side,p,greedy_count,bidirectional_count", [(7, 8, 2450, 1602), (10, 8, 10100, 5860)])
def test_forward_pass_counts_match_spec(side, p, greedy_count, bidirectional_count):
    """The spec's counts (the original's: greedy N + N(N+1), 2,499 at N = 49; bidirectional 1,659
    and 5,968) less the insertion images of one-region sets, which the N embedding forwards are."""
    n = side * side
    labels = torch.arange(n).reshape(side, side)
    image = torch.rand(3, side, side)
    scorer = TinyScorer(n)
    weights = Weights(0.0, 0.05, 1.0, 1.0)  # effectiveness on: N single-region embeddings counted
    greedy = explain(scorer, image, labels, 0, weights, search="greedy", batch_size=256)
    bidir = explain(scorer, image, labels, 0, weights, search="bidirectional", pending_samples=p, batch_size=256)
    assert greedy.forward_passes == greedy_count == n + n * (n + 1) - n
    assert bidir.forward_passes == bidirectional_count == bidirectional_forwards(n, p, True)
    assert bidirectional_count == {49: 1659, 100: 5968}[n] - n - p
    no_eff = explain(scorer, image, labels, 0, Weights(0.01, 0, 20, 5), search="bidirectional", pending_samples=p)
    assert no_eff.forward_passes == bidirectional_forwards(n, p, False) == bidirectional_count + p  # no embeddings


COUNT_CASES = [(1, 1), (2, 1), (3, 1), (8, 1), (9, 1), (3, 2), (4, 2), (7, 2), (8, 2), (9, 8), (10, 8), (11, 8), (12, 8)]


@pytest.mark.parametrize("n,p", COUNT_CASES, ids=[f"N{n}-p{p}" for n, p in COUNT_CASES])
def test_bidirectional_forward_pass_formula(n, p):
    labels = torch.arange(n).reshape(1, n)
    image = torch.rand(3, 1, n, generator=torch.Generator().manual_seed(n))
    trace = explain(TinyScorer(n), image, labels, 0, Weights(1, 0, 1, 1), search="bidirectional", pending_samples=p)
    assert trace.forward_passes == bidirectional_forwards(n, p, False)


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
    greedy = next(line.split() for line in out.splitlines() if " greedy " in line and line.split()[3] == "1")
    # N embeddings + N(N+1) − N = 20 forwards for N = 4, in 5 calls of batch 8 (the 2 references,
    # the 4 embeddings, then the steps' 4, 3 and 2 sets, 2 images each, less the first step's 4
    # one-region insertions, which the embeddings are): fill 20 / 40
    assert greedy[4] == "20" and greedy[-2] == "0.50"


def test_engine_benchmark_null_model_prints_the_cost_per_step(capsys):
    from submodular_attribution import benchmark_engine

    assert benchmark_engine.main(["--device", "cpu", "--model", "null", "--regions", "9", "--batch-size", "8",
                                  "--searches", "greedy", "--images-at-once", "1", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("null at 112²") and lines[1].split()[-1] == "ms/step"
    row = next(line.split() for line in lines if " greedy " in line)
    assert row[4] == "90"  # N(N+1) for N = 9: the null model still counts its forwards
    # ms per step = s/image / N (s/image is printed to 0.5 ms)
    assert float(row[-1]) == pytest.approx(1000 * float(row[5]) / 9, abs=0.5 / 9 + 1e-3)


def test_engine_benchmark_takes_any_classifier_architecture(capsys, monkeypatch):
    from submodular_attribution import benchmark_engine

    monkeypatch.setattr(benchmark_engine, "bare_model_rate", lambda *a, **k: 1000.0)  # its timing is not tested here
    assert benchmark_engine.main(["--device", "cpu", "--model", "classifier:resnet18", "--regions", "4",
                                  "--batch-size", "8", "--searches", "greedy", "--images-at-once", "1",
                                  "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("classifier:resnet18 at 224²")  # torchvision's evaluation size
    row = next(line.split() for line in lines if " greedy " in line)
    assert row[4] == "20"  # N(N+1), the embeddings taken from its fc layer (no error: λ2 ≠ 0)


@pytest.mark.parametrize("argv,words", [
    (["--regions", "5"], "--regions: square numbers"),
    (["--repeats", "0"], "--repeats must be ≥ 1"),
    (["--model", "nothing"], "--model nothing: use shapes, null"),
    (["--model", "open_clip:ViT-X"], "open_clip has no model 'ViT-X'"),
    (["--model", "classifier:resnet1"], "unknown classifier 'resnet1'"),
])
def test_engine_benchmark_bad_arguments_are_one_line(argv, words, capsys):
    from submodular_attribution import benchmark_engine

    try:
        status = benchmark_engine.main(["--device", "cpu", *argv])
    except SystemExit as stop:  # argparse's own usage errors
        status = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and words in err[-1] and "Traceback" not in "\n".join(err)


def test_a_failed_forward_call_counts_no_forward_passes():
    """Rows of two images in batches of 3; the model fails on the second batch: nothing is
    counted (the rows will be scored again), and a successful call counts each image's rows."""
    from submodular_attribution.engine import SetEvaluator, SetRequest, forward_rows

    scorer = TinyScorer(20, seed=1)
    evs = [SetEvaluator(scorer, torch.rand(3, 4, 5, dtype=torch.float64), random_labels(4, 5, 6, seed=s), target=0,
                        batch_size=3) for s in range(2)]
    sources = [SetRequest(ev, torch.eye(6, dtype=torch.bool)[:2]).source for ev in evs]  # 4 rows each

    class FailsOnSecondCall:
        device, num_classes, calls = scorer.device, scorer.num_classes, 0

        def __call__(self, images):
            FailsOnSecondCall.calls += 1
            if FailsOnSecondCall.calls == 2:
                raise RuntimeError("simulated")
            return scorer(images)

    for ev in evs:
        ev.model = FailsOnSecondCall()
    with pytest.raises(RuntimeError, match="simulated"):
        forward_rows(sources, 3)
    assert [ev.forward_passes for ev in evs] == [0, 0]
    outputs = forward_rows(sources, 3)  # calls 3, 4 and 5: batches of 3, 3 and 2 rows
    assert [ev.forward_passes for ev in evs] == [4, 4] and [len(o.probs) for o in outputs] == [4, 4]


def test_effectiveness_without_embeddings_is_a_clear_error():
    scorer = TinyScorer(20, seed=2)

    class NoEmbeddings:
        device, num_classes = scorer.device, scorer.num_classes

        def __call__(self, images):
            return ModelOutput(probs=scorer(images).probs)

    image, labels = torch.rand(3, 4, 5, dtype=torch.float64), random_labels(4, 5, 6, seed=0)
    with pytest.raises(ValueError, match="effectiveness term needs a model that returns embeddings"):
        explain(NoEmbeddings(), image, labels, 0, Weights(0.0, 0.05, 1.0, 1.0))
    assert len(explain(NoEmbeddings(), image, labels, 0, Weights(0.0, 0.0, 1.0, 1.0)).order) == 6


@pytest.mark.parametrize("search", ["greedy", "bidirectional", "staged", "fast", "random"])
def test_one_region_insertions_come_from_the_embedding_forwards(search, monkeypatch):
    """The N embedding forwards are insert({i}): reusing them changes no number, only the count."""
    from submodular_attribution import search as search_module

    labels = random_labels(6, 6, 12, seed=2)
    image = torch.rand(3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    weights = Weights(0.0, 0.05, 1.0, 1.0)
    reused = explain(TinyScorer(36, seed=3), image, labels, 0, weights, search=search)
    monkeypatch.setattr(search_module, "Singles", lambda *_: None)  # every row forwarded again
    again = explain(TinyScorer(36, seed=3), image, labels, 0, weights, search=search)
    assert reused.order == again.order
    for name in ("consistency", "collaboration", "confidence", "effectiveness", "smdl_score"):
        np.testing.assert_allclose(getattr(reused, name), getattr(again, name), rtol=0, atol=1e-12, err_msg=name)
    saved = again.forward_passes - reused.forward_passes
    # greedy, staged and fast (12 ≤ 50 units) score all 12 one-region sets first; bidirectional
    # also its first backward pool (8); random only its first prefix, scored at the end
    assert saved == {"greedy": 12, "staged": 12, "fast": 12, "bidirectional": 20, "random": 1}[search]
