"""Result files: round trip, compact rank map, atomic writes, resume marker, folder names."""
import json

import numpy as np
import pytest
import torch

from submodular_attribution.objective import Weights
from submodular_attribution.common.provenance import write_provenance
from submodular_attribution.common.results import (
    cumulative_areas, is_finished, load_result, rank_map, result_paths, save_result)
from submodular_attribution.records import build_record, run_folder_name
from submodular_attribution.search import explain
from tests.conftest import TinyScorer, random_labels


def test_run_folder_names_follow_the_original_convention():
    w = Weights.from_positional(0, 0.05, 1, 1)
    assert run_folder_name("slico", w, "greedy") == "slico-0.0-0.05-1.0-1.0"
    assert run_folder_name("slico", w, "bidirectional") == "slico-0.0-0.05-1.0-1.0-pending-samples-8"
    assert run_folder_name("slico", w, "bidirectional", {"pending_samples": 4}) == \
        "slico-0.0-0.05-1.0-1.0-pending-samples-4"
    assert run_folder_name("seeds", w, "random", seed=3) == "seeds-0.0-0.05-1.0-1.0-random-seed-3"


def test_rank_map_encodes_division_and_order():
    labels = np.array([[0, 0, 1], [2, 2, 1]])
    ranks = rank_map(labels, [2, 0, 1])
    assert ranks.dtype == np.int16
    assert ranks.tolist() == [[1, 1, 2], [0, 0, 2]]
    assert np.array_equal(np.array([2, 0, 1])[ranks], labels)  # labels = order[rank_map]
    assert cumulative_areas(ranks).tolist() == pytest.approx([2 / 6, 4 / 6, 1.0])


def test_cumulative_areas_of_original_format():
    regions = np.zeros((2, 2, 2, 3), np.uint8)
    regions[0, 0, 0] = 9  # first region: 1 pixel
    regions[1, 1, :] = 5  # second: 2 pixels
    assert cumulative_areas(regions).tolist() == pytest.approx([0.25, 0.75])
    with pytest.raises(ValueError, match="unrecognised result array"):
        cumulative_areas(np.zeros(3))


def test_round_trip_and_resume_marker(tmp_path):
    labels = random_labels(4, 5, 6, seed=1)
    w = Weights(0, 0.05, 1, 1)
    trace = explain(TinyScorer(20), torch.rand(3, 4, 5), labels, 1, w)
    record, ranks = build_record(trace, labels.numpy(), w, image="a/b c.png", class_name="1",
                                 division={"algorithm": "grid"}, search="greedy")
    assert not is_finished(tmp_path, "1", "b c")
    save_result(tmp_path, "1", "b c", record, ranks)
    assert is_finished(tmp_path, "1", "b c")
    loaded = load_result(result_paths(tmp_path, "1", "b c")[0])
    assert loaded.record == json.loads(json.dumps(record))
    for key in ("consistency_score", "collaboration_score", "smdl_score", "lambda1", "lambda2", "lambda3",
                "lambda4", "smdl_score_max", "smdl_score_max_index", "org_score", "baseline_score"):
        assert key in loaded.record
    assert loaded.record["smdl_score_max"] == max(record["smdl_score"])
    assert np.array_equal(np.asarray(trace.order)[loaded.npy], labels.numpy())
    assert loaded.areas[-1] == pytest.approx(1.0)
    assert ranks.nbytes == 4 * 5 * 2  # one int16 per pixel, not N images
    assert not list(tmp_path.rglob("*.tmp"))


def test_half_written_result_is_not_finished(tmp_path):
    json_path, npy_path = result_paths(tmp_path, "0", "x")
    npy_path.parent.mkdir(parents=True)
    np.save(npy_path, np.zeros((2, 2), np.int16))
    assert not is_finished(tmp_path, "0", "x")  # npy without JSON: interrupted between the two writes
    json_path.parent.mkdir(parents=True)
    json_path.write_text('{"consistency_score": [0.1')  # truncated by a crash of another writer
    assert not is_finished(tmp_path, "0", "x")


def test_provenance_appends_one_line_per_invocation(tmp_path):
    write_provenance(tmp_path, {"search": "greedy"})
    write_provenance(tmp_path, {"search": "greedy", "begin": 5})
    lines = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["arguments"]["begin"] == 5
    assert {"command", "argv", "package_version", "git_commit"} <= lines[0].keys()


def test_source_fingerprint_follows_the_numeric_code_only(tmp_path):
    from submodular_attribution.common.provenance import source_fingerprint

    for name in ("submodular_attribution", "baseline_attribution", "evals", "visualization", "tests"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("docs\n")
    first = source_fingerprint(tmp_path)
    assert first.startswith("sources:") and len(first) == len("sources:") + 12
    for unrelated in ("README.md", "visualization/a.py", "tests/a.py"):
        (tmp_path / unrelated).write_text("changed\n")
        assert source_fingerprint(tmp_path) == first, unrelated
    (tmp_path / "evals" / "a.py").write_text("x = 2\n")
    second = source_fingerprint(tmp_path)
    assert second != first
    (tmp_path / "evals" / "a.py").rename(tmp_path / "evals" / "b.py")  # same content, another file
    assert source_fingerprint(tmp_path) not in (first, second)
    assert source_fingerprint() == source_fingerprint()  # the installed sources: deterministic
