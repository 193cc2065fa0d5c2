"""Class names in the result records, and published weights (torchvision, timm, open_clip) read
from the libraries' own caches only: tiny random-init models of the real architectures are saved
where each library's cache expects them, and every way out to the network raises."""
from __future__ import annotations

import shutil
import socket
import urllib.request

import pytest
import torch
import torchvision

from submodular_attribution import (
    smdl_explanation_cub, smdl_explanation_imagenet_classifier, smdl_explanation_quilt, smdl_explanation_shapes)
from submodular_attribution.adapters.classifier import build_classifier, build_classifier_scorer, torch_cache_file
from submodular_attribution.class_names import LC25000_LUNG_CLASSES, cub_classes
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.results import find_result_files, load_result
from submodular_attribution.shapes import CLASS_NAMES, write_eval_set
from visualization.folders import image_title

SAMPLES = ["samples/chelsea the cat.jpg", "samples/coffee.jpg"]
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"  # a commit hash, as the Hugging Face cache names snapshots


class NetworkUsed(AssertionError):
    pass


def _no_network(*args, **kwargs):
    raise NetworkUsed(f"network access attempted: {args[:2]}")


@pytest.fixture(autouse=True)
def offline_caches(tmp_path, monkeypatch):
    """Empty torch / Hugging Face / open_clip caches under tmp_path, and no network at all."""
    import huggingface_hub.constants as hf_constants

    caches = {"torch": tmp_path / "torch", "hf": tmp_path / "hf", "home": tmp_path / "home"}
    monkeypatch.setenv("TORCH_HOME", str(caches["torch"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(caches["hf"]))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(caches["hf"]))  # read once at import otherwise
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HOME", str(caches["home"]))  # open_clip's URL cache is ~/.cache/clip
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_network)  # what code importing it later gets
    return caches


@pytest.fixture
def photos(tmp_path):
    """Two sample photos and a writer of evaluation lists with given labels."""
    root = tmp_path / "data"
    (root / "samples").mkdir(parents=True)
    for path in SAMPLES:
        shutil.copy(f"datasets/{path}", root / path)

    def write_list(labels):
        (root / "list.txt").write_text("".join(f"{p} {label}\n" for p, label in zip(SAMPLES, labels)))
        return str(root / "list.txt")
    return write_list


def _records(module, tmp_path, *args) -> list[dict]:
    out = tmp_path / "out"
    assert module.main([*args, "--save-dir", str(out), "--device", "cpu", "--batch-size", "16"]) == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return [load_result(f).record for f in find_result_files(run_dir)]


def _same_state(net: torch.nn.Module, state: dict) -> bool:
    own = net.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k].cpu(), state[k]) for k in own)


def _only_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- class names


def test_shapes_records_name_the_target(tmp_path, trained_shapes):
    eval_list = write_eval_set(tmp_path / "shapes", n=2)
    records = _records(smdl_explanation_shapes, tmp_path, "--eval-list", str(eval_list), "--checkpoint",
                       str(trained_shapes[0]), "--division", "grid", "--region-size", "56")
    assert len(records) == 2
    for record in records:
        assert record["target_name"] == CLASS_NAMES[record["target"]]
        assert CLASS_NAMES[record["target"]] in image_title(record, "stem")  # what the figures show


def test_classifier_names_from_a_file_the_task_or_nowhere(tmp_path, photos):
    net, _ = build_classifier("resnet18", 3)
    torch.save(net.state_dict(), tmp_path / "r18-3.pth")
    common = ["--arch", "resnet18", "--input-size", "48", "--division", "grid", "--region-size", "24"]
    (tmp_path / "names.txt").write_text("tabby cat\n\nespresso\nrocket\n")  # blank lines are skipped
    records = _records(smdl_explanation_imagenet_classifier, tmp_path / "file", *common, "--eval-list",
                       photos([0, 1]), "--checkpoint", str(tmp_path / "r18-3.pth"), "--num-classes", "3",
                       "--class-names", str(tmp_path / "names.txt"))
    assert sorted(r["target_name"] for r in records) == ["espresso", "tabby cat"]

    # ImageNet's 1000 names do not fit a 3-class head: no name, no error
    records = _records(smdl_explanation_imagenet_classifier, tmp_path / "none", *common, "--eval-list",
                       photos([0, 1]), "--checkpoint", str(tmp_path / "r18-3.pth"), "--num-classes", "3")
    assert all("target_name" not in r for r in records)

    net, _ = build_classifier("resnet18", 200)
    torch.save(net.state_dict(), tmp_path / "r18-200.pth")
    records = _records(smdl_explanation_cub, tmp_path / "cub", *common, "--eval-list", photos([0, 199]),
                       "--checkpoint", str(tmp_path / "r18-200.pth"), "--division", "grid")
    assert {r["target"]: r["target_name"] for r in records} == {0: "Black-footed Albatross",
                                                                199: cub_classes()[199]}


