"""LanguageBind image tower: a tiny random configuration saved with save_pretrained, reloaded by
the adapter from its folder, scored by hand, and run through the ImageNet script."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import torch.nn.functional as F

from evals.auc import summarize_run
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.results import find_result_files, load_result

pytest.importorskip("transformers")
pytest.importorskip("peft")
lb = pytest.importorskip("submodular_attribution.adapters.languagebind")
try:
    modeling, configuration, tokenization = lb.languagebind_image_modules()
except InputError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"languagebind is not installed ({err})", allow_module_level=True)


def _byte_vocab() -> list[str]:
    """A CLIP-style byte-level vocabulary without merges: every byte, alone or word-final."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + extra)
            extra += 1
    chars = [chr(c) for c in codes]
    return chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]  # end token: highest id


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, folder): a tiny LanguageBindImage (ViT 32×32, patch 8, 2 layers, LoRA as released)
    with logit scale 30, saved with save_pretrained plus tokenizer files."""
    folder = tmp_path_factory.mktemp("LanguageBind_Image")
    config = configuration.LanguageBindImageConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         projection_dim=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8, projection_dim=16),
        projection_dim=16)
    torch.manual_seed(0)
    model = modeling.LanguageBindImage(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(30.0))
        for name, p in model.named_parameters():
            if "lora_B" in name:  # released LoRA weights are not zero: make them count
                p.normal_(0, 0.02)
    model.save_pretrained(str(folder))
    vocab = _byte_vocab()
    (folder / "vocab.json").write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return model, folder


def _expected_probs(model, tokenizer, images, classes, templates):
    mean = torch.tensor(lb.OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(lb.OPENAI_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        protos = []
        for name in classes:
            batch = tokenizer([t.format(name) for t in templates], max_length=77, padding="max_length",
                              truncation=True, return_tensors="pt")
            text = model.text_projection(model.text_model(**batch)[1])
            m = F.normalize(text, dim=-1).mean(0)
            protos.append(m / m.norm())
        e = F.normalize(model.visual_projection(model.vision_model(pixel_values=(images - mean) / std)[1]), dim=-1)
        return (30.0 * e @ torch.stack(protos).T).softmax(-1)


def test_saved_and_reloaded_scorer_by_hand(tiny, tmp_path):
    model, folder = tiny
    assert json.loads((folder / "config.json").read_text())["vision_config"]["image_size"] in (32, [32, 32])
    classes, templates = ["cat", "coffee", "rocket", "tree"], ["a photo of a {}.", "a {}."]
    scorer = lb.build_languagebind_scorer(folder, classes, templates, cache_dir=tmp_path)
    assert scorer.logit_scale == pytest.approx(30.0) and scorer.image_size == (32, 32) and scorer.num_classes == 4
    own, loaded = model.state_dict(), scorer.model.state_dict()
    assert own.keys() == loaded.keys() and all(torch.equal(own[k], loaded[k]) for k in own)
    assert len(list(tmp_path.glob("LanguageBind_Image-*.pt"))) == 1
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    tokenizer = tokenization.LanguageBindImageTokenizer.from_pretrained(str(folder))
    with torch.no_grad():
        out = scorer(images)
    torch.testing.assert_close(out.probs, _expected_probs(model, tokenizer, images, classes, templates),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(3))
    with torch.no_grad():  # other sizes are resized to the tower's
        assert scorer(torch.rand(1, 3, 48, 40)).probs.shape == (1, 4)


def test_bin_weights_with_old_position_ids_load(tiny, tmp_path):
    model, folder = tiny
    other = tmp_path / "bin"
    other.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(folder / name, other / name)
    state = dict(model.state_dict())
    state["vision_model.embeddings.position_ids"] = torch.arange(17)[None]  # written by older transformers
    torch.save(state, other / "pytorch_model.bin")
    loaded = lb.build_languagebind_model(other)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_errors_are_one_line(tiny, tmp_path):
    _, folder = tiny
    with pytest.raises(InputError, match=r"nope: LanguageBind folder not found"):
        lb.build_languagebind_model(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no LanguageBind config.json"):
        lb.build_languagebind_model(empty)
    shutil.copy(folder / "config.json", empty / "config.json")
    with pytest.raises(InputError, match=r"no LanguageBind weights \(model.safetensors or pytorch_model.bin\)"):
        lb.build_languagebind_model(empty)
    with pytest.raises(InputError, match=r"tokenizer files missing \(vocab.json, merges.txt\)"):
        lb.load_tokenizer(empty)
    torch.save({"x": torch.zeros(1)}, empty / "pytorch_model.bin")
    with pytest.raises(InputError, match="weights do not fit LanguageBindImage"):
        lb.build_languagebind_model(empty)
    from submodular_attribution.adapters.imagebind import import_skipping_init

    with pytest.raises(InputError, match="needs the 'languagebind_not_here' package, which is not installed; pip"):
        import_skipping_init("languagebind_not_here", ["image.modeling_image"], "the LanguageBind adapter", lb.INSTALL_HINT)


def test_imagenet_languagebind_script_end_to_end(tiny, tmp_path):
    from submodular_attribution import smdl_explanation_imagenet_languagebind as script

    _, folder = tiny
    (tmp_path / "samples").mkdir()
    for name in ["chelsea the cat.jpg", "coffee.jpg"]:
        shutil.copy(f"datasets/samples/{name}", tmp_path / "samples" / name)
    (tmp_path / "list.txt").write_text("samples/chelsea the cat.jpg 0\nsamples/coffee.jpg 1\n")
    (tmp_path / "names.txt").write_text("tabby cat\nespresso\nrocket\n")
    assert script.main(["--eval-list", str(tmp_path / "list.txt"), "--checkpoint", str(folder),
                        "--class-names", str(tmp_path / "names.txt"), "--semantic-cache", str(tmp_path / "cache"),
                        "--input-size", "48", "--region-size", "12", "--save-dir", str(tmp_path / "out"),
                        "--device", "cpu", "--batch-size", "16"]) == 0
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert run_dir.name == "slico-1.0-1.0-1.0-1.0"  # the published λ
    results = [load_result(f) for f in find_result_files(run_dir)]
    assert len(results) == 2 and results[0].npy.shape == (48, 48)
    summary = summarize_run(run_dir)
    assert 0 <= summary["insertion_auc"] <= 1
