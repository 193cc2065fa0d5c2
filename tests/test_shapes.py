"""Tests for the embedded shapes benchmark (data generator, eval-set writer, CNN, checkpoint cache)."""
from __future__ import annotations

import colorsys
import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from submodular_attribution.models import ClassifierScorer, ModelOutput
from submodular_attribution.shapes import (
    CLASS_NAMES,
    DATA_VERSION,
    IMAGE_SIZE,
    NUM_CLASSES,
    ShapesCNN,
    build_scorer,
    load_or_train_default,
    make_split,
    mask_path_for,
    render_sample,
    write_eval_set,
)
from submodular_attribution.shapes import data as shapes_data
from submodular_attribution.shapes import model as shapes_model

_HUE = {"red": 0.0, "green": 120.0, "blue": 230.0}


def _hue_distance(a: np.ndarray, b: float) -> np.ndarray:
    d = np.abs(a - b) % 360.0
    return np.minimum(d, 360.0 - d)


def test_class_names_pair_colours_and_shapes():
    assert NUM_CLASSES == len(CLASS_NAMES) == 6
    colours = [name.split("_")[0] for name in CLASS_NAMES]
    shapes = [name.split("_", 1)[1] for name in CLASS_NAMES]
    assert len(set(shapes)) == NUM_CLASSES  # every class has its own shape...
    assert all(colours.count(c) == 2 for c in set(colours))  # ...but no colour identifies a class alone


def test_render_sample_types_and_range():
    rng = np.random.default_rng(0)
    image, mask = render_sample(rng, 3)
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and image.dtype == np.uint8
    assert mask.shape == (IMAGE_SIZE, IMAGE_SIZE) and mask.dtype == bool
    with pytest.raises(ValueError):
        render_sample(rng, NUM_CLASSES)
    small, small_mask = render_sample(np.random.default_rng(0), 0, size=64)
    assert small.shape == (64, 64, 3) and small_mask.shape == (64, 64)


def test_make_split_is_deterministic_and_balanced():
    n = 3 * NUM_CLASSES
    a = make_split(n, seed=7)
    b = make_split(n, seed=7)
    c = make_split(n, seed=8)
    images, labels, masks = a
    assert images.shape == (n, IMAGE_SIZE, IMAGE_SIZE, 3) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert masks.shape == (n, IMAGE_SIZE, IMAGE_SIZE) and masks.dtype == bool
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert np.bincount(labels, minlength=NUM_CLASSES).tolist() == [3] * NUM_CLASSES
    assert labels.tolist() != sorted(labels.tolist())  # shuffled


def test_masks_are_exact_object_pixels():
    images, labels, masks = make_split(4 * NUM_CLASSES, seed=3)
    for image, label, mask in zip(images, labels, masks):
        area = mask.sum()
        # circumscribed diameter is 18-32 % of the side; the star is the thinnest shape
        assert 0.004 * IMAGE_SIZE**2 < area < 0.09 * IMAGE_SIZE**2
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())  # fully inside
        pixels = image[mask].astype(np.float64) / 255.0
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
        colour = CLASS_NAMES[label].split("_")[0]
        # one object colour (jitter is per object) plus mild pixel noise
        assert pixels.std(axis=0).max() < 0.04
        assert np.median(_hue_distance(hsv[:, 0] * 360.0, _HUE[colour])) < 25.0
        assert np.median(hsv[:, 1]) > 0.4 and np.median(hsv[:, 2]) > 0.4


def test_mask_is_exactly_the_painted_pixels():
    # render_sample draws the background first, so the same rng state reproduces it
    for seed in range(2 * NUM_CLASSES):
        background = shapes_data._background(np.random.default_rng(seed), IMAGE_SIZE).astype(np.int16)
        image, mask = render_sample(np.random.default_rng(seed), seed % NUM_CLASSES)
        diff = np.abs(image.astype(np.int16) - background).max(axis=2)
        assert diff[~mask].max() <= 8  # outside the mask: background plus noise only
        painted = image[mask].astype(np.int16)
        assert np.abs(painted - np.median(painted, axis=0)).max() <= 16  # inside: one flat colour


