"""Tests for the region divisions in utils.py (label maps 0..N-1, int32)."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from skimage import data

import utils
from submodular_attribution.regions import DivisionConfig, RegionDivider
from submodular_attribution.regions.superpixels import grid_fallback
from utils import (
    DIVISION_MODES,
    SubRegionDivision,
    check_division,
    grid_division,
    merge_small_regions,
    prior_patch_division,
    region_areas,
    relabel_consecutive,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A real RGB photo, 224x224 uint8."""
    return cv2.resize(data.astronaut(), (224, 224), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)


def assert_division(labels: np.ndarray, shape: tuple[int, int]) -> int:
    """Check the division invariant in full and return N."""
    assert labels.dtype == np.int32
    assert labels.shape == shape
    n = check_division(labels)
    assert np.array_equal(np.unique(labels), np.arange(n))
    areas = region_areas(labels)
    assert areas.shape == (n,) and areas.dtype == np.float64
    assert np.all(areas > 0)
    assert np.isclose(areas.sum(), 1.0)
    return n


# --------------------------------------------------------------------------
# SubRegionDivision
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", DIVISION_MODES)
@pytest.mark.parametrize("image_name", ["astronaut", "noise"])
def test_every_mode_gives_valid_division(mode, image_name, request):
    image = request.getfixturevalue(image_name)
    n = assert_division(SubRegionDivision(image, mode), (224, 224))
    assert n > 1


def test_slico_region_counts(astronaut):
    n30 = check_division(SubRegionDivision(astronaut, "slico", 30))
    n22 = check_division(SubRegionDivision(astronaut, "slico", 22))
    # Observed (OpenCV 5.0.0): 49 regions at region_size 30 and 99 at 22
    # (raw SLICO gives 100 at 22; one 1-pixel region is merged away).
    assert 40 <= n30 <= 60
    assert n22 > n30


def test_slico_published_face_setting(astronaut):
    face = cv2.resize(astronaut, (112, 112), interpolation=cv2.INTER_AREA)
    n = assert_division(SubRegionDivision(face, "slico", 15, ruler=40.0), (112, 112))
    assert 40 <= n <= 60  # observed 49


def test_seeds_region_count(astronaut):
    n = check_division(SubRegionDivision(astronaut, "seeds"))
    assert 40 <= n <= 60  # observed 49 for num_superpixels=50
    more = check_division(SubRegionDivision(astronaut, "seeds", num_superpixels=200))
    assert more > n


def test_seeds_ignores_region_size(astronaut):
    a = SubRegionDivision(astronaut, "seeds", region_size=30)
    b = SubRegionDivision(astronaut, "seeds", region_size=7)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("mode", ["slico", "seeds"])
def test_rgb_and_bgr_give_identical_division(astronaut, mode):
    # SLIC distances and SEEDS joint histograms are symmetric in the channels.
    rgb = SubRegionDivision(astronaut, mode)
    bgr = SubRegionDivision(astronaut[..., ::-1], mode)
    assert np.array_equal(rgb, bgr)


def test_min_area_fraction_merges_slivers(astronaut):
    merged = SubRegionDivision(astronaut, "slico", 22)
    raw = SubRegionDivision(astronaut, "slico", 22, min_area_fraction=0.0)
    min_area = round(utils.DEFAULT_MIN_AREA_FRACTION * 224 * 224)  # 25 px
    assert np.bincount(merged.ravel()).min() >= min_area
    # Observed: SLICO leaves a 1-pixel region at region_size 22.
    assert np.bincount(raw.ravel()).min() < min_area
    assert check_division(merged) < check_division(raw)


def test_slico_is_deterministic(astronaut):
    assert np.array_equal(SubRegionDivision(astronaut), SubRegionDivision(astronaut))


def test_grid_mode_hand_checked():
    # 5 rows / 3 = 1 full cell + remainder 2 (>= 1.5: own cell);
    # 7 cols / 3 = 2 full cells + remainder 1 (< 1.5: joins the last cell).
    expected = np.array(
        [
            [0, 0, 0, 1, 1, 1, 1],
            [0, 0, 0, 1, 1, 1, 1],
            [0, 0, 0, 1, 1, 1, 1],
            [2, 2, 2, 3, 3, 3, 3],
            [2, 2, 2, 3, 3, 3, 3],
        ]
    )
    labels = SubRegionDivision(np.zeros((5, 7, 3), np.uint8), "grid", 3)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, expected)


