"""The shared command line on two tiny images: outputs, resume, sharding, bad input."""
import os

import cv2
import pytest
import skimage.data
import torch
from torch import nn

from evals.auc import summarize_run
from submodular_attribution.cli import TaskConfig, main
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.objective import Weights
from submodular_attribution.results import find_result_files, load_result


class TinyNet(nn.Module):
    num_classes = 3

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 5, stride=4)
        self.head = nn.Linear(8, 3)

    def forward_features(self, x):
        return self.conv(x).relu().mean((2, 3))

    def forward_head(self, f):
        return self.head(f)


def _task(tmp_path, **overrides):
    config = dict(
        name="tiny", description="test task", build_scorer=lambda args, device: ClassifierScorer(TinyNet()),
        input_size=(32, 32), region_size=8, weights=Weights(0.0, 0.05, 1.0, 1.0),
        save_dir=str(tmp_path / "results"))
    config.update(overrides)
    return TaskConfig(**config)


@pytest.fixture
def tiny_list(tmp_path):
    root = tmp_path / "data"
    (root / "imgs").mkdir(parents=True)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    lines = []
    for i, photo in enumerate(photos):
        name = f"imgs/photo {i}.png"  # a space in the file name
        cv2.imwrite(str(root / name), cv2.resize(photo[..., ::-1], (40, 30)))
        lines.append(f"{name} {i % 3}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


def _run(task, tiny_list, *extra):
    return main(task, ["--eval-list", str(tiny_list), "--device", "cpu", "--batch-size", "7", *extra])


def test_end_to_end_outputs_resume_and_evaluation(tmp_path, tiny_list, capsys):
    task = _task(tmp_path)
    assert _run(task, tiny_list, "--end", "2") == 0
    run_dir = tmp_path / "results" / "slico-0.0-0.05-1.0-1.0"
    files = find_result_files(run_dir)
    assert [f.relative_to(run_dir).as_posix() for f in files] == ["json/0/photo 0.json", "json/1/photo 1.json"]
    first = load_result(files[0])
    assert first.npy.shape == (32, 32) and first.record["num_regions"] == first.npy.max() + 1
    assert first.record["forward_passes"] == first.record["num_regions"] * (first.record["num_regions"] + 2)
    mtimes = [os.stat(f).st_mtime_ns for f in files]

    # --begin 2 --end -1 takes exactly the last line (the original dropped it)
    assert _run(task, tiny_list, "--begin", "2", "--end", "-1") == 0
    assert len(find_result_files(run_dir)) == 3
    # a rerun of everything skips the finished images
    assert _run(task, tiny_list) == 0
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    assert "3 of 3 images already done" in capsys.readouterr().err
    assert len((run_dir / "runs.jsonl").read_text().splitlines()) == 3
    summary = summarize_run(run_dir)
    assert summary["num_images"] == 3 and 0 <= summary["insertion_auc"] <= 1


def test_positional_and_named_lambdas_are_the_same_flags(tmp_path, tiny_list):
    task = _task(tmp_path)
    assert _run(task, tiny_list, "--end", "1", "--lambda1", "0.5", "--effectiveness-weight", "0") == 0
    run_dir = tmp_path / "results" / "slico-0.5-0.0-1.0-1.0"
    record = load_result(find_result_files(run_dir)[0]).record
    assert (record["lambda1"], record["lambda2"]) == (0.5, 0.0)
    assert record["effectiveness_score"] is None


def test_bidirectional_and_prediction_target(tmp_path, tiny_list):
    task = _task(tmp_path)
    assert _run(task, tiny_list, "--end", "1", "--search", "bidirectional", "--target", "prediction") == 0
    run_dir = tmp_path / "results" / "slico-0.0-0.05-1.0-1.0-pending-samples-8"
    record = load_result(find_result_files(run_dir)[0]).record
    assert record["search"] == {"name": "bidirectional", "pending_samples": 8}
    probs = ClassifierScorer(TinyNet())(torch.zeros(1, 3, 32, 32)).probs  # any input: checks range only
    assert 0 <= record["target"] < probs.shape[1]


def _error(capsys):
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_missing_image(tmp_path, tiny_list, capsys):
    tiny_list.write_text(tiny_list.read_text() + "imgs/nope.png 1\n")
    assert _run(_task(tmp_path), tiny_list) == 2
    err = _error(capsys)
    assert err.startswith("error: ") and "nope.png: image not found (line 4 of" in err


def test_unreadable_image(tmp_path, tiny_list, capsys):
    (tiny_list.parent / "imgs" / "bad.png").write_bytes(b"not an image at all")
    tiny_list.write_text("imgs/bad.png 0\n")
    assert _run(_task(tmp_path), tiny_list) == 2
    assert _error(capsys).endswith("bad.png: cannot be read as an image")


def test_wrong_class_index(tmp_path, tiny_list, capsys):
    tiny_list.write_text("imgs/photo 0.png 7\n")
    assert _run(_task(tmp_path), tiny_list) == 2
    assert "list.txt:1: class index 7 is outside 0..2" in _error(capsys)


def test_empty_list_and_bad_line(tmp_path, tiny_list, capsys):
    tiny_list.write_text("\n# only a comment\n")
    assert _run(_task(tmp_path), tiny_list) == 2
    assert _error(capsys).endswith("list.txt: evaluation list is empty")
    tiny_list.write_text("imgs/photo 0.png 0\nimgs/photo 1.png\n")
    assert _run(_task(tmp_path), tiny_list) == 2
    assert "list.txt:2: expected '<relative path> <class index>'" in _error(capsys)


def test_missing_list_and_bad_numbers(tmp_path, tiny_list, capsys):
    assert main(_task(tmp_path), ["--eval-list", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: evaluation list not found" in _error(capsys)
    assert _run(_task(tmp_path), tiny_list, "--batch-size", "0") == 2
    assert "--batch-size must be ≥ 1" in _error(capsys)
