"""Area-based insertion/deletion AUC, its CLI, and the explanation figures.

Result folders are built by hand on tiny images with regions of unequal areas, so the
expected AUCs are trapezoid sums written out below.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evals.auc import summarize_run
from submodular_attribution.common.curves import deletion_curve, insertion_curve, trapezoid_auc
from evals.eval_AUC_faithfulness import main
from submodular_attribution.objective import Weights
from submodular_attribution.common.results import load_result, result_paths, save_result
from submodular_attribution.records import build_record
from submodular_attribution.search import SearchTrace

# --- original format: 4×4 image, regions in order of 4, 4, 6, 2 pixels --------------------
# Rank of each pixel (rank 2 spans row 2 and half of row 3).
ORIGINAL_RANKS = np.array(
    [
        [0, 0, 0, 0],
        [1, 1, 1, 1],
        [2, 2, 2, 2],
        [2, 2, 3, 3],
    ]
)
ORIGINAL_SCORES = {
    "consistency_score": [0.3, 0.5, 0.8, 0.9],
    "collaboration_score": [0.2, 0.4, 0.7, 0.95],
    "org_score": 0.9,
    "baseline_score": 0.1,
}
# areas 4/16, 8/16, 14/16, 16/16 = 0.25, 0.5, 0.875, 1.0
ORIGINAL_INSERTION = (
    0.25 * (0.1 + 0.3) / 2 + 0.25 * (0.3 + 0.5) / 2 + 0.375 * (0.5 + 0.8) / 2 + 0.125 * (0.8 + 0.9) / 2
)  # = 0.5
ORIGINAL_DELETION = (
    0.25 * (0.9 + 0.8) / 2 + 0.25 * (0.8 + 0.6) / 2 + 0.375 * (0.6 + 0.3) / 2 + 0.125 * (0.3 + 0.05) / 2
)  # = 0.578125

# --- our format: 4×4 label map, order [2, 0, 3, 1] with 2, 6, 4, 4 pixels ----------------
OUR_LABELS = np.array(
    [
        [2, 2, 0, 0],
        [0, 0, 0, 0],
        [3, 3, 3, 3],
        [1, 1, 1, 1],
    ]
)
OUR_ORDER = [2, 0, 3, 1]
OUR_CONSISTENCY = [0.4, 0.6, 0.7, 0.8]
OUR_COLLABORATION = [0.5, 0.6, 0.9, 0.9]
# areas 2/16, 8/16, 12/16, 16/16 = 0.125, 0.5, 0.75, 1.0; baseline 0.2, org 0.8
OUR_INSERTION = 0.125 * (0.2 + 0.4) / 2 + 0.375 * (0.4 + 0.6) / 2 + 0.25 * (0.6 + 0.7) / 2 + 0.25 * (0.7 + 0.8) / 2
OUR_DELETION = 0.125 * (0.8 + 0.5) / 2 + 0.375 * (0.5 + 0.4) / 2 + 0.25 * (0.4 + 0.1) / 2 + 0.25 * (0.1 + 0.1) / 2


def region_images(ranks: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The original format's npy: N×H×W×3 uint8, image k nonzero exactly on region k."""
    n = int(ranks.max()) + 1
    # Never black inside a region: the format's reader cannot see (0,0,0) region pixels.
    visible = np.maximum(image, 1).astype(np.uint8)
    return np.stack([np.where((ranks == k)[..., None], visible, 0) for k in range(n)]).astype(np.uint8)


def write_original(run_dir: Path, stem: str, ranks: np.ndarray, scores: dict, image: np.ndarray | None = None) -> Path:
    """One image in the original code's format, written by hand (no region_areas)."""
    if image is None:
        image = np.full(ranks.shape + (3,), 200, dtype=np.uint8)
    json_path, npy_path = result_paths(run_dir, "n01440764", stem)
    npy_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy_path, region_images(ranks, image))
    n = int(ranks.max()) + 1
    record = {
        **scores,
        "smdl_score": [0.1 * (k + 1) for k in range(n)],
        "lambda1": 0.0,
        "lambda2": 0.05,
        "lambda3": 1.0,
        "lambda4": 1.0,
    }
    json_path.write_text(json.dumps(record))
    return json_path