def test_grid_mode_merges_slivers_at_224():
    image = np.zeros((224, 224, 3), np.uint8)
    labels = SubRegionDivision(image, "grid", 30)
    # 224 = 7 * 30 + 14 and 14 < 15, so the last row/column is 44 px wide.
    assert assert_division(labels, (224, 224)) == 49
    assert np.count_nonzero(labels[0] == 6) == 44
    # 230 = 7 * 30 + 20 and 20 >= 15: an 8th row/column of 20 px.
    labels = SubRegionDivision(np.zeros((230, 230, 3), np.uint8), "grid", 30)
    assert check_division(labels) == 64
    assert np.count_nonzero(labels[0] == 7) == 20


def test_slico_timing(astronaut):
    start = time.perf_counter()
    SubRegionDivision(astronaut, "slico")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0  # observed ~35 ms per call


# --------------------------------------------------------------------------
# Degenerate images
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", DIVISION_MODES)
def test_uniform_image(mode):
    image = np.full((224, 224, 3), 128, np.uint8)
    assert_division(SubRegionDivision(image, mode), (224, 224))


@pytest.mark.parametrize("mode", DIVISION_MODES)
def test_one_pixel_image(mode):
    labels = SubRegionDivision(np.zeros((1, 1, 3), np.uint8), mode)
    np.testing.assert_array_equal(labels, np.zeros((1, 1), np.int32))
    assert labels.dtype == np.int32


@pytest.mark.parametrize("side", [10, 20])  # 10: below OpenCV's limit; 20: through OpenCV
@pytest.mark.parametrize("mode", ["slico", "grid"])
def test_image_smaller_than_region_size_is_one_region(mode, side):
    image = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    labels = SubRegionDivision(image, mode, region_size=30)
    assert assert_division(labels, (side, side)) == 1


@pytest.mark.parametrize("shape", [(10, 10), (12, 12), (5, 200), (200, 3), (16, 16), (31, 5)])
def test_small_images_seeds(shape):
    # OpenCV SEEDS hangs or segfaults on many of these sizes; a grid is used instead.
    image = np.random.default_rng(2).integers(0, 256, shape + (3,), dtype=np.uint8)
    assert_division(SubRegionDivision(image, "seeds"), shape)


def test_thin_image_slico_falls_back_to_strip():
    # Short side 5 <= region_size // 2: OpenCV SLIC would segfault.
    image = np.random.default_rng(3).integers(0, 256, (5, 200, 3), dtype=np.uint8)
    labels = SubRegionDivision(image, "slico", 30)
    # 200 = 6 * 30 + 20, 20 >= 15 -> 7 cells, the last 20 px wide.
    expected = np.repeat(np.arange(7), [30] * 6 + [20])[None, :].repeat(5, axis=0)
    np.testing.assert_array_equal(labels, expected)


# --------------------------------------------------------------------------
# Grid fallbacks are reported (the CLI's warning line and the records' division.fallback)
# --------------------------------------------------------------------------


def test_grid_fallback_is_reported_for_a_tiny_image_and_not_for_a_normal_one():
    assert grid_fallback(8, 64, "slico", 16) == "short side 8 px ≤ region_size // 2 = 8"
    assert grid_fallback(9, 64, "slico", 16) is None
    assert grid_fallback(224, 224, "slico", 30) is None
    assert grid_fallback(10, 10, "seeds") == "too small for 50 SEEDS superpixels at 3 levels"
    assert grid_fallback(224, 224, "seeds") is None
    assert grid_fallback(4, 4, "grid", 16) is None and grid_fallback(8, 8, "sam") is None


@pytest.mark.parametrize("shape", [(8, 64), (9, 64), (15, 40), (16, 40), (40, 7), (40, 8)])
def test_grid_fallback_says_exactly_when_slico_gives_the_grid(shape):
    # the division itself decides with the same predicate: fallback ⇔ the grid's labels
    image = np.random.default_rng(4).integers(0, 256, shape + (3,), dtype=np.uint8)
    gives_grid = np.array_equal(SubRegionDivision(image, "slico", 16), SubRegionDivision(image, "grid", 16))
    assert (grid_fallback(*shape, "slico", 16) is not None) == gives_grid


