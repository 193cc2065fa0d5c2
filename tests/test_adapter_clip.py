"""Zero-shot CLIP adapter on tiny random open_clip models registered for the test session."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from submodular_attribution import class_names  # noqa: E402
from submodular_attribution.adapters import clip  # noqa: E402
from submodular_attribution.common.errors import InputError  # noqa: E402
from tests.conftest import TINY_CLIP, TINY_CLIP_CFG, save_tiny_clip  # noqa: E402

TINY = TINY_CLIP
TINY_OTHER = "smdl-test-tiny-clip-b"  # same layout, different widths: its weights must not fit TINY


def _quiet_create(name: str):
    with clip._quiet_logging(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return open_clip.create_model(name, pretrained=None).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Register the tiny configs, build one random model and save its weights (the 'checkpoint')."""
    other = json.loads(json.dumps(TINY_CLIP_CFG))
    other["embed_dim"] = 24
    other["text_cfg"]["width"] = 48
    ckpt = save_tiny_clip(tmp_path_factory.mktemp("clip"), {TINY_OTHER: other})
    torch.manual_seed(0)
    model = _quiet_create(TINY)
    model.load_state_dict(torch.load(ckpt))
    return model, ckpt


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- class lists


def test_class_lists_and_templates():
    assert len(class_names.imagenet_classes()) == 1000
    templates = class_names.imagenet_templates()
    assert len(templates) == 80 and all(isinstance(t, str) and "{}" in t for t in templates)
    assert "a photo of a {}." in templates
    cub = class_names.CUB_CLASSES
    assert len(cub) == 200 == len(set(cub)) == len(class_names.CUB_FOLDERS)
    assert cub[0] == "Black-footed Albatross" and cub[199] == "Common Yellowthroat"
    assert cub[16] == "Cardinal" and cub[102] == "Sayornis" and cub[158] == "Black-and-white Warbler"
    assert class_names.LC25000_LUNG_CLASSES == (
        "lung adenocarcinoma", "benign lung tissue", "lung squamous cell carcinoma")
    for name, (classes, templates) in class_names.CLASS_SETS.items():
        got_classes, got_templates = classes(), templates()
        assert len(got_classes) == {"imagenet": 1000, "cub": 200, "lc25000_lung": 3}[name]
        assert got_templates and all("{}" in t for t in got_templates)
    with pytest.raises(InputError, match="unknown class set 'nope'"):
        class_names.get_class_set("nope")


# --------------------------------------------------------------------------- loading


def test_checkpoint_loads_through_build_clip_scorer(tiny, tmp_path):
    model, ckpt = tiny
    scorer = clip.build_clip_scorer(TINY, ckpt, "lc25000_lung", cache_dir=tmp_path)
    assert _same_weights(scorer.model, model)
    assert scorer.num_classes == 3 and scorer.logit_scale == pytest.approx(100.0)
    # A DataParallel-style save loads too.
    prefixed = tmp_path / "prefixed.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, prefixed)
    loaded, preprocess = clip.build_clip_model(TINY, prefixed)
    assert _same_weights(loaded, model)
    assert preprocess["image_size"] == (32, 32)
    assert preprocess["mean"] == pytest.approx(clip.OPENAI_MEAN) and preprocess["std"] == pytest.approx(clip.OPENAI_STD)


