"""Each score term on cases computable by hand."""
import math

import pytest
import torch

from submodular_attribution.engine import SetEvaluator
from submodular_attribution.objective import (
    Terms, Weights, angular_distances, edl_confidence, effectiveness, effectiveness_added, entropy_confidence,
    without_diagonal)
from tests.conftest import AdditiveScorer, TinyScorer


def test_entropy_confidence_hand_values():
    probs = torch.tensor([[1.0, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0]], dtype=torch.float64)
    # one-hot: H=0 → 1; uniform: H=log 4 → 0; two-way split: H=log 2 → 1 − 1/2
    assert entropy_confidence(probs).tolist() == pytest.approx([1.0, 0.0, 0.5])


def test_edl_confidence_hand_values():
    # evidence = exp(z·s): [3, 1] → α = [4, 2], u = C/Σα = 2/6, confidence 2/3
    z = torch.tensor([[math.log(3), 0.0]], dtype=torch.float64)
    assert edl_confidence(z).item() == pytest.approx(2 / 3)
    assert edl_confidence(z / 2, scale=2.0).item() == pytest.approx(2 / 3)
    # zero logits: α = 2 everywhere, u = 1/2
    assert edl_confidence(torch.zeros(1, 5)).item() == pytest.approx(0.5)
    # clamp at 10: exp(10)+1 per class, C=2
    big = edl_confidence(torch.tensor([[50.0, 50.0]], dtype=torch.float64)).item()
    assert big == pytest.approx(1 - 2 / (2 * (math.exp(10) + 1)))


def test_angular_distances_and_effectiveness_hand_values():
    # unit vectors at 0°, 90°, 180° (any scale): distances 1/2 between neighbours, 1 opposite
    e = torch.tensor([[1.0, 0], [0, 2.0], [-3.0, 0]])
    d = angular_distances(e)
    assert d.flatten().tolist() == pytest.approx([0, 0.5, 1, 0.5, 0, 0.5, 1, 0.5, 0], abs=1e-7)
    sets = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    # {0,1,2}: each nearest at 1/2 → 1.5; {0,2}: 1 + 1; singleton and empty → 0; {0,1}: 1/2 + 1/2
    assert effectiveness(sets, d).tolist() == pytest.approx([1.5, 2.0, 0.0, 0.0, 1.0], abs=1e-7)
    # chunking does not change the answer
    assert effectiveness(sets, d, chunk_elements=1).tolist() == pytest.approx([1.5, 2.0, 0.0, 0.0, 1.0], abs=1e-7)


def test_weights_positional_order_and_folder_text():
    w = Weights.from_positional(0, 0.05, 1, 1)
    assert (w.confidence, w.effectiveness, w.consistency, w.collaboration) == (0, 0.05, 1, 1)
    assert w.positional() == (0.0, 0.05, 1.0, 1.0)
    assert w.folder_text() == "0.0-0.05-1.0-1.0"


def test_objective_combines_named_weights():
    t = Terms(torch.tensor([0.5]), torch.tensor([0.25]), torch.tensor([0.1]), torch.tensor([2.0]))
    w = Weights(confidence=10, effectiveness=3, consistency=2, collaboration=4)
    assert t.objective(w).item() == pytest.approx(10 * 0.1 + 3 * 2 + 2 * 0.5 + 4 * 0.25)
    no_eff = Terms(t.consistency, t.collaboration, t.confidence, None)
    assert no_eff.objective(w).item() == pytest.approx(1 + 1 + 1)


def test_consistency_and_collaboration_of_composed_images():
    # 1×4 image, regions = pixels; red values 1, 1, 1, 1; class-1 logit = Σ w_r · red_r
    labels = torch.arange(4).reshape(1, 4)
    image = torch.ones(3, 1, 4)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    ev = SetEvaluator(AdditiveScorer(labels, w), image, labels, target=1)
    sets = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=torch.bool)
    s = ev.score_sets(sets)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert s.insert_target.tolist() == pytest.approx([sigmoid(4.0), sigmoid(-2.0)])
    assert s.delete_target.tolist() == pytest.approx([sigmoid(-1.5), sigmoid(4.5)])
    terms = s.terms()
    assert terms.collaboration.tolist() == pytest.approx([1 - sigmoid(-1.5), 1 - sigmoid(4.5)])
    assert ev.org_score == pytest.approx(sigmoid(2.5))
    assert ev.baseline_score == pytest.approx(0.5)
    assert ev.forward_passes == 2 + 4


def test_evaluator_uses_edl_head_when_present(tiny_case):
    image, labels, _ = tiny_case
    scorer = TinyScorer(labels.numel(), with_evidence=True)
    ev = SetEvaluator(scorer, image, labels, target=0)
    sets = torch.ones(1, int(labels.max()) + 1, dtype=torch.bool)
    out = scorer(image[None])
    assert ev.score_sets(sets).insert_confidence.item() == pytest.approx(edl_confidence(out.evidence_logits).item())


def test_evaluator_is_batch_size_invariant_and_does_not_mutate(tiny_case):
    image, labels, scorer = tiny_case
    before = image.clone()
    sets = torch.rand(7, int(labels.max()) + 1, generator=torch.Generator().manual_seed(3)) > 0.5
    a = SetEvaluator(scorer, image, labels, target=2, batch_size=1).score_sets(sets)
    b = SetEvaluator(scorer, image, labels, target=2, batch_size=64).score_sets(sets)
    for name in ("insert_target", "delete_target", "insert_confidence", "delete_confidence"):
        assert torch.allclose(getattr(a, name), getattr(b, name), atol=1e-12)
    assert torch.equal(image, before)


def test_evaluator_rejects_out_of_range_target(tiny_case):
    image, labels, scorer = tiny_case
    with pytest.raises(ValueError, match="target class 9"):
        SetEvaluator(scorer, image, labels, target=9)


def test_classifier_scorer_embeddings_from_a_hooked_layer():
    from torch import nn

    from submodular_attribution.models import ClassifierScorer

    torch.manual_seed(0)
    body, fc = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU()), nn.Linear(5, 3)
    net = nn.Sequential(body, fc)
    x = torch.rand(2, 3, 2, 2)
    out = ClassifierScorer(net, num_classes=3, embedding_layer=fc)(x)
    assert torch.allclose(out.embeddings, body(x)) and torch.allclose(out.probs, net(x).softmax(-1))
    assert ClassifierScorer(net, num_classes=3)(x).embeddings is None


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_effectiveness_of_added_regions_equals_the_general_form_bit_for_bit(n):
    gen = torch.Generator().manual_seed(n)
    distances = angular_distances(torch.randn(n, 16, generator=gen, dtype=torch.float64))
    apart = without_diagonal(distances)
    for size in sorted({0, 1, n // 2, n - 1}):
        chosen = torch.zeros(n, dtype=torch.bool)
        chosen[torch.randperm(n, generator=gen)[:size]] = True
        added = (~chosen).nonzero().flatten()
        sets = chosen.repeat(len(added), 1)
        sets[torch.arange(len(added)), added] = True
        fast = effectiveness_added(chosen, added, apart)
        assert torch.equal(fast, effectiveness(sets, distances)), (n, size)
        if size == 0:  # one region alone has no neighbour: 0
            assert torch.equal(fast, torch.zeros(len(added), dtype=torch.float64))
        if size == 1 and n > 1:  # two regions: each counts the other, 2·D
            (i,) = chosen.nonzero().flatten().tolist()
            assert torch.allclose(fast, 2 * distances[i, added])