def test_the_divider_records_a_fallback_only_where_there_is_one():
    tiny = RegionDivider(DivisionConfig("slico", region_size=16), (8, 64))
    assert tiny.describe() == {"algorithm": "slico", "region_size": 16,
                               "fallback": {"to": "grid", "reason": "short side 8 px ≤ region_size // 2 = 8"}}
    normal = RegionDivider(DivisionConfig("slico", region_size=16), (112, 112))
    assert normal.fallback is None and normal.describe() == {"algorithm": "slico", "region_size": 16}
    seeds = RegionDivider(DivisionConfig("seeds"), (10, 10))
    assert seeds.describe()["fallback"] == {"to": "grid", "reason": "too small for 50 SEEDS superpixels at 3 levels"}


def test_a_run_on_inputs_too_small_for_slico_says_so_once_and_in_every_record(tmp_path, monkeypatch, capsys):
    from submodular_attribution import shapes, smdl_explanation_shapes

    # an untrained CNN: the division is under test, not the model
    monkeypatch.setattr(shapes, "load_or_train_default", lambda *args, **kwargs: (shapes.ShapesCNN().eval(), {}))
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        cv2.imwrite(str(tmp_path / "imgs" / f"{i}.png"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    eval_list = tmp_path / "list.txt"
    eval_list.write_text("".join(f"imgs/{i}.png {i}\n" for i in range(3)))
    status = smdl_explanation_shapes.main([
        "--eval-list", str(eval_list), "--checkpoint", str(tmp_path / "cnn.pt"), "--device", "cpu",
        "--save-dir", str(tmp_path / "results"), "--input-size", "8", "64", "--region-size", "16"])
    err = capsys.readouterr().err
    assert status == 0
    warnings = [line for line in err.splitlines() if "falls back to a grid" in line]
    assert warnings == ["warning: --division slico falls back to a grid on 8×64 inputs (short side 8 px ≤ "
                        "region_size // 2 = 8; OpenCV cannot divide them), recorded as division.fallback in each "
                        "result; use a larger --input-size for superpixels"]
    records = [json.loads(path.read_text()) for path in sorted((tmp_path / "results").rglob("json/*/*.json"))]
    assert len(records) == 3
    for record in records:
        assert record["division"]["fallback"] == {"to": "grid", "reason": "short side 8 px ≤ region_size // 2 = 8"}
        assert record["num_regions"] == 4  # 64 px in 16 px cells


# --------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((8, 8, 3), np.float64), r"image must be a uint8 .*dtype float64"),
        (np.zeros((8, 8), np.uint8), r"image must be .*shape \(8, 8\)"),
        (np.zeros((8, 8, 4), np.uint8), r"image must be .*shape \(8, 8, 4\)"),
        (np.zeros((0, 8, 3), np.uint8), r"image must be .*shape \(0, 8, 3\)"),
        ([[[0, 0, 0]]], r"image must be .*list"),
    ],
)
def test_bad_image(image, match):
    with pytest.raises(ValueError, match=match):
        SubRegionDivision(image)


def test_bad_mode_and_options(astronaut):
    with pytest.raises(ValueError, match=r"mode must be one of .*'slico'.*got 'felzenszwalb'"):
        SubRegionDivision(astronaut, "felzenszwalb")
    with pytest.raises(ValueError, match=r"region_size must be >= 1, got 0"):
        SubRegionDivision(astronaut, "slico", 0)
    with pytest.raises(ValueError, match=r"region_size must be an integer"):
        SubRegionDivision(astronaut, "grid", 2.5)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['ruler'\] for mode 'seeds'"):
        SubRegionDivision(astronaut, "seeds", ruler=10.0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['iterations'\] for mode 'grid'"):
        SubRegionDivision(astronaut, "grid", iterations=3)
    with pytest.raises(ValueError, match=r"ruler must be > 0"):
        SubRegionDivision(astronaut, "slico", ruler=0.0)
    with pytest.raises(ValueError, match=r"min_area_fraction must be <= 1"):
        SubRegionDivision(astronaut, "slico", min_area_fraction=2.0)


# --------------------------------------------------------------------------
# grid_division
# --------------------------------------------------------------------------


def test_grid_division_hand_checked():
    expected = np.array(
        [
            [0, 0, 1, 1, 2, 2],
            [0, 0, 1, 1, 2, 2],
            [3, 3, 4, 4, 5, 5],
            [3, 3, 4, 4, 5, 5],
        ]
    )
    labels = grid_division(4, 6, 2, 3)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, expected)


