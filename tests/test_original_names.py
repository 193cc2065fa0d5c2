"""The original SMDL-Attribution's script names, launchers and flags run here as our tasks, and the
attribution benchmark's train.py flags drive evals.finetune_id_sds."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evals import finetune_id_sds
from submodular_attribution import cli
from submodular_attribution.common.lists import read_eval_list
from submodular_attribution.original_names import (ORIGINAL_COMMANDS, ORIGINAL_LAUNCHERS, launcher_text,
                                                   run_original, translate)
from submodular_attribution.shapes import CLASS_NAMES, ShapesCNN
from submodular_attribution.tasks import TASK_NAMES
from test_cli import _run, _task, tiny_list  # noqa: F401 (a fixture)
from test_error_analysis import shapes_case  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "submodular_attribution"
SHIM = PACKAGE / "smdl_explanation_cub-sam.py"

# Every script of the original's submodular_attribution/ folder and every launcher of its scripts/ folder
# (read off its repository; the .cmd/.ps1 smoke tests and the empty quick_smoke_test.sh have no counterpart).
ORIGINAL_SCRIPTS = {
    "efficientv1-smdl_explanation_imagenet_clip_superpixel", "efficientv2-smdl_explanation_imagenet_imagebind_superpixel",
    "efficientv2-smdl_explanation_imagenet_languagebind_superpixel", "efficientv2-smdl_explanation_lung_quilt_superpixel",
    "smdl_explanation_celeba", "smdl_explanation_celeba_superpixel", "smdl_explanation_cub-sam",
    "smdl_explanation_cub-superpixel", "smdl_explanation_cub", "smdl_explanation_cub_fair-sam",
    "smdl_explanation_cub_fair-superpixel", "smdl_explanation_cub_fair", "smdl_explanation_imagenet_clip_superpixel",
    "smdl_explanation_imagenet_imagebind_superpixel", "smdl_explanation_imagenet_languagebind_superpixel",
    "smdl_explanation_lung_quilt_superpixel", "smdl_explanation_vgg", "smdl_explanation_vgg_superpixel",
    "vggsound_imagebind", "vggsound_languagebind"}
ORIGINAL_SCRIPT_LAUNCHERS = {
    "clip_multigpu", "efficientv2-imagebind_multigpu", "efficientv2-imagebind_multigpu_debug",
    "efficientv2-languagebind_multigpu", "efficientv2-languagebind_multigpu_debug", "imagebind_multigpu",
    "languagebinb_multigpu"}


def test_every_original_script_and_launcher_has_a_file_here():
    assert {p.stem for p in PACKAGE.glob("*.py")} >= ORIGINAL_SCRIPTS
    assert ORIGINAL_SCRIPTS - set(ORIGINAL_COMMANDS) == {"smdl_explanation_cub", "smdl_explanation_celeba"}  # ours
    assert set(ORIGINAL_LAUNCHERS) == ORIGINAL_SCRIPT_LAUNCHERS
    for name, entry in ORIGINAL_COMMANDS.items():
        assert entry.task is None or entry.task in TASK_NAMES, name
        assert (PACKAGE / f"{name}.py").read_text() == SHIM.read_text(), name  # all the same shim
    for name in ORIGINAL_LAUNCHERS:
        path = ROOT / "scripts" / f"{name}.sh"
        assert path.read_text() == launcher_text(name) and os.access(path, os.X_OK), name


def test_a_hyphenated_original_name_runs_with_python_m():
    done = subprocess.run([sys.executable, "-m", "submodular_attribution.smdl_explanation_cub-sam", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == ("smdl_explanation_cub-sam is the original's name of: "
                                           "python -m submodular_attribution cub --division sam")
    assert "--sam-mask-dir" in done.stdout and "--Datasets" in done.stdout


def test_an_unsupported_original_script_is_one_line(capsys):
    assert run_original("vggsound_languagebind.py", []) == 2
    assert capsys.readouterr().err == ("error: vggsound_languagebind: LanguageBind's audio tower is not supported "
                                       "here; vggsound_imagebind explains sounds\n")


def test_missing_weights_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SMDL_HOME", str(tmp_path))
    (tmp_path / "list.txt").write_text("a.jpg 1\n")
    (tmp_path / "a.jpg").write_bytes(b"")
    assert run_original("smdl_explanation_lung_quilt_superpixel.py", ["--eval-list", str(tmp_path / "list.txt")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("python -m submodular_attribution quilt") and len(err) == 2
    assert err[1].startswith("error: ") and "QuiltNet-B-32.bin" in err[1]


def test_dropped_and_renamed_flags():
    argv, warnings = translate(["--cfg", "configs/cub/x.json", "--sub-k=24", "--partition", "grad", "--lambda1", "1"])
    assert argv == ["--division", "prior", "--lambda1", "1"]
    assert warnings == ["warning: --cfg ignored: the original's TensorFlow model config; the model comes from "
                        "--checkpoint", "warning: --sub-k ignored: every region is ordered here"]
    assert translate(["--partition=pixel"])[0] == ["--division", "grid"]


def test_the_original_flag_names_set_our_options(tmp_path):
    parser = cli.get_args_parser(_task(tmp_path))
    args = parser.parse_args(["--Datasets", "imgs", "--sam-mask-dir", "SAM_mask/CUB", "--explanation-method", "maps",
                              "--grad-partition-size", "7", "--grad-number-per-set", "3",
                              "--superpixel-algorithm", "seeds", "--pending-samples", "12"])
    assert (args.datasets, args.sam_masks, args.prior_dir, args.grid, args.per_region, args.division,
            args.pending_samples) == ("imgs", "SAM_mask/CUB", "maps", 7, 3, "seeds", 12)


def test_train_py_flags_map_to_ours(tmp_path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    argv = finetune_id_sds.translate_train_py(
        ["--model", "resnet50", "--data_dir", str(tmp_path / "d"), "--pretrained", "--store_path", "out",
         "--checkpoint_prefix", "r50", "-b", "64", "--step_size=5", "--wd", "0.01", "--grid_rows_and_cols", "4",
         "--baseline", "zeros", "--epochs", "2"])
    assert argv == ["--model", "imagenet_classifier", "--arch", "resnet50", "--image-folder", str(tmp_path / "d" / "train"),
                    "--weights", "IMAGENET1K_V1", "--batch-size", "64", "--step-size", "5", "--weight-decay", "0.01",
                    "--grid", "4", "--epochs", "2", "--output", str(Path("out") / "r50_checkpoint.pth.tar")]
    assert finetune_id_sds.translate_train_py(["--pretrained_ckpt", "a.pth", "--model", "cub"]) == \
        ["--checkpoint", "a.pth", "--model", "cub"]


def test_train_py_command_fine_tunes(shapes_case, tmp_path, capsys):  # noqa: F811
    list_path, checkpoint, _ = shapes_case
    for item in read_eval_list(list_path):
        target = tmp_path / "data" / "train" / CLASS_NAMES[item.label] / Path(item.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(list_path.parent / item.path, target)
    assert finetune_id_sds.main(["--model", "shapes", "--data_dir", str(tmp_path / "data"), "--pretrained_ckpt",
                                 str(checkpoint), "--store_path", str(tmp_path), "--checkpoint_prefix", "shapes",
                                 "--epochs", "1", "--batch_size", "6"]) == 0
    saved = torch.load(tmp_path / "shapes_checkpoint.pth.tar", weights_only=True)
    ShapesCNN().load_state_dict(saved["state_dict"])
    assert saved["info"]["id_sds"]["num_images"] == 6
    assert finetune_id_sds.main(["--model", "shapes", "--baseline", "blur"]) == 2
    assert capsys.readouterr().err.endswith("error: --baseline: only 'zeros' (the normalisation mean) is implemented "
                                            "here\n")


@pytest.mark.parametrize("flags", [[], ["--search", "fast"]])
def test_an_original_name_runs_the_task_with_its_defaults(tmp_path, tiny_list, monkeypatch, flags):  # noqa: F811
    """The alias passes our task's flags first: the run is the task's own (same folder and records)."""
    calls = []
    monkeypatch.setattr(cli, "main", lambda task, argv: calls.append((task.name, list(argv))) or 0)
    assert run_original("efficientv2-smdl_explanation_imagenet_imagebind_superpixel.py", flags) == 0
    assert calls == [("imagenet_imagebind", ["--search", "bidirectional", *flags])]


def test_save_vis_draws_the_figures_into_vis(tmp_path, tiny_list):  # noqa: F811
    assert _run(_task(tmp_path), tiny_list, "--end", "1", "--save-vis") == 0
    run_dir = tmp_path / "results" / "slico-0.0-0.05-1.0-1.0"
    assert {p.name for p in run_dir.iterdir()} >= {"json", "npy", "vis"}
    assert sorted(p.relative_to(run_dir / "vis").as_posix() for p in (run_dir / "vis").rglob("*.png")) == \
        ["explanations/0/photo 0.png", "mean_curves.png"]


def test_the_docs_map_every_original_command():
    page = (ROOT / "docs" / "original_code.md").read_text()
    for name, entry in ORIGINAL_COMMANDS.items():
        assert f"`python -m submodular_attribution.{name}`" in page, name
        assert entry.task is None or f"`{entry.command()}`" in page, name
    for name in ORIGINAL_LAUNCHERS:
        assert f"./scripts/{name.replace('_debug', '')}.sh" in page, name
