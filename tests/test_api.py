"""The Python API (``smdl.explain``): every input form, the prediction as default target, the
command line engine as the oracle, the files it saves read back by the evaluation, figures,
the batched variant, and clear errors for bad arguments."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import submodular_attribution as smdl
from evals.auc import summarize_run
from submodular_attribution.common.curves import deletion_curve, image_aucs, insertion_curve
from submodular_attribution.common.images import image_tensor, load_image_rgb
from submodular_attribution.common.results import LoadedResult, load_result, rank_map_saliency
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.objective import Weights
from submodular_attribution.records import build_record
from submodular_attribution.regions import DivisionConfig, RegionDivider
from submodular_attribution.search import explain as engine_explain
from submodular_attribution.shapes import CLASS_NAMES, MEAN, STD, load_or_train_default, render_sample

ROOT = Path(__file__).resolve().parents[1]
K = 16  # regions: small and fast


@pytest.fixture(scope="module")
def shapes_net(trained_shapes):
    net, _ = load_or_train_default(trained_shapes[0], verbose=False)
    return net


@pytest.fixture(scope="module")
def shapes_image():
    """A 64×64 red star (class 1) on a photograph, H×W×3 uint8."""
    return render_sample(np.random.default_rng(3), 1, size=64)[0]


@pytest.fixture(scope="module")
def resnet():
    """A randomly initialised torchvision ResNet-18 with 3 classes, in eval mode."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=3).eval()


@pytest.fixture(scope="module")
def small_image():
    return (np.random.default_rng(5).random((32, 32, 3)) * 255).astype(np.uint8)


def same_result(a: smdl.Explanation, b: smdl.Explanation) -> None:
    assert a.order == b.order
    assert a.target == b.target
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.image, b.image)
    for curve in ("insertion_curve", "deletion_curve"):
        for x, y in zip(getattr(a, curve), getattr(b, curve)):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    assert a.insertion_auc == pytest.approx(b.insertion_auc, abs=1e-6)
    assert a.deletion_auc == pytest.approx(b.deletion_auc, abs=1e-6)


def test_every_image_form_gives_the_same_explanation(shapes_net, shapes_image, tmp_path):
    path = tmp_path / "star.png"
    Image.fromarray(shapes_image).save(path)
    before = shapes_image.copy()
    kwargs = dict(target=1, mean=MEAN, std=STD, num_regions=K, device="cpu")
    by_path = smdl.explain(shapes_net, path, **kwargs)
    by_str = smdl.explain(shapes_net, str(path), **kwargs)
    by_pil = smdl.explain(shapes_net, Image.open(path), **kwargs)
    by_array = smdl.explain(shapes_net, shapes_image, **kwargs)
    tensor = torch.from_numpy(shapes_image).permute(2, 0, 1).float() / 255
    by_tensor = smdl.explain(shapes_net, tensor.clone(), **kwargs)
    for other in (by_str, by_pil, by_array, by_tensor):
        same_result(by_path, other)
        assert other.forward_passes == by_path.forward_passes
    np.testing.assert_array_equal(shapes_image, before)  # inputs are not modified
    assert by_path.name == "star" and by_path.record["image"] == str(path)
    # the fields agree with each other
    assert sorted(by_path.order) == list(range(by_path.num_regions)) and 2 <= by_path.num_regions <= 2 * K
    assert by_path.image.dtype == np.uint8 and by_path.image.shape == (64, 64, 3)
    assert by_path.labels.shape == (64, 64) and by_path.labels.max() == by_path.num_regions - 1
    first = by_path.labels == by_path.order[0]
    assert np.all(by_path.saliency[first] == 1.0)
    np.testing.assert_array_equal(by_path.saliency, rank_map_saliency(by_path.ranks, by_path.num_regions))
    x, y = by_path.insertion_curve
    assert x[0] == 0 and x[-1] == pytest.approx(1.0) and len(x) == by_path.num_regions + 1
    assert y[0] == pytest.approx(by_path.trace.baseline_score) and y[-1] == pytest.approx(by_path.trace.org_score)
    assert by_path.deletion_curve[1][0] == pytest.approx(by_path.trace.org_score)


def test_input_size_resizes_as_the_command_line_reads(shapes_net, shapes_image, tmp_path):
    path = tmp_path / "star.png"
    Image.fromarray(shapes_image).save(path)
    exp = smdl.explain(shapes_net, path, mean=MEAN, std=STD, num_regions=K, input_size=(48, 40), device="cpu")
    np.testing.assert_array_equal(exp.image, load_image_rgb(path, (48, 40)))
    same_result(exp, smdl.explain(shapes_net, shapes_image, mean=MEAN, std=STD, num_regions=K,
                                  input_size=(48, 40), device="cpu"))
    assert smdl.explain(shapes_net, path, mean=MEAN, std=STD, num_regions=K, input_size=40,
                        device="cpu").image.shape == (40, 40, 3)


