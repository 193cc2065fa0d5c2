"""The amortised search (issue 24, item 2) and the ranking probe (items 2 and 4): recorded greedy
is exact greedy with every gain known; a ranker learnt on modular objectives follows exact greedy
scoring one candidate a step; the simulated staleness reads earlier steps; ranker files, the
command line's --train-ranker and its errors; path IG's completeness."""
import numpy as np
import pytest
import torch

from evals.ranking_probe import _stale_rankings, path_ig
from submodular_attribution import smdl_explanation_shapes as shapes_script
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.ranker_training import record_runs
from submodular_attribution.search import explain
from submodular_attribution.search_methods import SEARCHES
from submodular_attribution.search_ranker import (FEATURES, Geometry, GreedyRecord, Known, Ranker, StepTable, _network,
                                                  features, fit_ranker, step_gains, training_lists)
from submodular_attribution.shapes import write_eval_set
from tests.test_search_surrogate import MODULAR, ModularScorer, modular_case


def modular_image(seed):
    image, labels, _ = modular_case()
    a = 0.8 ** torch.randperm(16, generator=torch.Generator().manual_seed(seed)).double()
    return image, labels, ModularScorer(labels, a)


def test_recorded_greedy_is_exact_greedy_with_every_gain_of_every_step():
    """Known answer: on the modular objective F(S) = 25 Σ_{r∈S} a_r (Σ a = 1) every gain of c is
    25 a_c, N a_c average shares, at every step; its insertion and deletion parts are a_c."""
    image, labels, scorer = modular_image(3)
    (record,), forwards = record_runs(scorer, [(image, labels, 1)], MODULAR)
    greedy = explain(scorer, image, labels, 1, MODULAR, search="greedy")
    assert forwards == greedy.forward_passes == 16 * 17
    assert len(record.steps) == 15  # the last step is forced
    a = scorer.a.numpy()
    for t, table in enumerate(record.steps):
        assert table.chosen.sum() == t and not table.chosen[table.ids].any()
        np.testing.assert_allclose(step_gains(table, record.unit), np.column_stack([16 * a, a, a])[table.ids],
                                   atol=1e-9)
        assert greedy.order[t] == table.ids[np.argmax(table.value)]


def test_a_ranker_learnt_on_modular_images_follows_exact_greedy_one_candidate_a_step(tmp_path):
    """Gains never change on a modular objective, so the last gain is the answer and a ranker
    learnt from three images' greedy runs ranks a fourth image's candidates right: with one
    candidate a step and no saturation refresh it reproduces exact greedy with N + (N − 2) sets
    (2 forwards each) plus the 2 references, against N(N + 1)."""
    train = [modular_image(seed)[:2] + (1,) for seed in (5, 6, 7)]
    scorers = [modular_image(seed)[2] for seed in (5, 6, 7)]
    records = [record_runs(s, [t], MODULAR)[0][0] for s, t in zip(scorers, train)]
    fit_ranker(training_lists(records, np.random.default_rng(0)), seed=0).save(tmp_path / "r.pt")
    image, labels, scorer = modular_image(11)
    options = {"ranker": str(tmp_path / "r.pt"), "ranker_top": 1, "saturation": 0.0}
    trace = explain(scorer, image, labels, 1, MODULAR, search="amortised", options=options)
    greedy = explain(scorer, image, labels, 1, MODULAR, search="greedy")
    assert trace.order == greedy.order
    assert trace.forward_passes == 2 + 2 * (16 + 16 - 2)


def test_training_examples_read_the_last_gain_from_an_earlier_step():
    """A record whose gains change every step (gain of c at step s: 10 s + c): each example's
    last-gain feature is the gain at an earlier step, and its age feature says which one."""
    n = 6
    labels = torch.arange(n).reshape(2, 3)
    steps = []
    for s in range(4):
        chosen = np.zeros(n, bool)
        chosen[:s] = True
        ids = np.arange(s, n)
        steps.append(StepTable(chosen, (0.0, 0.0, 0.0), ids, 10.0 * s + ids, np.zeros(len(ids)), np.zeros(len(ids))))
    record = GreedyRecord(Geometry.of(labels, n), 1.0, steps)
    lists = training_lists([record], np.random.default_rng(0), repeats=20)
    assert len(lists) == 3 * 20
    ages = set()
    for k, (rows, target) in enumerate(lists):
        t = 1 + k // 20
        ids = steps[t].ids
        np.testing.assert_allclose(target, 10.0 * t + ids)
        age = np.rint(rows[:, FEATURES.index("steps since scored / N")] * n).astype(int)
        assert ((age >= 1) & (age <= t)).all()
        np.testing.assert_allclose(rows[:, FEATURES.index("last gain")], 10.0 * (t - age) + ids)
        ages.update(age.tolist())
    assert ages == {1, 2, 3}