def test_class_names_of_another_count_are_one_line(tmp_path, photos, capsys):
    net, _ = build_classifier("resnet18", 3)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    (tmp_path / "two.txt").write_text("cat\ncoffee\n")
    status = smdl_explanation_imagenet_classifier.main([
        "--eval-list", photos([0, 1]), "--arch", "resnet18", "--checkpoint", str(tmp_path / "r18.pth"),
        "--num-classes", "3", "--class-names", str(tmp_path / "two.txt"), "--input-size", "48",
        "--division", "grid", "--region-size", "24", "--device", "cpu", "--save-dir", str(tmp_path / "out")])
    assert status == 2
    assert _only_error_line(capsys) == (f"error: --class-names {tmp_path / 'two.txt'}: 2 names, "
                                        "but the model has 3 classes")
    assert not list((tmp_path / "out").rglob("*.json"))


# --------------------------------------------------------------------------- torchvision --weights


def _cache_resnet18(seed: int = 1) -> tuple[dict, object]:
    """A random-init resnet18 (1000 classes) saved where torch.hub keeps IMAGENET1K_V1's file."""
    member = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    torch.manual_seed(seed)
    state = torchvision.models.resnet18(num_classes=1000).state_dict()
    path = torch_cache_file(member.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state, member


def test_torchvision_weights_load_exactly_the_cached_file(offline_caches):
    state, member = _cache_resnet18()
    assert torch_cache_file(member.url) == offline_caches["torch"] / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    for name in ("IMAGENET1K_V1", "DEFAULT", "imagenet1k_v1", "ResNet18_Weights.IMAGENET1K_V1"):
        scorer = build_classifier_scorer("resnet18", "ignored.pth", None, input_size=(48, 48), weights=name)
        assert _same_state(scorer.net, state) and scorer.num_classes == 1000
        prep = member.transforms()
        assert scorer.mean.flatten().tolist() == pytest.approx(prep.mean)
        assert scorer.std.flatten().tolist() == pytest.approx(prep.std)


def test_torchvision_weights_in_a_task_name_classes_and_report_the_size(tmp_path, photos, capsys):
    state, member = _cache_resnet18()
    records = _records(smdl_explanation_imagenet_classifier, tmp_path, "--eval-list", photos([281, 967]),
                       "--arch", "resnet18", "--weights", "DEFAULT", "--input-size", "48",
                       "--division", "grid", "--region-size", "24")  # the default --checkpoint does not exist
    categories = member.meta["categories"]
    assert {r["target"]: r["target_name"] for r in records} == {281: categories[281], 967: categories[967]}
    assert ("note: resnet18 IMAGENET1K_V1 was evaluated at 224×224 (resize 256, centre crop); "
            "images are resized to --input-size 48×48") in capsys.readouterr().err


def test_torchvision_weights_not_cached_is_one_line_without_network(tmp_path, photos, capsys):
    member = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    status = smdl_explanation_imagenet_classifier.main([
        "--eval-list", photos([0, 1]), "--arch", "resnet18", "--weights", "IMAGENET1K_V1", "--device", "cpu",
        "--save-dir", str(tmp_path / "out")])
    assert status == 2
    assert _only_error_line(capsys) == (
        f"error: --weights IMAGENET1K_V1: not in the torch cache ({torch_cache_file(member.url)}); "
        f"put the file there (from {member.url}) or pass --allow-download")


def test_torchvision_allow_download_goes_through_torch_hub(monkeypatch):
    import torch.hub as hub

    torch.manual_seed(3)
    state = torchvision.models.resnet18(num_classes=1000).state_dict()
    fetched = []

    def fake_download(url, dst, hash_prefix=None, progress=True):  # stands in for the network
        fetched.append((url, hash_prefix))
        torch.save(state, dst)

    monkeypatch.setattr(hub, "download_url_to_file", fake_download)
    with pytest.raises(InputError, match="not in the torch cache"):
        build_classifier_scorer("resnet18", None, None, weights="IMAGENET1K_V1")
    assert not fetched
    scorer = build_classifier_scorer("resnet18", None, None, weights="IMAGENET1K_V1", allow_download=True)
    member = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert fetched == [(member.url, "f37072fd")]  # the hash in the file name is checked on download
    assert _same_state(scorer.net, state)


def test_torchvision_weights_errors():
    _cache_resnet18()
    with pytest.raises(InputError, match=r"--weights DEFAULT: resnet18 IMAGENET1K_V1 has 1000 classes, "
                                         r"not --num-classes 200"):
        build_classifier_scorer("resnet18", None, 200, weights="DEFAULT")
    with pytest.raises(InputError, match=r"--weights V9: not a torchvision weights name of resnet18 "
                                         r"\(choose from IMAGENET1K_V1, DEFAULT\)"):
        build_classifier_scorer("resnet18", None, None, weights="V9")
    with pytest.raises(InputError, match="for timm:test_vit use --pretrained TAG"):
        build_classifier_scorer("timm:test_vit", None, None, weights="DEFAULT")
    with pytest.raises(InputError, match="for resnet18 use --weights NAME"):
        build_classifier_scorer("resnet18", None, None, pretrained="default")
    with pytest.raises(InputError, match="exclude each other"):
        build_classifier_scorer("resnet18", None, None, weights="DEFAULT", pretrained="default")
    swag = torchvision.models.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1
    torch_cache_file(swag.url).touch()  # cached, so the input size is checked next
    with pytest.raises(InputError, match=r"vit_b_16's position embeddings are for 384×384 inputs; "
                                         r"pass --input-size 384"):
        build_classifier_scorer("vit_b_16", None, None, input_size=(224, 224), weights="IMAGENET1K_SWAG_E2E_V1")


# --------------------------------------------------------------------------- timm --pretrained


def _hf_snapshot(cache, repo: str, filename: str):
    """The path the Hugging Face cache keeps ``repo``'s ``filename`` at (main → SNAPSHOT)."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(SNAPSHOT)
    (folder / "snapshots" / SNAPSHOT).mkdir(parents=True, exist_ok=True)
    return folder / "snapshots" / SNAPSHOT / filename


def test_timm_pretrained_loads_exactly_the_cached_file(offline_caches, monkeypatch):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    import timm.models._hub as timm_hub

    monkeypatch.setattr(timm_hub, "hf_hub_download", _no_network)
    torch.manual_seed(4)
    state = timm.create_model("test_vit", pretrained=False, num_classes=1000).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()},
              _hf_snapshot(offline_caches["hf"], "timm/test_vit.r160_in1k", "model.safetensors"))
    for tag in ("default", "r160_in1k"):
        scorer = build_classifier_scorer("timm:test_vit", None, None, input_size=(160, 160), pretrained=tag)
        assert _same_state(scorer.net, state) and scorer.num_classes == 1000
        assert scorer.mean.flatten().tolist() == [0.5, 0.5, 0.5] and scorer.std.flatten().tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(InputError, match=r"--pretrained default: timm:test_vit.r160_in1k has 1000 classes, "
                                         r"not --num-classes 7"):
        build_classifier_scorer("timm:test_vit", None, 7, input_size=(160, 160), pretrained="default")


def test_timm_pretrained_not_cached_is_one_line(offline_caches):
    pytest.importorskip("timm")
    repo_dir = offline_caches["hf"] / "models--timm--test_vit.r160_in1k"
    with pytest.raises(InputError) as err:
        build_classifier_scorer("timm:test_vit", None, None, pretrained="default")
    assert str(err.value) == (f"--pretrained default: timm:test_vit.r160_in1k is not in the Hugging Face cache "
                              f"({repo_dir}); copy it there from a machine that ran 'hf download "
                              f"timm/test_vit.r160_in1k', or pass --allow-download")
    with pytest.raises(InputError, match=r"--pretrained nope: not a timm pretrained tag of test_vit "
                                         r"\(tags: r160_in1k, or default\)"):
        build_classifier_scorer("timm:test_vit", None, None, pretrained="nope")


# --------------------------------------------------------------------------- open_clip --pretrained


@pytest.fixture
def tiny_clip_tags(tmp_path, monkeypatch):
    """The tiny open_clip model, with two registered pretrained tags: one on the hub, one by URL."""
    open_clip = pytest.importorskip("open_clip")
    from open_clip import pretrained as registry
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    from tests.conftest import TINY_CLIP, save_tiny_clip

    monkeypatch.setattr(registry, "hf_hub_download", _no_network)
    checkpoint = save_tiny_clip(tmp_path / "clip")
    tags = {
        "hubtag": {"url": "", "hf_hub": "smdl-test/tiny-clip/", "mean": OPENAI_DATASET_MEAN, "std": OPENAI_DATASET_STD},
        "urltag": {"url": "https://example.invalid/clip/tiny-clip-quickgelu.pt", "hf_hub": "",
                   "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "quick_gelu": True},
    }
    monkeypatch.setitem(registry._PRETRAINED, TINY_CLIP, tags)
    return open_clip, TINY_CLIP, checkpoint


def test_open_clip_pretrained_tags_read_the_cache(offline_caches, tiny_clip_tags, tmp_path):
    open_clip, name, checkpoint = tiny_clip_tags
    from submodular_attribution.adapters.clip import build_clip_scorer

    state = torch.load(checkpoint, weights_only=True)
    hub_file = _hf_snapshot(offline_caches["hf"], "smdl-test/tiny-clip", "open_clip_pytorch_model.bin")
    shutil.copy(checkpoint, hub_file)
    url_file = offline_caches["home"] / ".cache" / "clip" / "tiny-clip-quickgelu.pt"
    url_file.parent.mkdir(parents=True)
    shutil.copy(checkpoint, url_file)

    classes = (["a", "b"], ["a photo of a {}."])
    scorer = build_clip_scorer(name, None, classes, cache_dir=tmp_path / "protos", pretrained="hubtag")
    assert _same_state(scorer.model, state)
    assert not any(isinstance(m, open_clip.transformer.QuickGELU) for m in scorer.model.modules())
    scorer = build_clip_scorer(name, "ignored.bin", classes, cache_dir=tmp_path / "protos", pretrained="urltag")
    assert _same_state(scorer.model, state)
    assert any(isinstance(m, open_clip.transformer.QuickGELU) for m in scorer.model.modules())  # the tag's setting
    assert scorer.mean.flatten().tolist() == [0.5, 0.5, 0.5] and scorer.std.flatten().tolist() == [0.25] * 3


def test_open_clip_pretrained_missing_is_one_line(offline_caches, tiny_clip_tags, tmp_path, photos, capsys):
    _, name, _ = tiny_clip_tags
    from submodular_attribution.adapters.clip import build_clip_scorer

    classes = (["a", "b"], ["a photo of a {}."])
    with pytest.raises(InputError) as err:
        build_clip_scorer(name, None, classes, pretrained="urltag")
    url_file = offline_caches["home"] / ".cache" / "clip" / "tiny-clip-quickgelu.pt"
    assert str(err.value) == (f"--pretrained urltag: {name} weights are not in open_clip's cache ({url_file}); "
                              "put the file there (from https://example.invalid/clip/tiny-clip-quickgelu.pt), "
                              "or pass --allow-download")
    with pytest.raises(InputError, match=r"--pretrained laion: not an open_clip pretrained tag of .* "
                                         r"\(tags: hubtag, urltag\)"):
        build_clip_scorer(name, None, classes, pretrained="laion")

    status = smdl_explanation_quilt.main([
        "--eval-list", photos([0, 2]), "--model-name", name, "--pretrained", "hubtag", "--input-size", "32",
        "--semantic-cache", str(tmp_path / "protos"), "--division", "grid", "--region-size", "16", "--device", "cpu",
        "--save-dir", str(tmp_path / "out")])
    assert status == 2
    line = _only_error_line(capsys)
    assert line.startswith(f"error: --pretrained hubtag: {name} weights are not in the Hugging Face cache (")
    assert line.endswith("'hf download smdl-test/tiny-clip open_clip_pytorch_model.bin', or pass --allow-download")


def test_clip_task_with_a_pretrained_tag_names_its_classes(offline_caches, tiny_clip_tags, tmp_path, photos):
    _, name, checkpoint = tiny_clip_tags
    shutil.copy(checkpoint, _hf_snapshot(offline_caches["hf"], "smdl-test/tiny-clip", "open_clip_pytorch_model.bin"))
    records = _records(smdl_explanation_quilt, tmp_path, "--eval-list", photos([0, 2]), "--model-name", name,
                       "--pretrained", "hubtag", "--semantic-cache", str(tmp_path / "protos"), "--input-size", "32",
                       "--division", "grid", "--region-size", "16")
    assert {r["target"]: r["target_name"] for r in records} == {0: LC25000_LUNG_CLASSES[0], 2: LC25000_LUNG_CLASSES[2]}
