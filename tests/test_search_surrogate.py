"""The surrogate-ranked searches (issue 24): known answers on objectives whose gains are known
(modular; one pairwise interaction), the multi-pick rule, exact forward counts, their limit
(exact greedy) and their option checks."""
import numpy as np
import pytest
import torch

from submodular_attribution.models import ModelOutput
from submodular_attribution.objective import Weights
from submodular_attribution.search import explain
from submodular_attribution.search_methods import OPTIONS
from submodular_attribution.search_surrogate import GainModel, _clear_picks, region_adjacency
from tests.conftest import TinyScorer, random_labels

MODULAR = Weights(0.0, 0.0, 20.0, 5.0)  # F = 20 p(insert) + 5 (1 − p(delete))


class ModularScorer:
    """Two classes; p_1 = Σ_r a_r · (mean red of region r), Σ a = 1: on an all-ones image
    p_1(insert(S)) = Σ_{r∈S} a_r and p_1(delete(S)) = 1 − that, so F(S) = 25 Σ_{r∈S} a_r and
    exact greedy orders the regions by decreasing a. Counts the images it sees."""

    def __init__(self, labels: torch.Tensor, a: torch.Tensor):
        self.device, self.num_classes, self.images = torch.device("cpu"), 2, 0
        self.means = torch.nn.functional.one_hot(labels.flatten(), len(a)).double()
        self.means /= self.means.sum(0, keepdim=True)
        self.a = a.double() / a.sum()

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        self.images += len(images)
        p = images[:, 0].reshape(len(images), -1).double() @ self.means @ self.a
        return ModelOutput(probs=torch.stack([1 - p, p], 1))


def modular_case(n_side=4):
    n = n_side * n_side
    labels = torch.arange(n).reshape(n_side, n_side)
    a = 0.8 ** torch.randperm(n, generator=torch.Generator().manual_seed(3)).double()  # distinct gains
    return torch.ones(3, n_side, n_side, dtype=torch.float64), labels, ModularScorer(labels, a)


def test_on_a_modular_objective_it_follows_exact_greedy_scoring_one_candidate_a_step():
    """Known answer: every gain is fixed, so the model fitted on the first (full) step ranks the
    rest exactly; with one full step, a top of 1 and no saturation refresh (saturation 0) each
    later step scores one set: N + (N − 2) sets, 2 forwards each, plus the 2 references; exact greedy N(N + 1)."""
    image, labels, scorer = modular_case()
    n = 16
    trace = explain(scorer, image, labels, 1, MODULAR, search="surrogate",
                    options={"surrogate_top": 1, "exact_steps": 1, "saturation": 0.0})
    greedy = explain(scorer, image, labels, 1, MODULAR, search="greedy")
    assert trace.order == greedy.order == torch.argsort(scorer.a, descending=True, stable=True).tolist()
    assert trace.forward_passes == 2 + 2 * (n + n - 2) == 62
    assert greedy.forward_passes == n * (n + 1)
    np.testing.assert_allclose(trace.smdl_score, greedy.smdl_score, atol=1e-12)


def test_forwards_are_counted_by_the_driver_including_the_tails_extra_prefixes():
    """Every image the model sees is in forward_passes, the multi-pick tail's own prefix sets
    included (counted at the scorer)."""
    image, labels, _ = modular_case()
    for search in ("surrogate", "surrogate-tail"):
        scorer = ModularScorer(labels, modular_case()[2].a * 1.0)
        trace = explain(scorer, image, labels, 1, MODULAR, search=search, options={"tail_margin": 0.0})
        assert trace.forward_passes == scorer.images


def test_the_tail_takes_several_regions_only_when_the_margin_is_clear():
    """Modular objective, saturated at once (saturation N: no region adds 1 to p): with a zero
    margin the tail appends up to 3 regions a step and still follows exact greedy, with fewer
    forwards; with a margin no gap reaches it is the plain surrogate search, forward for forward."""
    image, labels, scorer = modular_case()
    greedy = explain(scorer, image, labels, 1, MODULAR, search="greedy")
    common = {"surrogate_top": 3, "saturation": 16.0}
    plain = explain(scorer, image, labels, 1, MODULAR, search="surrogate", options=common)
    multi = explain(scorer, image, labels, 1, MODULAR, search="surrogate-tail",
                    options={**common, "tail_picks": 3, "tail_margin": 0.0})
    never = explain(scorer, image, labels, 1, MODULAR, search="surrogate-tail",
                    options={**common, "tail_picks": 3, "tail_margin": 1e9})
    assert multi.order == plain.order == never.order == greedy.order
    assert never.forward_passes == plain.forward_passes
    assert multi.forward_passes < plain.forward_passes


def test_clear_picks_known_answers():
    exact, predicted = {1: 5.0, 2: 4.0, 3: 1.0}, {4: 0.5}
    assert _clear_picks(exact, predicted, 3, margin=0.5) == 3  # gaps 1, 3, 0.5: all clear
    assert _clear_picks(exact, predicted, 3, margin=2.0) == 2  # 4 − 1 ≥ 2, 1 − 0.5 < 2
    assert _clear_picks(exact, predicted, 2, margin=0.5) == 2  # at most 2
    assert _clear_picks(exact, predicted, 3, margin=4.0) == 1  # no gap after the 2nd or 3rd is 4
    assert _clear_picks(exact, {4: 4.5}, 3, margin=0.1) == 1  # an unscored candidate ranks 2nd: never take it


