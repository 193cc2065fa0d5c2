"""The embedded default models ship in ckpt/embedded/ (issue: numbers anyone can reproduce): each
file is small, matches the current data and model versions, is what every default path loads, is
never overwritten by a run, and is tracked by git while other weights stay ignored."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import torch

from submodular_attribution.apps import embedded
from submodular_attribution.common import paths
from submodular_attribution.common.trained import RETRAIN_COMMAND

ROOT = paths.EMBEDDED_DIR.parents[1]


@pytest.mark.parametrize("name", sorted(embedded.MODELS))
def test_shipped_file_is_small_and_current(name, capsys):
    model = embedded.MODELS[name]
    path = paths.EMBEDDED_DIR / model.file
    assert path.is_file() and path.stat().st_size < 5_000_000
    net, info = model.load(path)  # a stale file would raise, a missing one would train
    assert "Loaded the default" in capsys.readouterr().out
    assert info["seed"] == 0 and all(0.0 < info[key] <= 1.0 for key in model.scores)


def test_default_paths_resolve_to_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SMDL_HOME", str(tmp_path))  # not the checkout: the shipped files are found all the same
    from submodular_attribution.audio import default_checkpoint as audio_default
    from submodular_attribution.detection.shapes_model import default_checkpoint as detector_default
    from submodular_attribution.shapes import default_checkpoint as shapes_default
    from submodular_attribution.tasks import get_model_task
    assert shapes_default() == paths.EMBEDDED_DIR / "shapes_cnn.pt"
    assert shapes_default("vit") == paths.EMBEDDED_DIR / "shapes_vit.pt"
    assert shapes_default("resnet") == paths.EMBEDDED_DIR / "shapes_resnet.pt"
    assert audio_default() == paths.EMBEDDED_DIR / "audio_cnn.pt"
    assert detector_default() == paths.EMBEDDED_DIR / "shapes_detector.pt"
    assert get_model_task("shapes").default_checkpoint() == str(paths.EMBEDDED_DIR / "shapes_cnn.pt")
    assert paths.weights_file("resnet101-imagenet.pth") == tmp_path / "ckpt" / "resnet101-imagenet.pth"


def test_a_stale_shipped_file_is_an_error_not_a_retrain(tmp_path, monkeypatch):
    shipped = tmp_path / "embedded"
    shipped.mkdir()
    ckpt = torch.load(paths.EMBEDDED_DIR / "shapes_cnn.pt", map_location="cpu", weights_only=True)
    ckpt["info"]["data_version"] = "shapes-v0"
    torch.save(ckpt, shipped / "shapes_cnn.pt")
    before = (shipped / "shapes_cnn.pt").read_bytes()
    monkeypatch.setattr(paths, "EMBEDDED_DIR", shipped)
    from submodular_attribution.shapes import load_or_train_default
    with pytest.raises(RuntimeError, match=RETRAIN_COMMAND.replace(" ", r"\s")):
        load_or_train_default(shipped / "shapes_cnn.pt", verbose=False)
    assert (shipped / "shapes_cnn.pt").read_bytes() == before


def test_listing_names_every_shipped_model(capsys):
    assert embedded.main([]) == 0
    out = capsys.readouterr().out
    for name in embedded.MODELS:
        assert name in out and "MB" in out and "missing" not in out


def test_retrain_writes_elsewhere_and_compares(tmp_path, monkeypatch, capsys):
    from submodular_attribution.shapes import model as shapes_model
    original = shapes_model.train_shapes_cnn
    monkeypatch.setattr(shapes_model, "train_shapes_cnn", lambda **kw: original(**{**kw, "n_train": 64, "n_val": 32,
                                                                                  "epochs": 1}))
    before = (paths.EMBEDDED_DIR / "shapes_cnn.pt").read_bytes()
    assert embedded.main(["--retrain", "shapes_cnn", "--out", str(tmp_path), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "shipped" in out and "retrained" in out and "predictions agree with the shipped copy on" in out
    info = torch.load(tmp_path / "shapes_cnn.pt", map_location="cpu", weights_only=True)["info"]
    assert info["n_train"] == 64 and info["trained_with"]["threads"] == 1
    assert (paths.EMBEDDED_DIR / "shapes_cnn.pt").read_bytes() == before  # --out: the shipped copy stays


def test_retrain_rejects_unknown_names():
    with pytest.raises(SystemExit, match="unknown"):
        embedded.main(["--retrain", "shapes_cnm"])


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_git_tracks_exactly_the_shipped_models():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0
    for model in embedded.MODELS.values():
        assert not ignored(f"ckpt/embedded/{model.file}")
    assert ignored("ckpt/embedded/mine.pt") and ignored("ckpt/resnet101-imagenet.pth") and ignored("ckpt/shapes_cnn.pt")


# The held-out accuracies the documentation states for the shipped models (README, docs/): recomputed
# here from the regenerated held-out split, so a changed file or data generator cannot pass silently.
STATED_ACCURACY = {"shapes_cnn": "98.0 %", "audio_cnn": "98.5 %"}


@pytest.mark.parametrize("name", sorted(STATED_ACCURACY))
def test_shipped_accuracy_is_what_the_docs_state(name):
    from submodular_attribution import audio, shapes
    module = shapes if name == "shapes_cnn" else audio
    net, info = embedded.MODELS[name].load(paths.EMBEDDED_DIR / embedded.MODELS[name].file)
    accuracy = module.held_out_accuracy(net, seed=0, n_val=info["n_val"])
    assert accuracy == pytest.approx(info["val_accuracy"], abs=1.5 / info["n_val"])  # one item of float slack
    assert f"{100 * accuracy:.1f} %" == STATED_ACCURACY[name]
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    assert STATED_ACCURACY[name] in docs
