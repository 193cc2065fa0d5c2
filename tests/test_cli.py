"""The shared command line on tiny images: outputs, resume, sharding, bad input, and long runs
that survive their bad items."""
import json
import os

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from evals.auc import summarize_run
from submodular_attribution.cli import SMDLTask, main
from submodular_attribution.families import ModelTask
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.objective import Weights
from submodular_attribution.common.results import find_result_files, load_result


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


def _task(tmp_path, net=TinyNet, **overrides):
    model = ModelTask(name="tiny", description="test task", input_size=(32, 32),
                      build_scorer=lambda args, device, embeddings: ClassifierScorer(net()))
    config = dict(model=model, region_size=8, weights=Weights(0.0, 0.05, 1.0, 1.0),
                  save_dir=str(tmp_path / "results"))
    config.update(overrides)
    return SMDLTask(**config)


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
    # greedy: N(N+1), the first step's one-region insertions being the N embedding forwards
    assert first.record["forward_passes"] == first.record["num_regions"] * (first.record["num_regions"] + 1)
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


def test_a_run_folder_refuses_results_of_another_region_size(tmp_path, tiny_list, capsys):
    # the folder name omits the region size: resuming with another one would mix two divisions
    task = _task(tmp_path)
    assert _run(task, tiny_list, "--end", "1") == 0
    run_dir = tmp_path / "results" / "slico-0.0-0.05-1.0-1.0"
    capsys.readouterr()
    assert _run(task, tiny_list, "--region-size", "6") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {run_dir} holds results made with the division {{'algorithm': 'slico', 'region_size': 8}}, "
                   "not {'algorithm': 'slico', 'region_size': 6}; use another --save-dir (or remove that folder) so "
                   "the two do not mix"]
    assert len(find_result_files(run_dir)) == 1
    assert _run(task, tiny_list, "--region-size", "6", "--save-dir", str(tmp_path / "other")) == 0
    assert _run(task, tiny_list, "--end", "2") == 0  # the same division resumes
    assert len(find_result_files(run_dir)) == 2


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


def _failures(run_dir):
    return [json.loads(line) for line in (run_dir / "failures.jsonl").read_text().splitlines()]


