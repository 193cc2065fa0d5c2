"""Sets composed in the model's input space: the same numbers as composing in pixel space and
letting the scorer normalise, a layout the model reads without conversion, and no wrapper
bypassed."""
import torch
from torch import nn

from submodular_attribution.adapters.edl import EvidentialNetwork, EvidentialScorer
from submodular_attribution.benchmark_engine import counting_scorer
from submodular_attribution.engine import SetEvaluator, SetRequest, forward_rows
from submodular_attribution.models import ClassifierScorer, model_input_space
from submodular_attribution.objective import Weights
from submodular_attribution.search import explain_many
from tests.conftest import TinyScorer, random_labels

MEAN, STD = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)


def _classifier(seed: int = 0) -> ClassifierScorer:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    return ClassifierScorer(net, MEAN, STD, num_classes=5, embedding_layer=net[-1])


class PixelSpace:
    """The same scorer seen only through ``__call__``: the engine composes in pixel space."""

    def __init__(self, scorer) -> None:
        self.scorer, self.device, self.num_classes = scorer, scorer.device, scorer.num_classes

    def __call__(self, images):
        return self.scorer(images)


def test_a_classifier_is_fed_in_its_input_space_and_a_plain_scorer_is_not():
    scorer = _classifier()
    assert model_input_space(scorer) and not model_input_space(PixelSpace(scorer))
    image, labels = torch.rand(3, 12, 10), random_labels(12, 10, 6, seed=0)
    assert SetEvaluator(scorer, image, labels, target=0).model == scorer.score_input
    assert SetEvaluator(PixelSpace(scorer), image, labels, target=0).model is not scorer.score_input


def test_compositions_equal_normalised_pixel_compositions_bit_for_bit_and_are_contiguous():
    scorer = _classifier()
    image, labels = torch.rand(3, 12, 10), random_labels(12, 10, 6, seed=1)
    sets = torch.rand(5, 6, generator=torch.Generator().manual_seed(2)) < 0.5
    for baseline in (0.0, 0.3):
        ev = SetEvaluator(scorer, image, labels, target=0, baseline=baseline)
        inputs = ev.compose_rows(sets, torch.arange(10))
        keep = torch.cat([sets, ~sets])[:, labels][:, None]  # insertions, then deletions
        pixels = torch.where(keep, image[None], torch.tensor(baseline))
        assert inputs.is_contiguous() and torch.equal(inputs, scorer.model_input(pixels))
        references = ev.reference_images()
        assert torch.equal(references, scorer.model_input(torch.stack([image, torch.full_like(image, baseline)])))


def test_searches_give_the_same_results_in_either_space():
    scorer = _classifier(seed=3)
    items = [(torch.rand(3, 16, 16), random_labels(16, 16, 7, seed=s), None, s) for s in range(3)]
    weights = Weights(0.1, 0.05, 1.0, 1.0)
    for search in ("greedy", "staged"):
        fast = explain_many(scorer, items, weights, search=search, batch_size=8)
        slow = explain_many(PixelSpace(scorer), items, weights, search=search, batch_size=8)
        for a, b in zip(fast, slow):
            assert a.order == b.order and a.forward_passes == b.forward_passes
            assert torch.equal(torch.as_tensor(a.smdl_score), torch.as_tensor(b.smdl_score))
            assert torch.equal(torch.as_tensor(a.consistency), torch.as_tensor(b.consistency))
            assert torch.equal(torch.as_tensor(a.collaboration), torch.as_tensor(b.collaboration))


def test_an_attribute_forwarding_wrapper_is_not_bypassed():
    """An evidential head forwards every other attribute to the classifier it wraps; composing in
    the classifier's input space would skip the head, so the engine must call the wrapper."""
    scorer = _classifier()
    head = EvidentialNetwork(nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 5)), 5, scale=1.0, input_size=12)
    wrapped = EvidentialScorer(scorer, head)
    assert not model_input_space(wrapped)
    ev = SetEvaluator(wrapped, torch.rand(3, 12, 12), random_labels(12, 12, 6, seed=4), target=0)
    assert ev.model is wrapped
    out = forward_rows([SetRequest(ev, torch.eye(6, dtype=torch.bool)[:2]).source], 8)[0]
    assert out.evidence_logits is not None and out.evidence_logits.shape == (4, 5)


def test_images_of_two_dtypes_share_a_round_and_score_as_alone():
    """Inputs are composed into one batch per run of equal shape and dtype (a float64 image
    cannot be written into a float32 batch)."""
    scorer = TinyScorer(64, seed=5)
    labels = random_labels(8, 8, 5, seed=6)
    evs = [SetEvaluator(scorer, torch.rand(3, 8, 8, dtype=dtype), labels, target=1) for dtype in
           (torch.float32, torch.float64, torch.float32)]
    sets = torch.eye(5, dtype=torch.bool)[:3]
    together = forward_rows([SetRequest(ev, sets).source for ev in evs], 16)
    for ev, out in zip(evs, together):
        alone = forward_rows([SetRequest(ev, sets).source], 16)[0]
        assert torch.equal(out.probs, alone.probs)
    assert [ev.forward_passes for ev in evs] == [12, 12, 12]
    # 18 rows in batches of 16: runs float32, float64, float32 (4 rows), then its last 2; each alone: 1 call
    assert scorer.calls == 4 + 3


def test_the_counting_scorer_keeps_the_input_space_and_counts_what_goes_through_it():
    scorer = _classifier(seed=7)
    counting = counting_scorer(scorer)
    assert model_input_space(counting) and not model_input_space(counting_scorer(PixelSpace(scorer)))
    traces = explain_many(counting, [(torch.rand(3, 8, 8), random_labels(8, 8, 4, seed=8), 0, 0)],
                          Weights(0.0, 0.0, 1.0, 1.0), search="greedy", batch_size=8)
    # N(N+1) − 2 set forwards + 2 references = 20 for N = 4, in calls of at most 8
    assert counting.images == traces[0].forward_passes == 20
    assert counting.model_seconds > 0 and counting.fill(8) == 20 / (8 * counting.calls)