def write_ours(
    run_dir: Path,
    stem: str,
    labels: np.ndarray,
    order: list[int],
    consistency: list[float],
    collaboration: list[float],
    org: float,
    baseline: float,
    forward_passes: int = 10,
) -> Path:
    """One image in our rank-map format, through build_record / save_result."""
    n = len(order)
    trace = SearchTrace(
        order=order,
        consistency=np.array(consistency),
        collaboration=np.array(collaboration),
        confidence=np.zeros(n),
        effectiveness=None,
        smdl_score=np.array(consistency) + np.array(collaboration),
        target=3,
        org_score=org,
        baseline_score=baseline,
        forward_passes=forward_passes,
        seconds=0.5,
    )
    record, ranks = build_record(
        trace,
        labels,
        Weights(),
        image=f"{stem}.png",
        class_name="n01440764",
        division={"name": "test"},
        search="greedy",
    )
    return save_result(run_dir, "n01440764", stem, record, ranks)


def write_our_image(run_dir: Path, stem: str = "ours") -> Path:
    return write_ours(run_dir, stem, OUR_LABELS, OUR_ORDER, OUR_CONSISTENCY, OUR_COLLABORATION, org=0.8, baseline=0.2)


# ---------------------------------------------------------------- curves and AUC


def test_trapezoid_auc_known_values():
    assert trapezoid_auc([0.0, 1.0], [0.0, 1.0]) == pytest.approx(0.5)
    assert trapezoid_auc([0.0, 0.25, 1.0], [1.0, 1.0, 0.0]) == pytest.approx(0.25 + 0.75 * 0.5)
    assert trapezoid_auc([0.0], [0.7]) == 0.0
    with pytest.raises(ValueError):
        trapezoid_auc([0.0, 1.0], [1.0])