def test_bad_items_in_the_middle_are_recorded_and_skipped(tmp_path, tiny_list, capsys):
    imgs = tiny_list.parent / "imgs"
    (imgs / "bad.png").write_bytes(b"not an image at all")
    good = (imgs / "photo 0.png").read_bytes()
    (imgs / "cut.png").write_bytes(good[: len(good) // 2])  # a truncated download
    lines = tiny_list.read_text().splitlines()
    tiny_list.write_text("\n".join([lines[0], "imgs/nope.png 1", "imgs/bad.png 0", "imgs/cut.png 2", *lines[1:]]))
    assert _run(_task(tmp_path), tiny_list) == 1  # non-zero at the end, after the rest ran
    err = capsys.readouterr().err
    run_dir = tmp_path / "results" / "slico-0.0-0.05-1.0-1.0"
    assert len(find_result_files(run_dir)) == 3  # every good image explained
    failures = _failures(run_dir)
    assert [f["image"] for f in failures] == ["imgs/nope.png", "imgs/bad.png", "imgs/cut.png"]
    assert [f["list_line"] for f in failures] == [2, 3, 4]
    assert "image not found" in failures[0]["reason"]
    assert "cannot be read as an image" in failures[1]["reason"]
    assert "truncated or corrupt" in failures[2]["reason"]
    assert "failed (list line 2): " in err and "nope.png: image not found" in err
    assert "3 of 6 items failed" in err
    # --strict stops at the first failure with one error line
    assert _run(_task(tmp_path), tiny_list, "--strict") == 2
    assert "--strict stops at the first failure" in _error(capsys)


def test_a_failure_while_explaining_is_recorded_too(tmp_path, tiny_list, capsys):
    from submodular_attribution.common.images import image_tensor, load_image_rgb

    photo = image_tensor(load_image_rgb(tiny_list.parent / "imgs/photo 1.png", (32, 32)))
    full = ClassifierScorer(TinyNet()).model_input(photo[None])[0]

    class Fragile(TinyNet):
        broken = True

        def forward_features(self, x):  # fails on any batch with the second image of the list, while broken
            if Fragile.broken and torch.isclose(x, full).flatten(1).all(1).any():
                raise RuntimeError("CUDA out of memory (simulated)")
            return super().forward_features(x)

    task = _task(tmp_path, net=Fragile, weights=Weights(0.0, 0.0, 1.0, 1.0))
    assert _run(task, tiny_list, "--images-at-once", "1") == 1  # retried alone, the failure is its own
    run_dir = tmp_path / "results" / "slico-0.0-0.0-1.0-1.0"
    assert [f["image"] for f in _failures(run_dir)] == ["imgs/photo 1.png"]
    assert _failures(run_dir)[0]["reason"] == "RuntimeError: CUDA out of memory (simulated)"
    assert len(find_result_files(run_dir)) == 2
    Fragile.broken = False
    assert _run(task, tiny_list, "--images-at-once", "1") == 0  # the rerun finishes only what is missing
    assert len(find_result_files(run_dir)) == 3


def test_a_failing_image_among_images_explained_together_costs_only_itself(tmp_path, tiny_list, capsys):
    from submodular_attribution.common.images import image_tensor, load_image_rgb

    photo = image_tensor(load_image_rgb(tiny_list.parent / "imgs/photo 1.png", (32, 32)))
    corner = ClassifierScorer(TinyNet()).model_input(photo[None])[0, :, 0, 0]

    class Fragile(TinyNet):
        def forward_features(self, x):  # fails on any batch that holds photo 1's top-left region
            if torch.isclose(x[:, :, 0, 0], corner).all(dim=1).any():
                raise RuntimeError("corrupt tensor (simulated)")
            return super().forward_features(x)

    task = _task(tmp_path, net=Fragile, weights=Weights(0.0, 0.0, 1.0, 1.0))
    assert _run(task, tiny_list) == 1  # the default explains the three images together
    run_dir = tmp_path / "results" / "slico-0.0-0.0-1.0-1.0"
    assert [f["image"] for f in _failures(run_dir)] == ["imgs/photo 1.png"]
    assert sorted(f.name for f in find_result_files(run_dir)) == ["photo 0.json", "photo 2.json"]


def test_a_task_can_publish_its_search_and_options(tmp_path, tiny_list):
    task = _task(tmp_path, weights=Weights(0.0, 0.0, 1.0, 1.0), search="bidirectional",
                 search_options={"pending_samples": 3})
    results = tmp_path / "results"
    assert _run(task, tiny_list, "--end", "1") == 0
    assert _run(task, tiny_list, "--end", "1", "--pending-samples", "5") == 0  # the flag wins
    assert _run(task, tiny_list, "--end", "1", "--search", "greedy") == 0
    assert sorted(p.name for p in results.iterdir()) == [
        "slico-0.0-0.0-1.0-1.0", "slico-0.0-0.0-1.0-1.0-pending-samples-3", "slico-0.0-0.0-1.0-1.0-pending-samples-5"]


def test_progress_lines_show_in_logs(tmp_path, tiny_list, capsys):
    assert _run(_task(tmp_path), tiny_list) == 0
    err = capsys.readouterr().err  # not a terminal: lines instead of a bar
    assert "tiny greedy: 3/3 images" in err and "img/s" in err and "left" in err


def test_uncreatable_save_dir_is_one_line(tmp_path, tiny_list, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _run(_task(tmp_path), tiny_list, "--save-dir", str(blocker / "results")) == 2
    err = _error(capsys)
    assert err.startswith("error: --save-dir") and "cannot create the folder" in err


def test_one_region_is_an_error_naming_the_flag(tmp_path, tiny_list, capsys):
    assert _run(_task(tmp_path), tiny_list, "--region-size", "64") == 2
    err = _error(capsys)
    assert "--region-size 64 gives 1 region(s) on 32×32 inputs" in err and "--num-regions" in err


def test_num_regions_picks_the_size_for_the_input(tmp_path, tiny_list):
    assert _run(_task(tmp_path), tiny_list, "--end", "1", "--division", "grid", "--num-regions", "16") == 0
    record = load_result(find_result_files(tmp_path / "results" / "grid-0.0-0.05-1.0-1.0")[0]).record
    assert record["num_regions"] == 16 and record["division"]["region_size"] == 8


def test_near_chance_warning(tmp_path, tiny_list, capsys):
    class SureOfTwo(TinyNet):  # always sure of class 2
        def forward_head(self, f):
            return torch.tensor([-20.0, -20.0, 20.0]).expand(len(f), 3) + 0 * super().forward_head(f)

    tiny_list.write_text("imgs/photo 0.png 0\nimgs/photo 1.png 1\n")  # p_t ≈ 0 for both
    assert _run(_task(tmp_path, net=SureOfTwo), tiny_list) == 0
    err = capsys.readouterr().err
    assert "near chance" in err and "--input-size" in err
    tiny_list.write_text("imgs/photo 0.png 2\nimgs/photo 1.png 2\n")  # p_t ≈ 1: no warning
    assert _run(_task(tmp_path / "b", net=SureOfTwo), tiny_list) == 0
    assert "near chance" not in capsys.readouterr().err


def test_help_shows_true_defaults_and_only_smdl_flags(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(_task(tmp_path), ["--help"])
    out = capsys.readouterr().out
    assert "--region-size REGION_SIZE" in out and "(default: 8)" in out
    assert "--lambda3" in out and "--sam-masks" in out and "--strict" in out


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


def test_default_folders_follow_the_current_directory(tmp_path, monkeypatch, capsys):
    from submodular_attribution import smdl_explanation_shapes
    from submodular_attribution.common import paths

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMDL_HOME", raising=False)
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside the paths
    assert paths.ckpt_dir() == tmp_path / "ckpt"
    with pytest.raises(SystemExit):
        smdl_explanation_shapes.main(["--help"])
    out = capsys.readouterr().out
    assert f"{tmp_path}/submodular_results/shapes-cnn" in out and f"{tmp_path}/datasets/shapes" in out
    assert f"{paths.EMBEDDED_DIR}/shapes_cnn.pt" in out  # the shipped weights, wherever the run is
    monkeypatch.setenv("SMDL_HOME", str(tmp_path / "home"))
    assert paths.results_dir() == tmp_path / "home" / "submodular_results"


def _records(run_dir):
    return {f.name: load_result(f).record for f in find_result_files(run_dir)}


def test_images_at_once_and_workers_give_the_same_results(tmp_path, tiny_list):
    task = _task(tmp_path, weights=Weights(0.0, 0.0, 1.0, 1.0))
    assert _run(task, tiny_list, "--search", "fast", "--save-dir", str(tmp_path / "one"), "--images-at-once", "1") == 0
    assert _run(task, tiny_list, "--search", "fast", "--save-dir", str(tmp_path / "three"),
                "--images-at-once", "3", "--workers", "2") == 0
    one, three = (_records(tmp_path / d / "slico-0.0-0.0-1.0-1.0-fast") for d in ("one", "three"))
    assert one.keys() == three.keys() and len(one) == 3
    for name in one:
        for key in ("region_order", "consistency_score", "collaboration_score", "forward_passes"):
            assert one[name][key] == pytest.approx(three[name][key], abs=1e-12), key


def test_search_options_precision_and_folder_names(tmp_path, tiny_list):
    task = _task(tmp_path, weights=Weights(0.0, 0.0, 1.0, 1.0))
    assert _run(task, tiny_list, "--end", "1", "--search", "lazy", "--lazy-top", "3", "--refresh-every", "0") == 0
    record = _records(tmp_path / "results" / "slico-0.0-0.0-1.0-1.0-lazy-0-3-1-0-0")["photo 0.json"]
    assert record["search"] == {"name": "lazy", "refresh_every": 0, "lazy_top": 3, "exact_steps": 1,
                                "early_top": 0, "early_steps": 0}
    assert _run(task, tiny_list, "--end", "1", "--search", "greedy", "--precision", "bf16",
                "--save-dir", str(tmp_path / "bf16")) == 0
    bf16 = _records(tmp_path / "bf16" / "slico-0.0-0.0-1.0-1.0")["photo 0.json"]
    assert _run(task, tiny_list, "--end", "1", "--search", "greedy", "--save-dir", str(tmp_path / "fp32")) == 0
    fp32 = _records(tmp_path / "fp32" / "slico-0.0-0.0-1.0-1.0")["photo 0.json"]
    # bf16 logits: probabilities within bf16's precision of fp32's, but not bit-equal (autocast ran)
    a, b = np.array(bf16["consistency_score"]), np.array(fp32["consistency_score"])
    assert np.allclose(a, b, atol=0.02) and not np.array_equal(a, b)


def test_bad_search_options_are_input_errors(tmp_path, tiny_list, capsys):
    assert _run(_task(tmp_path), tiny_list, "--search", "lazy", "--lazy-top", "0") == 2
    assert "--lazy-top must be ≥ 1" in _error(capsys)
    assert _run(_task(tmp_path), tiny_list, "--search", "staged", "--saturation", "-0.5") == 2
    assert "--saturation must be ≥ 0, got -0.5" in _error(capsys)
    assert _run(_task(tmp_path), tiny_list, "--images-at-once", "0") == 2
    assert "--images-at-once must be ≥ 1" in _error(capsys)