def test_the_interaction_term_finds_a_pairwise_interaction_of_adjacent_regions():
    """F(S) = Σ a_r x_r + v·x_i·x_j for adjacent i, j on a 4×4 grid. Fitted on the gains of the
    full first two steps (from ∅, then from {i}), the model's interaction terms for (i, j) add to v,
    and given i it ranks j first although a_j is the smallest; with a prohibitive penalty on the
    interactions (a modular model) it does not."""
    n, i, j, v = 16, 5, 6, 3.0
    labels = torch.arange(n).reshape(4, 4)
    pairs, shared = region_adjacency(labels, n)
    a = np.linspace(2.0, 0.5, n)
    a[j] = 0.1

    def fitted(alpha):
        model = GainModel(n, pairs, shared, alpha)
        empty, first = np.zeros(n, bool), np.eye(n, dtype=bool)[i]
        model.add(0, empty, np.arange(n), a.copy())
        others = np.array([c for c in range(n) if c != i])
        model.add(1, first, others, a[others] + v * (others == j))
        return model, first, others

    model, first, others = fitted(1e-3)
    interaction = model.coef[1 + n + model.pair_column[i, j]] + model.coef[0] * model.touch_share[j, i]
    assert interaction == pytest.approx(v, abs=0.05)  # the pair's own term and the shared touch term
    guess = model.predict(first, others)
    assert others[guess.argmax()] == j
    np.testing.assert_allclose(guess - guess[others == 0], a[others] + v * (others == j) - a[0], atol=0.05)
    modular, first, others = fitted(1e9)
    assert others[modular.predict(first, others).argmax()] != j


def test_region_adjacency_of_a_grid():
    pairs, shared = region_adjacency(torch.tensor([[0, 0, 1], [2, 2, 1]]), 3)
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert shared[0, 2] == 2 and shared[1, 2] == 1 and shared[0, 1] == 1 and shared[1, 0] == 1


@pytest.mark.parametrize("search,options", [("surrogate", {}), ("surrogate-tail", {"tail_picks": 1})])
@pytest.mark.parametrize("weights", [Weights(0.0, 0.05, 1.0, 1.0), Weights(0.01, 0.0, 20.0, 5.0)],
                         ids=["clip", "classifier"])
def test_a_top_as_large_as_the_candidates_is_exact_greedy(search, options, weights):
    """Every step full (a top of N, one pick per step): exact greedy, forward for forward."""
    labels = random_labels(4, 5, 9, seed=2)
    image = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(32), dtype=torch.float64)
    scorer = TinyScorer(20, seed=9)
    greedy = explain(scorer, image, labels, 1, weights, search="greedy")
    trace = explain(scorer, image, labels, 1, weights, search=search, options={"surrogate_top": 9, **options})
    assert trace.order == greedy.order and trace.forward_passes == greedy.forward_passes
    np.testing.assert_allclose(trace.smdl_score, greedy.smdl_score, atol=1e-12)


@pytest.mark.parametrize("options,error,message", [
    ({"surrogate_top": 0}, ValueError, "surrogate_top must be ≥ 1, got 0"),
    ({"surrogate_top": 2.5}, TypeError, "surrogate_top must be an integer"),
    ({"ridge_alpha": -1.0}, ValueError, "ridge_alpha must be ≥ 0"),
    ({"ridge_alpha": float("inf")}, ValueError, "ridge_alpha must be a finite number"),
    ({"tail_picks": 0}, ValueError, "tail_picks must be ≥ 1"),
    ({"tail_margin": "1"}, TypeError, "tail_margin must be a number"),
    ({"exact_steps": 0}, ValueError, "exact_steps must be ≥ 1"),
])
def test_bad_options_name_themselves(options, error, message):
    image, labels, scorer = modular_case(3)
    with pytest.raises(error, match=message):
        explain(scorer, image, labels, 1, MODULAR, search="surrogate-tail", options=options)


def test_option_checks_of_the_new_options():
    """The API's keywords and the CLI's flags check the same bounds as the search."""
    OPTIONS["ridge_alpha"].check("ridge_alpha", 0.0)
    image, labels, scorer = modular_case(3)  # alpha 0 runs (unseen interactions stay 0), as greedy here
    trace = explain(scorer, image, labels, 1, MODULAR, search="surrogate", options={"ridge_alpha": 0.0})
    assert trace.order == torch.argsort(scorer.a, descending=True, stable=True).tolist()
    OPTIONS["tail_margin"].check("tail_margin", 0.0)
    with pytest.raises(ValueError, match="surrogate_top must be ≥ 1, got 0"):
        OPTIONS["surrogate_top"].check("surrogate_top", 0)
    with pytest.raises(TypeError, match="tail_picks must be an integer, got 2.0"):
        OPTIONS["tail_picks"].check("tail_picks", 2.0)
    with pytest.raises(ValueError, match="ridge_alpha must be ≥ 0"):
        OPTIONS["ridge_alpha"].check("ridge_alpha", -0.5)