def test_grid_division_uneven_boundaries_round_half_to_even():
    # Row boundaries round([0, 2.5, 5]) = [0, 2, 5]; columns round([0, 1.5, 3]) = [0, 2, 3].
    expected = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 3], [2, 2, 3], [2, 2, 3]])
    np.testing.assert_array_equal(grid_division(5, 3, 2, 2), expected)


@pytest.mark.parametrize("shape, cells", [((128, 100), 8), ((128, 100), 10), ((10, 10), 10), ((1, 1), 1)])
def test_grid_division_counts(shape, cells):
    labels = grid_division(shape[0], shape[1], cells, cells)
    assert assert_division(labels, shape) == cells * cells
    # Row-major: first row of cells holds labels 0..cells-1 left to right.
    np.testing.assert_array_equal(np.unique(labels[0]), np.arange(cells))


def test_grid_division_bad_arguments():
    with pytest.raises(ValueError, match=r"rows must be <= height \(4\), got 5"):
        grid_division(4, 6, 5, 3)
    with pytest.raises(ValueError, match=r"cols must be <= width \(6\), got 7"):
        grid_division(4, 6, 2, 7)
    with pytest.raises(ValueError, match=r"cols must be >= 1, got 0"):
        grid_division(4, 6, 2, 0)
    with pytest.raises(ValueError, match=r"height must be an integer"):
        grid_division(4.0, 6, 2, 2)


# --------------------------------------------------------------------------
# prior_patch_division
# --------------------------------------------------------------------------


def test_prior_patch_rows_by_saliency():
    saliency = np.arange(16)[::-1].reshape(4, 4).astype(float)  # row 0 most salient
    labels = prior_patch_division(saliency, grid=4, per_region=4, size=(4, 4))
    expected = np.repeat(np.arange(4), 4).reshape(4, 4)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, expected)
    # Larger output: each cell becomes 2x2 pixels.
    big = prior_patch_division(saliency, grid=4, per_region=4, size=(8, 8))
    np.testing.assert_array_equal(big, np.kron(expected, np.ones((2, 2), int)))
    # Larger saliency map, averaged down to the same 4x4 cells.
    upsampled = np.kron(saliency, np.ones((2, 2)))
    np.testing.assert_array_equal(
        prior_patch_division(upsampled, grid=4, per_region=4, size=(4, 4)), expected
    )


def test_prior_patch_uses_cell_means_not_maxima():
    # 2x2 cells with means TL 1, TR 4, BL 3, BR 2; BR's maximum (8) beats BL's (3).
    saliency = np.array(
        [
            [0, 2, 8, 0],
            [1, 1, 0, 8],
            [3, 3, 0, 0],
            [3, 3, 0, 8],
        ],
        dtype=np.float32,
    )
    labels = prior_patch_division(saliency, grid=2, per_region=1, size=(4, 4))
    expected = np.kron(np.array([[3, 0], [1, 2]]), np.ones((2, 2), int))
    np.testing.assert_array_equal(labels, expected)


def test_prior_patch_ties_and_remainder():
    # All cells tie -> cell (row-major) order; 9 cells / 4 -> regions of 4, 4, 1.
    cells = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    labels = prior_patch_division(np.zeros((3, 3)), grid=3, per_region=4, size=(3, 3))
    np.testing.assert_array_equal(labels, cells.reshape(3, 3))
    # Output size not divisible by the grid: same boundaries as grid_division.
    labels = prior_patch_division(np.zeros((6, 6)), grid=3, per_region=4, size=(7, 5))
    np.testing.assert_array_equal(labels, cells[grid_division(7, 5, 3, 3)])


@pytest.mark.parametrize("grid, per_region, n", [(10, 4, 25), (14, 4, 49), (28, 8, 98)])
def test_prior_patch_published_counts(grid, per_region, n):
    saliency = np.random.default_rng(4).random((56, 56))
    labels = prior_patch_division(saliency, grid, per_region, (224, 224))
    assert assert_division(labels, (224, 224)) == n


