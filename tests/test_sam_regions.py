"""SAM divisions: overlap resolution on hand-made masks, a tiny SAM end to end, the CLI."""
from __future__ import annotations

import itertools
import json
import os

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

import SAM_mask_generate
import utils
from submodular_attribution.common.errors import InputError
from submodular_attribution.regions.sam import (
    SAM_MODEL_TYPES,
    build_mask_generator,
    build_tiny_sam,
    label_map_path,
    load_sam,
    masks_to_label_map,
    read_label_map,
    sam_label_map,
)


def rect(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def canonical(labels):
    """Relabel by order of first appearance in raster order: equal iff same partition."""
    _, first, inverse = np.unique(labels.ravel(), return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse].reshape(labels.shape)


# --------------------------------------------------------------------------
# Overlap resolution, hand-made masks
# --------------------------------------------------------------------------


def test_big_mask_containing_small_one_becomes_ring():
    big, small = np.ones((6, 6), dtype=bool), rect((6, 6), (2, 4), (2, 4))
    expected = np.zeros((6, 6), dtype=np.int32)
    expected[2:4, 2:4] = 1  # ring (32 px) = 0, small (4 px) = 1, nothing uncovered
    for masks in ([big, small], [small, big]):
        labels = masks_to_label_map(masks, (6, 6))
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, expected)


def test_nested_three_masks():
    big, mid, small = np.ones((6, 6), bool), rect((6, 6), (0, 4), (0, 4)), rect((6, 6), (1, 3), (1, 3))
    expected = np.zeros((6, 6), dtype=np.int32)
    expected[0:4, 0:4] = 1  # mid ring: 12 px
    expected[1:3, 1:3] = 2  # small: 4 px; big minus mid: 20 px = label 0
    for masks in itertools.permutations([big, mid, small]):
        np.testing.assert_array_equal(masks_to_label_map(list(masks), (6, 6)), expected)


def test_partial_overlap_goes_to_the_smaller_mask():
    a = rect((6, 6), (0, 4), (0, 4))  # 16 px
    b = rect((6, 6), (2, 4), (2, 6))  # 8 px; overlap 4 px = 1/4 of a, 1/2 of b -> b keeps it
    expected = np.full((6, 6), 2, dtype=np.int32)  # residual (16 px) is last
    expected[0:4, 0:4] = 0  # a minus overlap: 12 px
    expected[2:4, 2:6] = 1  # b: 8 px
    np.testing.assert_array_equal(masks_to_label_map([a, b], (6, 6)), expected)
    np.testing.assert_array_equal(masks_to_label_map([b.astype(np.uint8), a.astype(np.uint8)], (6, 6)), expected)


def test_equal_fraction_tie_goes_to_the_earlier_mask():
    a, b = rect((6, 6), (0, 4), (0, 4)), rect((6, 6), (2, 6), (2, 6))  # 16 px each, overlap 4
    labels = masks_to_label_map([a, b], (6, 6))
    expected = np.full((6, 6), 2, dtype=np.int32)  # residual: 8 px
    expected[2:6, 2:6] = 1  # b minus overlap: 12 px
    expected[0:4, 0:4] = 0  # a keeps all 16 px
    np.testing.assert_array_equal(labels, expected)
    swapped = masks_to_label_map([b, a], (6, 6))  # now b is earlier and keeps the overlap
    assert (swapped[2:4, 2:4] == swapped[5, 5]).all() and swapped[2, 2] == 0
    assert (swapped[0:2, 0:2] == 1).all() and swapped[0, 5] == 2


def test_mask_under_area_floor_goes_to_residual():
    # 10x10 image, floor 5 % = 5 px.
    shape, floor = (10, 10), 0.05
    a = rect(shape, (0, 5), (0, 10))  # 50 px
    tiny = rect(shape, (8, 10), (0, 2))  # 4 px < 5: dropped
    expected = np.ones(shape, dtype=np.int32)
    expected[0:5] = 0
    np.testing.assert_array_equal(masks_to_label_map([a, tiny], shape, floor), expected)
    # Kept at floor 0 (and at the default 0.05 % floor): then it is its own region.
    assert utils.check_division(masks_to_label_map([a, tiny], shape, 0.0)) == 3
    assert utils.check_division(masks_to_label_map([a, tiny], shape)) == 3