def test_target_none_explains_the_prediction(shapes_net, shapes_image):
    x = (image_tensor(shapes_image)[None] - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        predicted = int(shapes_net(x).argmax())
    exp = smdl.explain(shapes_net, shapes_image, mean=MEAN, std=STD, num_regions=K, class_names=CLASS_NAMES)
    assert exp.target == predicted and exp.target_name == CLASS_NAMES[predicted]
    same_result(exp, smdl.explain(shapes_net, shapes_image, target=predicted, mean=MEAN, std=STD, num_regions=K))
    other = (predicted + 1) % len(CLASS_NAMES)
    assert smdl.explain(shapes_net, shapes_image, other, mean=MEAN, std=STD, num_regions=K).target == other


def engine_oracle(scorer, image: np.ndarray, target, search="fast", weights=Weights(0.01, 0, 20, 5), **options):
    """What the command line does for one image: divide, search, build the record."""
    divider = RegionDivider(DivisionConfig("slico", num_regions=K), image.shape[:2])
    labels = divider(image, None)
    trace = engine_explain(scorer, image_tensor(image), torch.from_numpy(labels), target, weights, search=search,
                           seed=0, options=options)
    record, ranks = build_record(trace, labels, weights, image="x", class_name=str(trace.target),
                                 division=divider.describe(), search=search, options=options)
    return trace, labels, LoadedResult(Path("x.json"), record, np.asarray(record["region_areas"]), ranks)


@pytest.mark.parametrize("search, options", [("fast", {}), ("bidirectional", {"pending_samples": 3})])
def test_equals_the_command_line_engine_on_the_shapes_cnn(shapes_net, shapes_image, search, options):
    scorer = ClassifierScorer(shapes_net, MEAN, STD, num_classes=len(CLASS_NAMES))
    trace, labels, result = engine_oracle(scorer, shapes_image, 1, search, **options)
    exp = smdl.explain(shapes_net, shapes_image, 1, mean=MEAN, std=STD, num_regions=K, search=search, **options)
    assert exp.order == trace.order and exp.forward_passes == trace.forward_passes
    np.testing.assert_array_equal(exp.labels, labels)
    np.testing.assert_allclose(exp.trace.consistency, trace.consistency, atol=1e-9)
    np.testing.assert_allclose(exp.trace.smdl_score, trace.smdl_score, atol=1e-9)
    for mine, theirs in ((exp.insertion_curve, insertion_curve(result)), (exp.deletion_curve, deletion_curve(result))):
        np.testing.assert_allclose(mine[0], theirs[0], atol=1e-12)
        np.testing.assert_allclose(mine[1], theirs[1], atol=1e-9)
    assert (exp.insertion_auc, exp.deletion_auc) == pytest.approx(image_aucs(result), abs=1e-9)
    assert exp.record["search"] == {"name": search, **options}
    assert exp.record["division"]["algorithm"] == "slico"


def test_a_torchvision_classifier_and_the_effectiveness_term(resnet, small_image):
    """A plain nn.Module without num_classes: classes found by a probe; with λ_eff ≠ 0 the input
    of its final linear layer is the embedding, and the hook is gone afterwards."""
    weights = Weights(0.01, 0.05, 20, 5)
    scorer = ClassifierScorer(resnet, num_classes=3, embedding_layer=resnet.fc)
    trace, labels, result = engine_oracle(scorer, small_image, None, weights=weights)
    resnet.fc._forward_pre_hooks.clear()  # the oracle's scorer hooked it
    resnet.train()
    exp = smdl.explain(resnet, small_image, weights={"effectiveness": 0.05}, num_regions=K)
    assert resnet.training and not resnet.fc._forward_pre_hooks  # mode restored, no hook left behind
    resnet.eval()
    assert exp.order == trace.order and exp.target == trace.target
    assert exp.trace.effectiveness is not None
    np.testing.assert_allclose(exp.trace.smdl_score, trace.smdl_score, atol=1e-9)
    np.testing.assert_allclose(exp.insertion_curve[1], insertion_curve(result)[1], atol=1e-9)
    assert exp.record["lambda2"] == 0.05 and exp.record["lambda3"] == 20.0


def test_a_scorer_is_used_as_is(shapes_net, shapes_image):
    from submodular_attribution.shapes import build_scorer

    by_module = smdl.explain(shapes_net, shapes_image, 2, mean=MEAN, std=STD, num_regions=K)
    same_result(by_module, smdl.explain(build_scorer(shapes_net), shapes_image, 2, num_regions=K))


def test_save_is_read_back_by_the_evaluation(shapes_net, shapes_image, tmp_path):
    exp = smdl.explain(shapes_net, shapes_image, mean=MEAN, std=STD, num_regions=K, class_names=CLASS_NAMES)
    json_path = exp.save(tmp_path / "run", class_name="red_star", stem="star")
    assert json_path == tmp_path / "run" / "json" / "red_star" / "star.json"
    assert (tmp_path / "run" / "npy" / "red_star" / "star.npy").is_file()
    exp.save(tmp_path / "run")  # defaults: class folder = the target index, stem = the name
    assert (tmp_path / "run" / "json" / str(exp.target) / "image.json").is_file()
    summary = summarize_run(tmp_path / "run")
    assert summary["num_images"] == 2 and summary["skipped"] == 0
    for row in summary["per_image"]:
        assert row["insertion_auc"] == pytest.approx(exp.insertion_auc, abs=1e-12)
        assert row["deletion_auc"] == pytest.approx(exp.deletion_auc, abs=1e-12)
    loaded = load_result(json_path)
    np.testing.assert_array_equal(loaded.npy, exp.ranks)
    assert loaded.record["region_order"] == exp.order and loaded.record["class"] == "red_star"
    out = subprocess.run([sys.executable, "-m", "evals.eval_AUC_faithfulness", "--explanation-dir",
                          str(tmp_path / "run"), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed["insertion_auc"] == pytest.approx(exp.insertion_auc, abs=1e-12)
    assert printed["deletion_auc"] == pytest.approx(exp.deletion_auc, abs=1e-12)


def test_saved_explanation_draws_with_visualization(shapes_net, shapes_image, tmp_path):
    """explain → save → python -m visualization's API: figures and a GIF of the saved folder."""
    from PIL import Image

    from visualization import draw_run

    Image.fromarray(shapes_image).save(tmp_path / "star.png")
    exp = smdl.explain(shapes_net, tmp_path / "star.png", mean=MEAN, std=STD, num_regions=K)
    exp.save(tmp_path / "run", class_name="red_star")
    written = draw_run(tmp_path / "run", tmp_path / "figs", gif=True, datasets=tmp_path, verbose=False)
    gifs = [p for p in written if p.suffix == ".gif"]
    pngs = [p for p in written if p.suffix == ".png"]
    assert len(gifs) == 1 and len(pngs) == 2 and all(p.is_file() for p in written)  # figure + mean curves
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames == min(exp.num_regions, 60)


def test_plot_writes_a_png_and_displays_inline(shapes_net, shapes_image, tmp_path):
    exp = smdl.explain(shapes_net, shapes_image, mean=MEAN, std=STD, num_regions=K)
    path = exp.plot(tmp_path / "figs" / "star.png", title="a star", top_k=2)
    assert path == tmp_path / "figs" / "star.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = exp.plot()
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.save(tmp_path / "again.png").read_bytes() == figure.png


def test_explain_many_equals_explain_image_by_image(shapes_net, shapes_image):
    images = [shapes_image, render_sample(np.random.default_rng(4), 4, size=64)[0], shapes_image[:48, :56].copy()]
    targets = [None, 4, 0]
    kwargs = dict(mean=MEAN, std=STD, num_regions=K, search="bidirectional", pending_samples=3)
    many = smdl.explain_many(shapes_net, (image for image in images), iter(targets), images_at_once=2, **kwargs)
    assert [e.name for e in many] == ["image_0", "image_1", "image_2"]
    for exp, image, target in zip(many, images, targets):
        one = smdl.explain(shapes_net, image, target, **kwargs)
        same_result(exp, one)
        assert exp.forward_passes == one.forward_passes
    assert smdl.explain_many(shapes_net, images[:1], **kwargs)[0].target == many[0].target  # targets=None


def test_a_label_map_as_the_division(resnet, small_image):
    labels = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 16, axis=0), 16, axis=1)  # 2×2 cells of 16 px
    exp = smdl.explain(resnet, small_image, 0, division=labels, search="greedy")
    np.testing.assert_array_equal(exp.labels, labels)
    assert exp.record["division"] == {"algorithm": "label_map"} and sorted(exp.order) == [0, 1, 2, 3]
    grid = smdl.explain(resnet, small_image, 0, division="grid", region_size=16, search="greedy")
    np.testing.assert_array_equal(grid.labels, labels)
    assert grid.order == exp.order and grid.record["division"]["algorithm"] == "grid"


def test_the_package_exports_lazily():
    code = ("import sys, submodular_attribution, submodular_attribution.common.results, submodular_attribution.regions\n"
            "loaded = [m for m in ('submodular_attribution.apps.explain', 'matplotlib') if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "import submodular_attribution as smdl\n"
            "assert smdl.explain.__module__ == 'submodular_attribution.apps.explain'\n"
            "assert smdl.IMAGENET_MEAN == (0.485, 0.456, 0.406)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    from submodular_attribution.apps import explain as api

    assert smdl.explain is api.explain and smdl.explain_many is api.explain_many and smdl.Explanation is api.Explanation
    assert {"explain", "explain_many", "Explanation", "IMAGENET_STD"} <= set(dir(smdl))
    with pytest.raises(AttributeError):
        smdl.no_such_name  # noqa: B018


BAD = [
    (dict(image=[1, 2, 3]), TypeError, "image must be a file path"),
    (dict(image=np.zeros((8, 8, 3), np.float32)), ValueError, "uint8"),
    (dict(image=np.zeros((8, 8), np.uint8)), ValueError, "H×W×3"),
    (dict(image=torch.rand(1, 3, 8, 8)), ValueError, "explain_many"),
    (dict(image=torch.rand(3, 8, 8) * 255), ValueError, r"\[0, 1\]"),
    (dict(image="no/such/file.png"), ValueError, "image not found"),
    (dict(target=7), ValueError, "target=7"),
    (dict(target="cat"), TypeError, "target must be a class index"),
    (dict(weights={"consistence": 1}), ValueError, "weights: unknown"),
    (dict(weights=(1, 2, 3, 4)), TypeError, "weights must be"),
    (dict(search="bogus"), ValueError, "search must be one of"),
    (dict(num_regoins=4), TypeError, "unexpected keyword argument 'num_regoins'"),
    (dict(pending_samples=4), ValueError, "does not apply to search='fast'"),
    (dict(search="lazy", lazy_top=0), ValueError, "lazy_top must be ≥ 1"),
    (dict(search="lazy", lazy_top=2.0), TypeError, "lazy_top must be an integer"),
    (dict(search="staged", saturation="high"), TypeError, "saturation must be a number"),
    (dict(num_regions=1), ValueError, "num_regions must be ≥ 2"),
    (dict(num_regions=8, region_size=8), ValueError, "not both"),
    (dict(region_size=64), ValueError, "at least 2 are needed"),
    (dict(division="sam"), ValueError, "division must be one of"),
    (dict(division=np.zeros((32, 32), np.int64)), ValueError, "at least 2"),
    (dict(input_size=(0, 4)), ValueError, "input_size"),
    (dict(mean=(0.5, 0.5)), ValueError, "mean must be 3"),
    (dict(std=(1, 0, 1)), ValueError, "std must be 3 positive"),
    (dict(precision="fp8"), ValueError, "precision must be"),
    (dict(batch_size=0), ValueError, "batch_size must be ≥ 1"),
    (dict(device="tpu:banana"), ValueError, "device must be"),
    (dict(class_names=["a", "b"]), ValueError, "class_names has 2 names"),
    (dict(model="resnet"), TypeError, "model must be a torch.nn.Module"),
    (dict(model=torch.nn.Identity()), TypeError, "logits N×C"),
]


@pytest.mark.parametrize("change, error, message", BAD, ids=[str(list(c)[0]) + str(i) for i, (c, _, _) in enumerate(BAD)])
def test_bad_arguments_are_clear_errors(resnet, small_image, change, error, message):
    kwargs = dict(model=resnet, image=small_image, search="fast")
    kwargs.update(change)
    with pytest.raises(error, match=message):
        smdl.explain(kwargs.pop("model"), kwargs.pop("image"), **kwargs)


def test_bad_arguments_of_explain_many_and_scorers(resnet, small_image, shapes_net):
    with pytest.raises(ValueError, match="2 images but 1 targets"):
        smdl.explain_many(resnet, [small_image, small_image], [0], num_regions=4)
    with pytest.raises(ValueError, match="images has more entries than targets"):
        smdl.explain_many(resnet, iter([small_image, small_image]), iter([0]), num_regions=4, images_at_once=2)
    with pytest.raises(ValueError, match="targets has more entries"):
        smdl.explain_many(resnet, iter([small_image]), iter([0, 1]), num_regions=4)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        smdl.explain_many(resnet, [small_image, "missing.png"], num_regions=4)
    with pytest.raises(TypeError, match="images must be an iterable"):
        smdl.explain_many(resnet, small_image, num_regions=4)
    from submodular_attribution.shapes import build_scorer

    with pytest.raises(ValueError, match="a scorer normalises images itself"):
        smdl.explain(build_scorer(shapes_net), small_image, mean=MEAN, num_regions=4)