def test_prior_patch_bad_arguments():
    bad = np.ones((4, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"saliency must be finite"):
        prior_patch_division(bad, 2, 1, (4, 4))
    with pytest.raises(ValueError, match=r"saliency must be a non-empty 2-D array"):
        prior_patch_division(np.ones((4, 4, 3)), 2, 1, (4, 4))
    with pytest.raises(ValueError, match=r"grid must be <= both sides"):
        prior_patch_division(np.ones((4, 4)), 5, 1, (4, 8))
    with pytest.raises(ValueError, match=r"per_region must be >= 1"):
        prior_patch_division(np.ones((4, 4)), 2, 0, (4, 4))
    with pytest.raises(ValueError, match=r"size must be a \(height, width\) pair"):
        prior_patch_division(np.ones((4, 4)), 2, 1, 4)


# --------------------------------------------------------------------------
# Label-map helpers
# --------------------------------------------------------------------------


def test_merge_into_longest_border():
    labels = np.array(
        [
            [0, 0, 0, 0, 0],
            [1, 1, 2, 3, 3],
            [1, 1, 3, 3, 3],
        ]
    )
    # Region 2 (1 px) borders 0 once, 1 once and 3 twice -> joins 3.
    expected = np.array(
        [
            [0, 0, 0, 0, 0],
            [1, 1, 2, 2, 2],
            [1, 1, 2, 2, 2],
        ]
    )
    merged = merge_small_regions(labels, min_area=2)
    assert merged.dtype == np.int32
    np.testing.assert_array_equal(merged, expected)


def test_merge_border_tie_goes_to_smallest_label():
    labels = np.array([[2, 2, 2], [2, 0, 3], [3, 3, 3]])  # 0 borders 2 twice and 3 twice
    np.testing.assert_array_equal(
        merge_small_regions(labels, min_area=2), [[0, 0, 0], [0, 0, 1], [1, 1, 1]]
    )


def test_merge_smallest_region_first():
    # Region 2 (1 px) goes first and joins 1, which then reaches 3 px and stays.
    # (Merging 1 first would tie 0/2 -> 0, and 2 would then join 0 as well.)
    labels = np.array([[2, 1, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(merge_small_regions(labels, min_area=3), [[1, 1, 1, 0, 0, 0, 0]])


def test_merge_whole_image_and_no_op():
    np.testing.assert_array_equal(merge_small_regions(np.zeros((2, 3), int), 100), np.zeros((2, 3)))
    assert check_division(merge_small_regions(np.array([[0, 1], [1, 1]]), 100)) == 1
    # min_area <= 1 only relabels.
    np.testing.assert_array_equal(merge_small_regions(np.array([[5, 5], [9, -1]]), 1), [[1, 1], [2, 0]])


def test_merge_removes_speckles_fast():
    grid = grid_division(224, 224, 8, 8)  # 28 px cells
    speckled = grid.copy()
    rng = np.random.default_rng(5)
    # One-pixel speckles strictly inside cells, never adjacent to each other.
    ys, xs = np.meshgrid(np.arange(2, 224, 4), np.arange(2, 224, 4), indexing="ij")
    interior = (ys % 28 > 0) & (ys % 28 < 27) & (xs % 28 > 0) & (xs % 28 < 27)
    sel = interior & (rng.random(ys.shape) < 0.3)
    speckled[ys[sel], xs[sel]] = 1000 + np.arange(np.count_nonzero(sel))
    assert check_division(relabel_consecutive(speckled)) > 64 + 500
    start = time.perf_counter()
    merged = merge_small_regions(speckled, min_area=25)
    assert time.perf_counter() - start < 2.0  # observed ~10 ms
    np.testing.assert_array_equal(merged, grid)


def test_relabel_consecutive_sorted_order():
    labels = np.array([[10, -3], [10, 7]], dtype=np.int64)
    out = relabel_consecutive(labels)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[2, 0], [2, 1]])


def test_region_areas():
    np.testing.assert_allclose(region_areas(np.array([[0, 0, 1, 2]])), [0.5, 0.25, 0.25])


def test_check_division_errors():
    assert check_division(np.array([[0, 1], [2, 1]], dtype=np.uint8)) == 3
    with pytest.raises(ValueError, match=r"labels must use every value 0..2; label 1 is missing"):
        check_division(np.array([[0, 2]]))
    with pytest.raises(ValueError, match=r"labels must be >= 0, found -1"):
        check_division(np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"labels must have an integer dtype, got float64"):
        check_division(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"labels must be 2-D \(H, W\), got shape \(2, 2, 1\)"):
        check_division(np.zeros((2, 2, 1), int))
    with pytest.raises(ValueError, match=r"labels must be a numpy array, got list"):
        check_division([[0]])
    with pytest.raises(ValueError, match=r"labels must be non-empty"):
        check_division(np.zeros((0, 3), int))
    with pytest.raises(ValueError, match=r"min_area must be >= 0"):
        merge_small_regions(np.zeros((2, 2), int), -1)