def test_floor_applies_after_resolution():
    shape, floor = (10, 10), 0.05
    full = np.ones(shape, dtype=bool)
    hole = rect(shape, (4, 6), (4, 6))  # 4 px: keeps the overlap, then dropped -> a residual hole
    labels = masks_to_label_map([full, hole], shape, floor)
    expected = np.zeros(shape, dtype=np.int32)
    expected[4:6, 4:6] = 1
    np.testing.assert_array_equal(labels, expected)
    # 9 px before resolution, 3 px after losing 6 px to a smaller mask: dropped.
    b, c = rect(shape, (0, 3), (0, 3)), rect(shape, (0, 2), (0, 3))
    labels = masks_to_label_map([b, c, rect(shape, (3, 10), (0, 10))], shape, floor)
    expected = np.full(shape, 2, dtype=np.int32)  # residual: b's 3 px + the uncovered 21 px
    expected[3:10] = 0  # 70 px
    expected[0:2, 0:3] = 1  # c: 6 px
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("masks", [[], [np.zeros((4, 4), bool)], [rect((4, 4), (0, 1), (0, 1))]])
def test_nothing_found_or_everything_dropped_is_one_region(masks):
    labels = masks_to_label_map(masks, (4, 4), min_area_fraction=0.1)
    np.testing.assert_array_equal(labels, np.zeros((4, 4), dtype=np.int32))
    assert labels.dtype == np.int32


def test_everything_covered_has_no_residual():
    top, bottom = rect((4, 4), (0, 2), (0, 4)), rect((4, 4), (1, 4), (0, 4))  # overlap row 1
    labels = masks_to_label_map([top, bottom], (4, 4))
    # top (8 px) is smaller than bottom (12 px) and keeps row 1; both end with 8 px, and
    # equal resolved areas are numbered by first pixel: top 0, bottom 1.
    np.testing.assert_array_equal(labels, np.repeat([[0], [0], [1], [1]], 4, axis=1))


def test_matches_literal_pairwise_rule_in_any_pair_order():
    rng = np.random.default_rng(0)
    shape = (12, 12)
    for trial in range(20):
        masks = []
        for _ in range(int(rng.integers(2, 9))):
            r0, c0 = rng.integers(0, 10, size=2)
            masks.append(rect(shape, (r0, r0 + rng.integers(1, 7)), (c0, c0 + rng.integers(1, 7))))
        floor = 0.02
        # Literal rule: for each pair, the overlap is removed from the mask of which it is the
        # smaller fraction (given areas; tie -> removed from the later one); pairs in random order.
        current = [m.copy() for m in masks]
        pairs = list(itertools.combinations(range(len(masks)), 2))
        rng.shuffle(pairs)
        for i, j in pairs:
            overlap = masks[i] & masks[j]
            if not overlap.any():
                continue
            if overlap.sum() / masks[i].sum() >= overlap.sum() / masks[j].sum():
                current[j] &= ~overlap
            else:
                current[i] &= ~overlap
        reference = np.full(shape, -1)
        for k, m in enumerate(current):
            if m.sum() > 0 and m.sum() >= floor * m.size:
                reference[m] = k
        labels = masks_to_label_map(masks, shape, floor)
        assert utils.check_division(labels) == len(np.unique(reference))
        np.testing.assert_array_equal(canonical(labels), canonical(reference), err_msg=f"trial {trial}")
        # Distinct areas: the result does not depend on the masks' order at all.
        if len({int(m.sum()) for m in masks}) == len(masks):
            perm = rng.permutation(len(masks))
            np.testing.assert_array_equal(masks_to_label_map([masks[p] for p in perm], shape, floor), labels)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask 1 must be"):
        masks_to_label_map([np.ones((4, 4)), np.ones((4, 5))], (4, 4))
    with pytest.raises(ValueError, match="shape"):
        masks_to_label_map([], (0, 4))
    with pytest.raises(ValueError, match="min_area_fraction"):
        masks_to_label_map([], (4, 4), min_area_fraction=-0.1)