def test_original_format_curves_and_auc(tmp_path):
    json_path = write_original(tmp_path, "orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    result = load_result(json_path)
    x, y = insertion_curve(result)
    np.testing.assert_allclose(x, [0.0, 0.25, 0.5, 0.875, 1.0])
    np.testing.assert_allclose(y, [0.1, 0.3, 0.5, 0.8, 0.9])
    x, y = deletion_curve(result)
    np.testing.assert_allclose(x, [0.0, 0.25, 0.5, 0.875, 1.0])
    np.testing.assert_allclose(y, [0.9, 0.8, 0.6, 0.3, 0.05])
    assert ORIGINAL_INSERTION == pytest.approx(0.5)
    assert ORIGINAL_DELETION == pytest.approx(0.578125)
    summary = summarize_run(tmp_path)
    assert summary["num_images"] == 1
    assert summary["insertion_auc"] == pytest.approx(ORIGINAL_INSERTION)
    assert summary["deletion_auc"] == pytest.approx(ORIGINAL_DELETION)
    assert summary["insertion_auc_std"] is None and summary["deletion_auc_sem"] is None
    assert summary["forward_passes"] is None and summary["seconds"] is None


def test_our_format_curves_and_auc(tmp_path):
    result = load_result(write_our_image(tmp_path))
    x, y = insertion_curve(result)
    np.testing.assert_allclose(x, [0.0, 0.125, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(y, [0.2, 0.4, 0.6, 0.7, 0.8])
    _, y = deletion_curve(result)
    np.testing.assert_allclose(y, [0.8, 0.5, 0.4, 0.1, 0.1])
    assert trapezoid_auc(*insertion_curve(result)) == pytest.approx(OUR_INSERTION)
    assert trapezoid_auc(*deletion_curve(result)) == pytest.approx(OUR_DELETION)
    assert OUR_INSERTION == pytest.approx(0.575) and OUR_DELETION == pytest.approx(0.3375)


def test_summary_of_mixed_folder(tmp_path):
    write_original(tmp_path, "a_orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    write_our_image(tmp_path, "b_ours")
    summary = summarize_run(tmp_path)
    assert summary["run_dir"] == str(tmp_path)
    assert summary["num_images"] == 2
    assert summary["insertion_auc"] == pytest.approx((ORIGINAL_INSERTION + OUR_INSERTION) / 2)
    assert summary["deletion_auc"] == pytest.approx((ORIGINAL_DELETION + OUR_DELETION) / 2)
    # Sample std of two values is |a − b|/√2; the SEM divides by √2 again.
    assert summary["insertion_auc_std"] == pytest.approx(abs(ORIGINAL_INSERTION - OUR_INSERTION) / math.sqrt(2))
    assert summary["deletion_auc_sem"] == pytest.approx(abs(ORIGINAL_DELETION - OUR_DELETION) / 2)
    # Only our record stores these, so the mean is over that one.
    assert summary["forward_passes"] == pytest.approx(10)
    assert summary["seconds"] == pytest.approx(0.5)
    assert [p["json"] for p in summary["per_image"]] == ["json/n01440764/a_orig.json", "json/n01440764/b_ours.json"]
    assert summary["per_image"][1]["insertion_auc"] == pytest.approx(OUR_INSERTION)
    json.dumps(summary)  # serialisable as is


def test_original_folder_without_reference_scores_takes_them_from_the_last_step(tmp_path):
    scores = {k: v for k, v in ORIGINAL_SCORES.items() if k not in ("org_score", "baseline_score")}
    result = load_result(write_original(tmp_path, "orig", ORIGINAL_RANKS, scores))
    # p_t(black) = 1 − collaboration after all regions; p_t(image) = consistency after all regions
    assert insertion_curve(result)[1][0] == pytest.approx(1 - ORIGINAL_SCORES["collaboration_score"][-1])
    assert deletion_curve(result)[1][0] == pytest.approx(ORIGINAL_SCORES["consistency_score"][-1])
    assert summarize_run(tmp_path)["num_images"] == 1


def test_length_mismatch_names_file(tmp_path):
    scores = {**ORIGINAL_SCORES, "consistency_score": [0.3, 0.5, 0.8]}
    json_path = write_original(tmp_path, "orig", ORIGINAL_RANKS, scores)
    with pytest.raises(ValueError, match="consistency_score") as info:
        insertion_curve(load_result(json_path))
    assert str(json_path) in str(info.value)


def test_empty_folder(tmp_path):
    (tmp_path / "json").mkdir()
    with pytest.raises(ValueError, match="no result JSONs found"):
        summarize_run(tmp_path)


# ---------------------------------------------------------------- CLI


def test_cli_prints_the_two_lines(tmp_path, capsys):
    write_original(tmp_path, "a_orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    write_our_image(tmp_path, "b_ours")
    assert main(["--explanation-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    insertion = (ORIGINAL_INSERTION + OUR_INSERTION) / 2
    deletion = (ORIGINAL_DELETION + OUR_DELETION) / 2
    assert out.splitlines() == [f"Insertion AUC Score: {insertion:.4f}", f"Deletion AUC Score: {deletion:.4f}"]
    assert out.splitlines() == ["Insertion AUC Score: 0.5375", "Deletion AUC Score: 0.4578"]
    assert "2 images" in err


def test_cli_json_line(tmp_path, capsys):
    write_original(tmp_path, "a_orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    write_our_image(tmp_path, "b_ours")
    assert main(["--explanation-dir", str(tmp_path), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    summary = json.loads(lines[2])
    assert summary["insertion_auc"] == pytest.approx((ORIGINAL_INSERTION + OUR_INSERTION) / 2)
    assert summary["deletion_auc"] == pytest.approx((ORIGINAL_DELETION + OUR_DELETION) / 2)
    assert summary["num_images"] == 2
    assert "per_image" not in summary

    assert main(["--explanation-dir", str(tmp_path), "--json", "--per-image"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[2])
    assert len(summary["per_image"]) == 2


def _bad_missing_dir(tmp_path: Path) -> Path:
    return tmp_path / "does-not-exist"


def _bad_no_json_dir(tmp_path: Path) -> Path:
    (tmp_path / "npy").mkdir()
    return tmp_path


def _bad_empty_json_dir(tmp_path: Path) -> Path:
    (tmp_path / "json" / "n01440764").mkdir(parents=True)
    return tmp_path


def _bad_unreadable_json(tmp_path: Path) -> Path:
    json_path = write_original(tmp_path, "orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    json_path.write_text("{not json")
    return json_path


def _bad_json_not_object(tmp_path: Path) -> Path:
    json_path = write_original(tmp_path, "orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    json_path.write_text("[1, 2]")
    return json_path


def _bad_truncated_npy(tmp_path: Path) -> Path:
    write_original(tmp_path, "orig", ORIGINAL_RANKS, ORIGINAL_SCORES)
    npy_path = result_paths(tmp_path, "n01440764", "orig")[1]
    npy_path.write_bytes(b"")
    return npy_path  # the culprit named in the error


@pytest.mark.parametrize(
    "make_bad",
    [
        _bad_missing_dir,
        _bad_no_json_dir,
        _bad_empty_json_dir,
    ],
)
def test_cli_bad_input(tmp_path, capsys, make_bad):
    named = make_bad(tmp_path)  # the path the error line must name
    assert main(["--explanation-dir", str(tmp_path if named.suffix in (".json", ".npy") else named)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert str(named) in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("make_bad", [_bad_unreadable_json, _bad_json_not_object, _bad_truncated_npy])
def test_cli_skips_an_unusable_result_file(tmp_path, capsys, make_bad):
    write_our_image(tmp_path, "good")
    named = make_bad(tmp_path)
    assert main(["--explanation-dir", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 1 and str(named) in warnings[0]
    summary = json.loads(out.splitlines()[-1])
    assert summary["num_images"] == 1 and summary["skipped"] == 1
    assert summary["insertion_auc"] == pytest.approx(OUR_INSERTION)
    assert f"Insertion AUC Score: {OUR_INSERTION:.4f}" in out
    # --strict: an error naming the file
    assert main(["--explanation-dir", str(tmp_path), "--strict"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error:") and str(named) in lines[-1]


def test_cli_folder_with_no_usable_result(tmp_path, capsys):
    named = _bad_unreadable_json(tmp_path)
    assert main(["--explanation-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert str(named) in err[0] and err[-1].startswith("error:") and "none of the 1 result files" in err[-1]


# ---------------------------------------------------------------- figures


def _synthetic_32(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray, np.ndarray]:
    """32×32 RGB image, 16 square regions (8×8 blocks), a random order and monotone scores."""
    image = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    labels = (np.arange(32)[:, None] // 8) * 4 + np.arange(32)[None, :] // 8
    order = rng.permutation(16).tolist()
    consistency = np.sort(rng.uniform(0.1, 0.9, 16))
    collaboration = np.sort(rng.uniform(0.1, 0.9, 16))
    return image, labels, order, consistency, collaboration


def test_ordering_heatmap_values():
    from submodular_attribution.common.results import rank_map_saliency as ordering_heatmap

    ranks = np.array([[0, 1], [3, 2]], dtype=np.int16)
    np.testing.assert_allclose(ordering_heatmap(ranks), [[1.0, 0.75], [0.25, 0.5]])
    np.testing.assert_allclose(ordering_heatmap(ranks, num_regions=8), [[1.0, 7 / 8], [5 / 8, 6 / 8]])


def test_rank_map_from_region_images_matches_ours():
    from submodular_attribution.common.results import rank_map_from_region_images

    image = np.full((4, 4, 3), 50, dtype=np.uint8)
    np.testing.assert_array_equal(rank_map_from_region_images(region_images(ORIGINAL_RANKS, image)), ORIGINAL_RANKS)
    # A pixel no region covers goes last.
    regions = region_images(ORIGINAL_RANKS, image)
    regions[:, 0, 0] = 0
    expected = ORIGINAL_RANKS.copy()
    expected[0, 0] = 3
    np.testing.assert_array_equal(rank_map_from_region_images(regions), expected)


def test_explanation_figure_our_format(tmp_path):
    from matplotlib.image import imread

    from visualization.overlay import save_explanation_figure

    image, labels, order, consistency, collaboration = _synthetic_32(np.random.default_rng(0))
    json_path = write_ours(tmp_path / "run", "img", labels, order, consistency, collaboration, org=0.9, baseline=0.05)
    out = save_explanation_figure(image, load_result(json_path), tmp_path / "figs" / "deep" / "img.png", title="test")
    assert out.is_file() and out.stat().st_size > 0
    pixels = imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert not list(out.parent.glob(".*.tmp"))  # the temp file was moved into place


def test_explanation_figure_original_format(tmp_path):
    from matplotlib.image import imread

    from visualization.overlay import save_explanation_figure

    rng = np.random.default_rng(1)
    image, labels, order, consistency, collaboration = _synthetic_32(rng)
    ranks = np.empty(16, dtype=int)
    ranks[order] = np.arange(16)
    scores = {
        "consistency_score": consistency.tolist(),
        "collaboration_score": collaboration.tolist(),
        "org_score": 0.9,
        "baseline_score": 0.05,
    }
    json_path = write_original(tmp_path / "run", "img", ranks[labels], scores, image=image)
    out = save_explanation_figure(image, load_result(json_path), tmp_path / "img.png", top_k=3)
    pixels = imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 100


def test_curves_figure(tmp_path):
    from matplotlib.image import imread

    from visualization.overlay import mean_curve, save_curves_figure

    x1, y1 = np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0])
    x2, y2 = np.array([0.0, 1.0]), np.array([0.0, 1.0])
    mean = mean_curve([(x1, y1), (x2, y2)])
    assert mean.shape == (101,)
    assert mean[25] == pytest.approx((0.5 + 0.25) / 2)  # area 0.25 on both curves
    out = save_curves_figure({"greedy": [(x1, y1), (x2, y2)], "random": [(x2, y2)]}, tmp_path / "c.png")
    assert imread(out).ndim == 3