def test_torchscript_archive_loads_with_quick_gelu(tiny, tmp_path):
    model, _ = tiny
    tokens = open_clip.get_tokenizer(TINY)(["a photo"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.rand(1, 3, 32, 32), tokens), check_trace=False, strict=False)
    traced.save(str(tmp_path / "jit.pt"))
    assert clip.is_torchscript_archive(tmp_path / "jit.pt")
    loaded, preprocess = clip.build_clip_model(TINY, tmp_path / "jit.pt")
    assert _same_weights(loaded, model) and preprocess["quick_gelu"]
    assert type(loaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"


def test_errors(tiny, tmp_path):
    _, ckpt = tiny
    with pytest.raises(InputError, match=r"unknown open_clip model 'ViT-B-33'.*close matches: .*ViT-B-32"):
        clip.build_clip_model("ViT-B-33", ckpt)
    with pytest.raises(InputError, match="nope.bin: checkpoint not found"):
        clip.build_clip_model(TINY, tmp_path / "nope.bin")
    torch.save(_quiet_create(TINY_OTHER).state_dict(), tmp_path / "other.bin")
    with pytest.raises(InputError, match=r"other\.bin: weights do not fit CLIP \(shape mismatch"):
        clip.build_clip_scorer(TINY, tmp_path / "other.bin", "lc25000_lung", cache_dir=tmp_path)
    with pytest.raises(InputError, match="Hugging Face"):
        clip.build_clip_model("ViT-B-16-SigLIP", ckpt)
    with pytest.raises(InputError, match=r"has no '\{\}'"):
        clip.build_clip_scorer(TINY, ckpt, (["a"], ["no placeholder"]), cache_dir=tmp_path)


# --------------------------------------------------------------------------- prototypes


def test_prototypes_match_hand_computation(tiny):
    model, _ = tiny
    tokenizer = open_clip.get_tokenizer(TINY)
    classes, templates = ["cat", "dog", "lung adenocarcinoma"], ["a photo of a {}.", "an H&E image of {}."]
    got = clip.class_prototypes(model, tokenizer, classes, templates, "cpu", batch_size=4)  # 2 classes/batch
    expected = []
    with torch.no_grad():
        for name in classes:
            text = model.encode_text(tokenizer([t.format(name) for t in templates]))
            mean = (text / text.norm(dim=-1, keepdim=True)).mean(0)
            expected.append(mean / mean.norm())
    assert got.shape == (3, 32) and got.dtype == torch.float32
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-6)


def test_prototype_cache(tiny, tmp_path, monkeypatch):
    model, ckpt = tiny
    tokenizer = open_clip.get_tokenizer(TINY)
    calls = []
    original = model.encode_text
    monkeypatch.setattr(model, "encode_text", lambda *a, **k: calls.append(1) or original(*a, **k))
    classes, templates = ["cat", "dog", "bird"], ["a photo of a {}.", "a {}."]
    args = (model, tokenizer, TINY, ckpt)
    first = clip.cached_prototypes(*args, classes, templates, "cpu", cache_dir=tmp_path)
    assert calls and len(list(tmp_path.glob(f"{TINY}-*.pt"))) == 1
    assert not list(tmp_path.glob("*.tmp"))
    calls.clear()
    second = clip.cached_prototypes(*args, classes, templates, "cpu", cache_dir=tmp_path)
    assert not calls and torch.equal(first, second)
    clip.cached_prototypes(*args, ["cat", "dog"], templates, "cpu", cache_dir=tmp_path)
    assert calls and len(list(tmp_path.glob(f"{TINY}-*.pt"))) == 2
    path = clip.prototype_cache_path(TINY, ckpt, classes, templates, tmp_path)
    assert path.name.startswith(f"{TINY}-") and len(path.stem) == len(TINY) + 17
    assert path != clip.prototype_cache_path(TINY, ckpt, classes, templates[::-1], tmp_path)


# --------------------------------------------------------------------------- scorer


def test_scorer_probabilities_by_hand(tiny, tmp_path):
    model, ckpt = tiny
    scorer = clip.build_clip_scorer(TINY, ckpt, (["cat", "dog", "car", "tree"], ["a photo of a {}."]),
                                    cache_dir=tmp_path)
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = scorer(images)
        x = (images - torch.tensor(clip.OPENAI_MEAN).view(1, 3, 1, 1)) / torch.tensor(clip.OPENAI_STD).view(1, 3, 1, 1)
        e = F.normalize(model.encode_image(x), dim=-1)
        expected = (100.0 * e @ F.normalize(scorer.prototypes, dim=-1).T).softmax(-1)
    torch.testing.assert_close(out.probs, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(5))
    assert out.embeddings.shape == (5, 32) and out.evidence_logits is None
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(5))
    with torch.no_grad():  # other input sizes are resized to the model's resolution
        assert scorer(torch.rand(2, 3, 40, 48)).probs.shape == (2, 4)


def test_temperature_is_applied_over_imagenet(tiny):
    model, _ = tiny
    tokenizer = open_clip.get_tokenizer(TINY)
    protos = clip.class_prototypes(model, tokenizer, class_names.imagenet_classes(), ["a photo of a {}."], "cpu")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mean, std = clip.OPENAI_MEAN, clip.OPENAI_STD
    with torch.no_grad():
        default = clip.ZeroShotCLIPScorer(model, protos, mean, std, "cpu")(images).probs  # learned: 100
        cold = clip.ZeroShotCLIPScorer(model, protos, mean, std, "cpu", logit_scale=1.0)(images).probs
    assert default.shape == (4, 1000)
    assert cold.max() < 3 / 1000  # no temperature: everything collapses to ≈1/C
    assert default.max(-1).values.min() > 10 * cold.max()