def test_many_masks_are_fast():
    rng = np.random.default_rng(1)
    masks = [rng.random((224, 224)) < 0.2 for _ in range(200)]
    labels = masks_to_label_map(masks, (224, 224))
    assert labels.shape == (224, 224) and utils.check_division(labels) > 1


# --------------------------------------------------------------------------
# Label-map files
# --------------------------------------------------------------------------


def test_label_map_files(tmp_path):
    path = label_map_path(tmp_path, "7", "img_01")
    assert path == tmp_path / "7" / "img_01.npy"
    path.parent.mkdir()
    np.save(path, np.array([[0, 1], [2, 1]], dtype=np.int16))
    labels = read_label_map(path, (2, 2))
    assert labels.dtype == np.int32 and labels.tolist() == [[0, 1], [2, 1]]
    with pytest.raises(InputError, match=r"img_01\.npy: label map has shape \(2, 2\), expected \(3, 2\)"):
        read_label_map(path, (3, 2))
    np.save(path, np.array([[0, 2], [2, 0]], dtype=np.int16))
    with pytest.raises(InputError, match=r"img_01\.npy: not a valid division .*label 1 is missing"):
        read_label_map(path, (2, 2))
    np.save(path, np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(InputError, match=r"img_01\.npy: not a valid division"):
        read_label_map(path, (2, 2))
    path.write_bytes(b"junk")
    with pytest.raises(InputError, match=r"img_01\.npy: cannot read label map"):
        read_label_map(path, (2, 2))
    with pytest.raises(InputError, match=r"other\.npy: label map not found"):
        read_label_map(tmp_path / "other.npy", (2, 2))


# --------------------------------------------------------------------------
# Tiny SAM
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    sam = SAM_MODEL_TYPES["vit_tiny"]()
    folder = tmp_path_factory.mktemp("sam")
    torch.save(sam.state_dict(), folder / "tiny.pth")
    torch.save({f"module.{k}": v for k, v in sam.state_dict().items()}, folder / "tiny_module.pth")
    return sam, folder


def crop(photo, top, left, size=64):
    return np.ascontiguousarray(photo[top:top + size, left:left + size])


def test_registry():
    assert set(SAM_MODEL_TYPES) == {"vit_h", "vit_l", "vit_b", "vit_tiny"}


def test_tiny_sam_loads_and_divides(tiny_ckpt):
    src, folder = tiny_ckpt
    image = crop(skdata.astronaut(), 100, 180)
    for name in ("tiny.pth", "tiny_module.pth"):
        sam = load_sam("vit_tiny", folder / name)
        for (k, a), (_, b) in zip(src.state_dict().items(), sam.state_dict().items()):
            assert torch.equal(a, b), k
    for kw in ({}, {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}):
        generator = build_mask_generator(sam, points_per_side=4, **kw)
        labels = sam_label_map(image, generator)
        assert labels.shape == (64, 64) and labels.dtype == np.int32
        assert utils.check_division(labels) >= 1
    with pytest.raises(ValueError, match="uint8 RGB"):
        sam_label_map(image.astype(np.float32), generator)


def test_load_sam_errors(tiny_ckpt, tmp_path):
    _, folder = tiny_ckpt
    torch.save(build_tiny_sam(encoder_dim=48).state_dict(), tmp_path / "other.pth")
    with pytest.raises(InputError, match=r"other\.pth: weights do not fit Sam \(shape mismatch"):
        load_sam("vit_tiny", tmp_path / "other.pth")
    with pytest.raises(InputError, match="unknown SAM model type 'vit_x'; choose one of vit_h"):
        load_sam("vit_x", folder / "tiny.pth")
    with pytest.raises(InputError, match=r"nope\.pth: checkpoint not found"):
        load_sam("vit_h", tmp_path / "nope.pth")


# --------------------------------------------------------------------------
# SAM_mask_generate.py
# --------------------------------------------------------------------------


def test_cli_generates_resumes_and_reports_errors(tiny_ckpt, tmp_path, monkeypatch, capsys):
    _, folder = tiny_ckpt
    (tmp_path / "images").mkdir()
    for name, photo in (("a b.png", crop(skdata.coffee(), 150, 200)), ("c.png", crop(skdata.chelsea(), 50, 100))):
        cv2.imwrite(str(tmp_path / "images" / name), photo[..., ::-1])
    (tmp_path / "list.txt").write_text("images/a b.png 3\n# comment\nimages/c.png 5\n")
    monkeypatch.chdir(tmp_path)  # default --save-dir is relative: datasets/sam_masks/<list stem>
    argv = ["--eval-list", "list.txt", "--model-type", "vit_tiny", "--checkpoint", str(folder / "tiny.pth"),
            "--points-per-side", "4", "--input-size", "48", "64", "--device", "cpu"]
    assert SAM_mask_generate.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 label maps written, 0 skipped" in out and "regions per image" in out
    save_dir = tmp_path / "datasets" / "sam_masks" / "list"
    paths = [label_map_path(save_dir, "3", "a b"), label_map_path(save_dir, "5", "c")]
    for path in paths:
        assert np.load(path).dtype == np.int16
        assert read_label_map(path, (48, 64)).shape == (48, 64)
    stamps = [os.stat(p).st_mtime_ns for p in paths]

    # Rerun: nothing to do, so the model is not even loaded (a bogus checkpoint is fine).
    assert SAM_mask_generate.main(argv[:4] + ["--checkpoint", "missing.pth"] + argv[6:]) == 0
    assert "0 label maps written, 2 skipped" in capsys.readouterr().out
    assert [os.stat(p).st_mtime_ns for p in paths] == stamps

    # A missing image between good ones: one line naming it, recorded, the others done, exit 1.
    (tmp_path / "bad.txt").write_text("images/c.png 5\nimages/gone.png 1\nimages/a b.png 3\n")
    assert SAM_mask_generate.main(["--eval-list", "bad.txt"] + argv[2:]) == 1
    err = capsys.readouterr().err
    assert "failed (list line 2): images/gone.png: image not found" in err
    bad_dir = tmp_path / "datasets" / "sam_masks" / "bad"
    assert label_map_path(bad_dir, "3", "a b").is_file() and label_map_path(bad_dir, "5", "c").is_file()
    failures = [json.loads(line) for line in (bad_dir / "failures.jsonl").read_text().splitlines()]
    assert [(f["image"], f["list_line"]) for f in failures] == [("images/gone.png", 2)]
    # the SMDL scripts' flag names work too
    same = ["--eval-list", "list.txt", "--sam-model-type", "vit_tiny", "--sam-checkpoint", str(folder / "tiny.pth"),
            "--sam-masks", "same", "--points-per-side", "4", "--input-size", "48", "64", "--device", "cpu"]
    assert SAM_mask_generate.main(same) == 0 and label_map_path(tmp_path / "same", "5", "c").is_file()

    # A missing checkpoint when there is work to do; no default checkpoint for vit_tiny.
    assert SAM_mask_generate.main(["--eval-list", "list.txt", "--save-dir", "elsewhere"] + argv[2:4]
                                  + ["--checkpoint", "missing.pth"]) == 2
    assert "error: missing.pth: checkpoint not found" in capsys.readouterr().err
    assert SAM_mask_generate.main(["--eval-list", "list.txt", "--model-type", "vit_tiny"]) == 2
    assert "has no default checkpoint" in capsys.readouterr().err
