"""The registered searches: reductions to exact greedy (or LIMA) at their limits, determinism per
seed, forward-pass counts, honest curves, and several images advancing together."""
import numpy as np
import pytest
import torch

from submodular_attribution.engine import SetEvaluator
from submodular_attribution.objective import Weights
from submodular_attribution.search import explain, explain_many, explain_stream, prefix_sets
from submodular_attribution.models import ModelOutput
from submodular_attribution.search_methods import SEARCHES, region_groups
from tests.conftest import TinyScorer, random_labels

WEIGHTS = [Weights(0.0, 0.05, 1.0, 1.0), Weights(0.01, 0.0, 20.0, 5.0)]


def case(n=9, seed=0, h=4, w=5):
    labels = random_labels(h, w, n, seed=seed)
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed + 30), dtype=torch.float64)
    return image, labels, TinyScorer(h * w, seed=seed + 7)


def same_trace(a, b):
    assert a.order == b.order
    for key in ("consistency", "collaboration", "confidence", "smdl_score"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), atol=1e-12, err_msg=key)


@pytest.mark.parametrize("weights", WEIGHTS, ids=["clip", "classifier"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("search,options", [
    ("lazy", {"refresh_every": 1, "lazy_top": 2}),  # refreshed every step
    ("lazy", {"refresh_every": 0, "lazy_top": 9}),  # the top covers every candidate
    ("stochastic", {"subset_size": 9}),  # the subset is every candidate
    ("coarse-to-fine", {"groups": 9}),  # one region per group
    ("coarse-to-fine", {"groups": 1}),  # one group
    ("staged", {"refresh_every": 1, "saturation": 9.0}),  # threshold 9/N = 1: lazy at once, but refreshed every step
    ("staged", {"lazy_top": 9, "refresh_every": 0}),  # the top covers every candidate
], ids=["lazy-u1", "lazy-s-all", "stochastic-all", "c2f-singletons", "c2f-one-group", "staged-u1", "staged-s-all"])
def test_searches_reduce_to_exact_greedy_at_their_limits(search, options, weights, seed):
    image, labels, scorer = case(seed=seed)
    greedy = explain(scorer, image, labels, 1, weights, search="greedy", batch_size=4)
    same_trace(explain(scorer, image, labels, 1, weights, search=search, options=options, batch_size=4), greedy)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("p", [1, 2, 4])
def test_lazy_bidirectional_with_a_full_top_is_lima(seed, p):
    image, labels, scorer = case(seed=seed)
    w = WEIGHTS[0]
    lima = explain(scorer, image, labels, 0, w, search="bidirectional", options={"pending_samples": p})
    lazy = explain(scorer, image, labels, 0, w, search="lazy-bidirectional", options={"pending_samples": p, "lazy_top": 9})
    same_trace(lazy, lima)


@pytest.mark.parametrize("search", sorted(SEARCHES))
@pytest.mark.parametrize("weights", WEIGHTS, ids=["clip", "classifier"])
def test_curves_are_model_evaluations_of_the_final_prefixes(search, weights, random_ranker_file):
    image, labels, scorer = case(n=11, seed=3)
    options = {"ranker": str(random_ranker_file)} if search == "amortised" else None
    trace = explain(scorer, image, labels, 2, weights, search=search, seed=5, batch_size=6, options=options)
    assert sorted(trace.order) == list(range(11))
    ev = SetEvaluator(scorer, image, labels, target=2)
    scores = ev.score_sets(prefix_sets(trace.order, 11, ev.device))
    np.testing.assert_allclose(trace.consistency, scores.insert_target.numpy(), atol=1e-12)
    np.testing.assert_allclose(trace.collaboration, 1 - scores.delete_target.numpy(), atol=1e-12)
    np.testing.assert_allclose(trace.confidence, scores.insert_confidence.numpy(), atol=1e-12)


@pytest.mark.parametrize("search", ["stochastic", "random"])
def test_randomised_searches_are_deterministic_per_seed(search):
    image, labels, scorer = case(n=12, seed=4)
    w = WEIGHTS[1]
    options = {"subset_size": 3}
    a, b, c = (explain(scorer, image, labels, 0, w, search=search, options=options, seed=s) for s in (7, 7, 8))
    same_trace(a, b)
    assert a.order != c.order


def _grid(n_side):
    n = n_side * n_side
    labels = torch.arange(n).reshape(n_side, n_side)
    image = torch.rand(3, n_side, n_side, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return image, labels, TinyScorer(n, seed=1)


def lazy_forwards(n, top):
    """Refs 2; the first step scores all N; then k remaining cost 2·min(top, k), the last step none."""
    return 2 + 2 * n + sum(2 * min(top, k) for k in range(2, n))


def stochastic_forwards(n, r):
    return 2 + sum(2 * min(r, k) for k in range(2, n + 1))


@pytest.mark.parametrize("n_side", [3, 5, 7])
def test_forward_counts(n_side):
    image, labels, scorer = _grid(n_side)
    n = n_side * n_side
    w = WEIGHTS[1]
    lazy = explain(scorer, image, labels, 0, w, search="lazy", options={"refresh_every": 0, "lazy_top": 4})
    assert lazy.forward_passes == lazy_forwards(n, 4)
    stochastic = explain(scorer, image, labels, 0, w, search="stochastic", options={"subset_size": 5})
    assert stochastic.forward_passes == stochastic_forwards(n, 5)
    greedy = explain(scorer, image, labels, 0, w, search="greedy")
    assert greedy.forward_passes == n * (n + 1)


def test_fast_meets_its_budget():
    """At N = 49, `fast` costs at most a fifth of exact greedy's forwards."""
    image, labels, scorer = _grid(7)
    w = WEIGHTS[1]
    fast = explain(scorer, image, labels, 0, w, search="fast")
    greedy = explain(scorer, image, labels, 0, w, search="greedy")
    assert fast.forward_passes <= 0.2 * greedy.forward_passes


class LinearProbabilityScorer:
    """Two classes; p_1 = Σ_r a_r · (mean red of region r), with Σ a = 1 on an all-ones image.
    Then p_1(insert(S)) = Σ_{r∈S} a_r and p_1(delete(S)) = Σ_{r∉S} a_r: with λ1 = λ2 = 0 the
    objective is modular, (λ3 + λ4) Σ_{r∈S} a_r, and exact greedy orders regions by a."""

    def __init__(self, labels: torch.Tensor, a: torch.Tensor):
        self.device, self.num_classes = torch.device("cpu"), 2
        self.means = torch.nn.functional.one_hot(labels.flatten(), len(a)).double()
        self.means /= self.means.sum(0, keepdim=True)
        self.a = a.double() / a.sum()

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        p = images[:, 0].reshape(len(images), -1).double() @ self.means @ self.a
        return ModelOutput(probs=torch.stack([1 - p, p], 1))


def test_staged_ends_its_exact_head_when_no_region_raises_insertion_by_the_saturation():
    """Known answer on a modular objective: the regions' own gains a_r never change, so the
    stale-gain steps (top 1, no refresh) still follow exact greedy (decreasing a). With
    saturation 0.6 over N = 12 regions, the head scores every candidate until the step whose
    best candidate adds < 0.05 to p_1, plus one step; each later step scores one."""
    n = 12
    a = torch.tensor([0.30, 0.20, 0.12, 0.04, 0.06, 0.03, 0.08, 0.035, 0.045, 0.025, 0.028, 0.015])  # no ties
    labels = torch.arange(n).reshape(3, 4)
    scorer = LinearProbabilityScorer(labels, a)
    image = torch.ones(3, 3, 4, dtype=torch.float64)
    w = Weights(0.0, 0.0, 20.0, 5.0)
    trace = explain(scorer, image, labels, 1, w, search="staged",
                    options={"saturation": 0.6, "lazy_top": 1, "refresh_every": 0})
    greedy = explain(scorer, image, labels, 1, w, search="greedy")
    assert trace.order == greedy.order == torch.argsort(a, descending=True, stable=True).tolist()
    shares = torch.sort(a / a.sum(), descending=True).values
    last_exact = int((shares < 0.05).nonzero()[0])
    assert last_exact == 5  # shares ≈ .31 .20 .12 .08 .06 .046 …: step 5 is the first whose best gain is < .05
    sets = sum(n - i for i in range(last_exact + 2)) + (n - last_exact - 3)
    assert trace.forward_passes == 2 + 2 * sets
    np.testing.assert_allclose(trace.consistency, torch.cumsum(shares, 0).numpy(), atol=1e-12)


def test_staged_rejects_bad_options():
    image, labels, scorer = case()
    for options in ({"saturation": -0.1}, {"lazy_top": 0}, {"refresh_every": -1}):
        with pytest.raises(ValueError, match="staged search needs"):
            explain(scorer, image, labels, 1, WEIGHTS[0], search="staged", options=options)


def test_option_checks_accept_what_the_searches_accept():
    """Regression: early_top and early_steps default to 0, which the lazy search takes, but their
    option checks (the API's keywords, the CLI's --early-top/--early-steps) asked for ≥ 1."""
    from submodular_attribution.search_methods import OPTIONS

    for name in ("early_top", "early_steps", "refresh_every"):
        OPTIONS[name].check(name, 0)
    with pytest.raises(ValueError, match="early_top must be ≥ 0, got -1"):
        OPTIONS["early_top"].check("early_top", -1)
    with pytest.raises(TypeError, match="lazy_top must be an integer, got 2.0"):
        OPTIONS["lazy_top"].check("lazy_top", 2.0)


def test_region_groups_are_connected_and_cover_every_region():
    labels = torch.arange(36).reshape(6, 6)
    groups = region_groups(labels, 4)
    assert sorted(set(groups.tolist())) == [0, 1, 2, 3]
    grid = groups.reshape(6, 6)
    from scipy import ndimage

    for g in range(4):
        assert ndimage.label(grid == g)[1] == 1  # one connected piece


@pytest.mark.parametrize("search", ["greedy", "fast", "staged", "bidirectional", "stochastic"])
def test_images_advancing_together_give_the_same_results(search):
    """Three images with different region counts, targets and seeds on one scorer, with a batch
    size that splits and mixes their requests: each result equals its image explained alone."""
    cases = [case(n=n, seed=s) for n, s in ((9, 0), (7, 1), (12, 2))]
    scorer = cases[0][2]
    jobs = [(image, labels, target, seed) for (image, labels, _), target, seed in zip(cases, (0, 2, None), (4, 5, 6))]
    together = explain_many(scorer, jobs, WEIGHTS[0], search=search, batch_size=5)
    for (image, labels, target, seed), joint in zip(jobs, together):
        alone = explain(scorer, image, labels, target, WEIGHTS[0], search=search, seed=seed, batch_size=5)
        same_trace(joint, alone)
        assert joint.forward_passes == alone.forward_passes and joint.target == alone.target


@pytest.mark.parametrize("search", ["greedy", "staged"])
def test_a_stream_starts_the_next_image_as_soon_as_one_finishes(search):
    """Two in flight over four images: the small ones pass the large one, which finishes last;
    every result equals its image alone, and no forward holds rows of more than two images (a
    batch of 4 is filled by two images' 2 reference rows each, so no third joins)."""
    cases = [case(n=n, seed=s) for s, n in enumerate((18, 4, 5, 4))]
    scorer = TinyScorer(20, seed=7)
    seen = []  # which images each forward's rows come from (their first pixel tells them apart)
    corner = {round(float(image[0, 0, 0]), 12): k for k, (image, _, _) in enumerate(cases)}

    class Watching:
        device, num_classes = scorer.device, scorer.num_classes

        def __call__(self, images):
            seen.append({corner.get(round(float(v), 12)) for v in images[:, 0, 0, 0]} - {None})
            return scorer(images)

    jobs = ((k, (image, labels, None, k)) for k, (image, labels, _) in enumerate(cases))
    outcomes = list(explain_stream(Watching(), jobs, WEIGHTS[0], search=search, batch_size=4, at_once=2))
    assert [k for k, _ in outcomes] == [1, 2, 3, 0]  # images 1, 2, 3 ran one after another beside image 0
    assert max(len(images) for images in seen) == 2
    for k, trace in outcomes:
        image, labels, _ = cases[k]
        same_trace(trace, explain(scorer, image, labels, None, WEIGHTS[0], search=search, seed=k, batch_size=4))


def test_a_failing_image_in_a_stream_costs_only_itself():
    """A bad target fails at its start, a model error in its forwards fails the image whose rows
    cause it; both come back as (key, exception) and the other images finish as if alone."""
    cases = [case(n=n, seed=s) for s, n in enumerate((6, 7, 5, 8))]
    scorer = TinyScorer(20, seed=3)
    poison = float(cases[2][0][0, 0, 0])

    others = {float(image[0, 0, 0]) for k, (image, _, _) in enumerate(cases) if k != 2}
    shared_failures = []

    class Fragile:
        device, num_classes = scorer.device, scorer.num_classes

        def __call__(self, images):
            start = len(images) == 2 and not images[1].any()  # [image, baseline]: an image's references
            if (images[:, 0, 0, 0] == poison).any() and not start:
                shared_failures.append(any(float(v) in others for v in images[:, 0, 0, 0]))
                raise RuntimeError("simulated device error")
            return scorer(images)

    targets = [0, 9, 1, 2]  # image 1: no class 9 among 4
    jobs = [(k, (image, labels, t, 0)) for k, ((image, labels, _), t) in enumerate(zip(cases, targets))]
    outcomes = dict(explain_stream(Fragile(), jobs, WEIGHTS[1], batch_size=64, at_once=3))
    assert isinstance(outcomes[1], ValueError) and "target class 9" in str(outcomes[1])
    assert isinstance(outcomes[2], RuntimeError) and any(shared_failures)  # it failed a shared batch first
    for k in (0, 3):
        image, labels, _ = cases[k]
        same_trace(outcomes[k], explain(scorer, image, labels, targets[k], WEIGHTS[1]))


def test_seconds_are_each_images_share_of_the_time():
    """Each trace's seconds is its own set-up plus its share of the rounds it was in: all
    positive, the longer search costs more, and together no more than the wall time."""
    import time

    cases = [case(n=n, seed=s) for s, n in enumerate((5, 5, 16))]
    jobs = [(image, labels, 0, 0) for image, labels, _ in cases]
    explain_many(cases[0][2], jobs, WEIGHTS[0], "greedy")  # warm-up
    start = time.perf_counter()
    traces = explain_many(cases[0][2], jobs, WEIGHTS[0], "greedy")
    elapsed = time.perf_counter() - start
    assert all(t.seconds > 0 for t in traces) and sum(t.seconds for t in traces) <= elapsed
    assert traces[2].seconds > max(traces[0].seconds, traces[1].seconds)  # 16 regions: 11 more rounds alone


def test_images_of_different_sizes_advance_together():
    """Each size goes through the model on its own inside a shared round; results as alone."""
    from tests.conftest import ModelOutput

    class MeanScorer:  # works at any image size
        device, num_classes = torch.device("cpu"), 3

        def __call__(self, images):
            feats = torch.stack([images.mean((2, 3)).sum(1), images[:, 0].amax((1, 2)), images[:, 2].mean((1, 2))], 1)
            return ModelOutput(probs=(4 * feats.double()).softmax(-1))

    scorer = MeanScorer()
    jobs = [(torch.rand(3, h, w, generator=torch.Generator().manual_seed(h), dtype=torch.float64),
             random_labels(h, w, n, seed=h), 1, 0) for h, w, n in ((4, 5, 7), (6, 3, 5), (4, 5, 8))]
    together = explain_many(scorer, jobs, WEIGHTS[1], search="greedy", batch_size=7)
    for (image, labels, target, seed), joint in zip(jobs, together):
        same_trace(joint, explain(scorer, image, labels, target, WEIGHTS[1], search="greedy", batch_size=7))