def test_features_of_a_known_layout():
    """Two columns of three regions: area × N, distance from the centre, the boundary share in S."""
    labels = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]])
    geometry = Geometry.of(labels, 2)
    np.testing.assert_allclose(geometry.area, [1.0, 1.0])
    np.testing.assert_allclose(geometry.touch, [[0, 1], [1, 0]])
    known = Known.empty(2)
    known.record(0, np.array([0, 1]), np.array([[2.0, 0.1, 0.2], [1.0, 0.3, 0.4]]))
    rows = features(geometry, known, np.array([1]), np.array([True, False]), 1, (0.5, 0.25))
    named = dict(zip(FEATURES, rows[0].tolist()))
    assert named["last gain"] == 1.0 and named["boundary share in S"] == 1.0
    assert named["steps since scored / N"] == 0.5 and named["progress |S|/N"] == 0.5
    assert named["p(insert S)"] == 0.5 and named["p(delete S)"] == 0.25
    assert named["leave-one-out drop"] == pytest.approx(0.4)


def test_ranker_files_round_trip_and_bad_files_are_one_line_errors(tmp_path):
    torch.manual_seed(0)
    ranker = Ranker(_network(), np.zeros(len(FEATURES), np.float32), np.ones(len(FEATURES), np.float32), {"x": 1})
    ranker.save(tmp_path / "r.pt")
    rows = np.random.default_rng(0).random((5, len(FEATURES))).astype(np.float32)
    np.testing.assert_allclose(Ranker.load(tmp_path / "r.pt").score(rows), ranker.score(rows))
    assert Ranker.load(tmp_path / "r.pt").meta == {"x": 1}
    (tmp_path / "bad.pt").write_text("not a ranker")
    with pytest.raises(ValueError, match="bad.pt is not a ranker"):
        Ranker.load(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="missing.pt not found"):
        Ranker.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="needs a ranker file"):
        SEARCHES["amortised"].check(SEARCHES["amortised"].options({}))


def test_the_command_line_trains_a_ranker_and_runs_the_search_with_it(tmp_path, trained_shapes, capsys):
    eval_list = write_eval_set(tmp_path / "shapes", n=3)
    common = ["--eval-list", str(eval_list), "--checkpoint", str(trained_shapes[0]), "--device", "cpu",
              "--region-size", "40", "--save-dir", str(tmp_path / "out")]
    assert shapes_script.main([*common, "--search", "amortised"]) != 0
    assert "error: the amortised search needs a ranker file" in capsys.readouterr().err
    assert shapes_script.main([*common, "--train-ranker", str(tmp_path / "r.pt"), "--ranker-images", "2"]) == 0
    meta = Ranker.load(tmp_path / "r.pt").meta
    assert meta["images"] == 2 and meta["forwards"] > 0
    assert shapes_script.main([*common, "--search", "amortised", "--ranker", str(tmp_path / "r.pt")]) == 0
    (run_dir,) = (tmp_path / "out").iterdir()
    assert run_dir.name.endswith("-amortised-r-2-1.0-0") and len(list(run_dir.glob("json/*/*.json"))) == 3


class _Linear(torch.nn.Module):
    num_classes = 2

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3 * 4 * 4, 2)
        torch.nn.init.normal_(self.layer.weight, std=0.3, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return self.layer(x.flatten(1))


def test_path_ig_is_complete():
    """Integrated gradients add up to the change of the objective from the set to all regions
    (midpoint rule, many steps)."""
    scorer = ClassifierScorer(_Linear(), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    labels = torch.arange(16).reshape(4, 4) // 2
    image = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1))
    chosen = np.zeros(8, bool)
    chosen[[1, 4]] = True

    def objective(kept):
        mask = torch.as_tensor(kept, dtype=torch.float32)[labels]
        x = torch.stack([image * mask, image * (1 - mask)])
        p = torch.softmax(scorer.net((x - scorer.mean) / scorer.std), 1)[:, 1]
        return float(20 * p[0].detach() + 5 * (1 - p[1].detach()))

    attributions = path_ig(scorer, image, labels, chosen, 1, steps=400)
    assert np.abs(attributions[chosen]).max() == 0  # already in the set: not on the path
    assert attributions.sum() == pytest.approx(objective(np.ones(8)) - objective(chosen), rel=1e-3)


def test_the_probe_finds_exact_greedy_by_stale_gains_on_a_modular_objective(random_ranker_file):
    """Gains never change, so the stale gains (and the first gains) always propose greedy's pick."""
    image, labels, scorer = modular_image(3)
    (record,), _ = record_runs(scorer, [(image, labels, 1)], MODULAR)
    results = _stale_rankings(record, Ranker.load(random_ranker_file), [1, 2])
    for name in ("first gains", "stale gains"):
        for k in (1, 2):
            hits, regrets = results[(name, k)]
            assert all(hits) and max(regrets) == 0 and len(hits) == 14