def test_mask_path_for():
    assert mask_path_for("root/images/red_disk/red_disk_000.png") == Path("root/masks/red_disk/red_disk_000.png")
    assert mask_path_for(Path("/a/images/x/images/b/f.png")) == Path("/a/images/x/masks/b/f.png")
    with pytest.raises(ValueError):
        mask_path_for("root/other/f.png")


def test_write_eval_set(tmp_path):
    n = 8
    list_path = write_eval_set(tmp_path, n=n, seed=99)
    assert list_path == tmp_path / "eval_list.txt"
    lines = list_path.read_text().splitlines()
    assert len(lines) == n
    assert json.loads((tmp_path / "meta.json").read_text())["data_version"] == DATA_VERSION
    seen = set()
    for line in lines:
        rel, label = line.split(" ")
        label = int(label)
        cls = CLASS_NAMES[label]
        assert rel.startswith(f"images/{cls}/{cls}_") and rel.endswith(".png")
        image = cv2.imread(str(tmp_path / rel), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(mask_path_for(tmp_path / rel)), cv2.IMREAD_UNCHANGED)
        assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and image.dtype == np.uint8
        assert mask.shape == (IMAGE_SIZE, IMAGE_SIZE) and set(np.unique(mask)) == {0, 255}
        seen.add(rel)
    assert len(seen) == n
    assert len(list((tmp_path / "images").rglob("*.png"))) == n
    assert len(list((tmp_path / "masks").rglob("*.png"))) == n

    # the files hold exactly make_split's arrays (RGB on disk order handled)
    images, labels, masks = make_split(n, seed=99)
    first = [i for i in range(n) if labels[i] == int(lines[0].split()[1])][0]
    on_disk = cv2.cvtColor(cv2.imread(str(tmp_path / lines[0].split()[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(on_disk, images[first])
    np.testing.assert_array_equal(cv2.imread(str(mask_path_for(tmp_path / lines[0].split()[0])), 0) > 0, masks[first])

    # idempotent: a second call rewrites nothing
    mtime = list_path.stat().st_mtime_ns
    assert write_eval_set(tmp_path, n=n, seed=99) == list_path
    assert list_path.stat().st_mtime_ns == mtime
    # a different size regenerates, and stale files of the larger set disappear
    write_eval_set(tmp_path, n=NUM_CLASSES, seed=99)
    assert len(list_path.read_text().splitlines()) == NUM_CLASSES
    assert len(list((tmp_path / "images").rglob("*.png"))) == NUM_CLASSES


def test_model_shapes_and_scorer():
    torch.manual_seed(0)
    net = ShapesCNN().eval()
    assert net.num_classes == NUM_CLASSES
    x = torch.rand(5, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.inference_mode():
        features = net.forward_features(x)
        logits = net.forward_head(features)
        assert features.shape == (5, 64)
        assert logits.shape == (5, NUM_CLASSES)
        torch.testing.assert_close(net(x), logits)
        scorer = build_scorer(net, "cpu")
        assert isinstance(scorer, ClassifierScorer) and scorer.num_classes == NUM_CLASSES
        out = scorer(x)
    assert isinstance(out, ModelOutput)
    assert out.probs.shape == (5, NUM_CLASSES)
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(5))
    assert out.embeddings is not None and out.embeddings.shape == (5, 64)


def test_occlusion_augmentation_blacks_out_regions():
    images, _, masks = make_split(64, seed=5)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    out = shapes_model._occlude(x, torch.from_numpy(masks), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    changed = (out != x).flatten(1).any(dim=1)
    assert 0 < int(changed.sum()) < 64
    assert torch.all((out == x) | (out == 0))  # only ever blacks pixels out
    assert torch.equal(x, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)  # input untouched


def test_corrupt_checkpoint_raises_with_path(tmp_path):
    bad = tmp_path / "shapes_cnn.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(RuntimeError, match=str(bad).replace("\\", "\\\\")):
        load_or_train_default(bad, verbose=False)


def test_train_default_and_reload(tmp_path, capsys, monkeypatch):
    from submodular_attribution.shapes import model as shapes_model
    small = functools.partial(shapes_model.train_shapes_cnn, n_train=64, n_val=32, epochs=1)  # the plumbing, not skill
    monkeypatch.setattr(shapes_model, "train_shapes_cnn", small)
    ckpt = tmp_path / "shapes_cnn.pt"
    net, info = load_or_train_default(ckpt, seed=0, verbose=True)
    assert "Trained the default shapes CNN" in capsys.readouterr().out
    assert ckpt.is_file() and not list(ckpt.parent.glob("*.tmp"))
    assert info["seed"] == 0 and info["data_version"] == DATA_VERSION
    assert info["class_names"] == list(CLASS_NAMES) and info["image_size"] == IMAGE_SIZE
    assert {"n_train", "n_val", "epochs", "seconds"} <= set(info)

    # weights_only-compatible file
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "info"}

    mtime = ckpt.stat().st_mtime_ns
    again, info2 = load_or_train_default(ckpt, seed=0, verbose=True)
    assert "Loaded the default shapes CNN from" in capsys.readouterr().out
    assert ckpt.stat().st_mtime_ns == mtime and info2 == info
    images, labels, _ = make_split(32, seed=4321)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode():
        a, b = build_scorer(net)(x), build_scorer(again)(x)
        torch.testing.assert_close(net(x), again(x), rtol=0, atol=0)
    torch.testing.assert_close(a.probs, b.probs, rtol=0, atol=0)
    torch.testing.assert_close(a.embeddings, b.embeddings, rtol=0, atol=0)


@pytest.fixture
def coffee_unreadable(monkeypatch):
    """scikit-image's 'coffee' photo fails to load, as in an install without its data files;
    the cached photos are dropped before and after so no other test sees this."""
    import skimage.data

    def missing():
        raise FileNotFoundError("[Errno 2] No such file or directory: 'skimage/data/coffee.png'")

    monkeypatch.setattr(skimage.data, "coffee", missing)
    shapes_data._backgrounds.cache_clear()
    yield
    shapes_data._backgrounds.cache_clear()


def test_an_unreadable_background_photo_stops_instead_of_changing_the_benchmark(coffee_unreadable, tmp_path):
    from submodular_attribution.common.errors import InputError

    with pytest.raises(InputError) as caught:
        shapes_data._backgrounds()
    message = str(caught.value)
    assert "'coffee' cannot be read" in message and "No such file or directory" in message
    assert "reinstall scikit-image" in message and "\n" not in message
    with pytest.raises(InputError, match="'coffee' cannot be read"):
        write_eval_set(tmp_path / "shapes", n=2)
    assert not (tmp_path / "shapes" / "eval_list.txt").exists()


def test_an_unreadable_background_photo_is_one_error_line_of_the_shapes_command(
        coffee_unreadable, tmp_path, monkeypatch, capsys):
    from submodular_attribution import smdl_explanation_shapes

    monkeypatch.setenv("SMDL_HOME", str(tmp_path))  # the default list is generated at first use
    eval_list = tmp_path / "datasets" / "shapes" / "eval_list.txt"
    status = smdl_explanation_shapes.main(["--eval-list", str(eval_list), "--device", "cpu",
                                           "--save-dir", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    assert status == 2 and not eval_list.exists()
    assert len(err.splitlines()) == 1 and "Traceback" not in out + err
    assert err.startswith("error: scikit-image's sample image 'coffee' cannot be read")
