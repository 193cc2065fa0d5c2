"""ImageBind: the audio preprocessing against the reference implementation (fixture), and the
adapter and scripts against a stand-in ``imagebind`` package (same interface, tiny random weights)."""
from __future__ import annotations

import math
import shutil
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.io import wavfile

from evals.auc import summarize_run
from submodular_attribution.adapters import imagebind, imagebind_audio as audio
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.results import find_result_files, load_result
from tests.fixtures.make_imagebind_fbank import OUT as FIXTURE, test_signals as signals

# --------------------------------------------------------------------------- the stand-in package

STANDIN_INIT = '''
raise ImportError("stand-in: imagebind/__init__.py must not run (the real one imports torchaudio)")
'''

STANDIN_MODEL = '''
"""Stand-in for imagebind.models.imagebind_model: the same interface, a tiny network."""
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

ModalityType = SimpleNamespace(VISION="vision", TEXT="text", AUDIO="audio", THERMAL="thermal", DEPTH="depth",
                               IMU="imu")
TEXT_SCALE = 1 / 0.07


class Normalize(nn.Module):
    def forward(self, x):
        return F.normalize(x, dim=-1)


class LearnableLogitScaling(nn.Module):
    def __init__(self, logit_scale_init, learnable):
        super().__init__()
        value = torch.ones([]) * math.log(logit_scale_init)
        if learnable:
            self.log_logit_scale = nn.Parameter(value)
        else:
            self.register_buffer("log_logit_scale", value)

    def forward(self, x):
        return torch.clip(self.log_logit_scale.exp(), max=100) * x


class Pool(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return self.conv(x).relu().mean((2, 3))


class Text(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1000, 8)

    def forward(self, tokens):
        mask = (tokens > 0).float()[..., None]
        return (self.embed(tokens) * mask).sum(1) / mask.sum(1)


class ImageBindModel(nn.Module):
    def __init__(self):
        super().__init__()
        M = ModalityType
        self.modality_trunks = nn.ModuleDict({M.VISION: Pool(nn.Conv2d(3, 8, 16, stride=16)),
                                              M.AUDIO: Pool(nn.Conv2d(1, 8, (16, 17), stride=(16, 17))),
                                              M.TEXT: Text()})
        self.modality_heads = nn.ModuleDict({k: nn.Linear(8, 16) for k in (M.VISION, M.AUDIO, M.TEXT)})
        self.modality_postprocessors = nn.ModuleDict({
            M.VISION: Normalize(),
            M.TEXT: nn.Sequential(Normalize(), LearnableLogitScaling(TEXT_SCALE, True)),
            M.AUDIO: nn.Sequential(Normalize(), LearnableLogitScaling(20.0, False))})

    def forward(self, inputs):
        outputs = {}
        for key, value in inputs.items():
            reduce = value.ndim >= 5
            if reduce:
                B, S = value.shape[:2]
                value = value.reshape(B * S, *value.shape[2:])
            value = self.modality_postprocessors[key](self.modality_heads[key](self.modality_trunks[key](value)))
            if reduce:
                value = value.reshape(B, S, -1).mean(dim=1)
            outputs[key] = value
        return outputs


def imagebind_huge(pretrained=False):
    assert not pretrained, "the adapter must not ask for a download"
    return ImageBindModel()
'''

STANDIN_PREPROCESSORS = '''
import gzip

import torch


class SimpleTokenizer:
    def __init__(self, bpe_path, context_length=77):
        with gzip.open(bpe_path, "rt") as f:
            assert f.read().startswith("#version")
        self.context_length = context_length

    def __call__(self, texts, context_length=None):
        n = context_length or self.context_length
        texts = [texts] if isinstance(texts, str) else texts
        result = torch.zeros(len(texts), n, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [1] + [2 + b % 997 for b in text.encode()][: n - 2] + [999]
            result[i, : len(ids)] = torch.tensor(ids)
        return result[0] if len(result) == 1 else result
'''


def _clear_imagebind():
    for name in [m for m in sys.modules if m == "imagebind" or m.startswith("imagebind.")]:
        del sys.modules[name]


def write_standin(root):
    import gzip

    pkg = root / "imagebind"
    (pkg / "models").mkdir(parents=True)
    (pkg / "bpe").mkdir()
    (pkg / "__init__.py").write_text(STANDIN_INIT)
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "imagebind_model.py").write_text(textwrap.dedent(STANDIN_MODEL))
    (pkg / "models" / "multimodal_preprocessors.py").write_text(textwrap.dedent(STANDIN_PREPROCESSORS))
    with gzip.open(pkg / "bpe" / "bpe_simple_vocab_16e6.txt.gz", "wt") as f:
        f.write("#version: stand-in\n")
    return pkg


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The stand-in package on sys.path and a checkpoint of random weights (text scale 50)."""
    root = tmp_path_factory.mktemp("standin")
    write_standin(root)
    sys.path.insert(0, str(root))
    _clear_imagebind()
    try:
        model_module, _, _ = imagebind.imagebind_modules()
        torch.manual_seed(0)
        model = model_module.imagebind_huge()
        with torch.no_grad():
            model.modality_postprocessors["text"][1].log_logit_scale.fill_(math.log(50.0))
        checkpoint = root / "imagebind_huge.pth"
        torch.save(model.state_dict(), checkpoint)
        yield model.eval(), checkpoint
    finally:
        sys.path.remove(str(root))
        _clear_imagebind()


# --------------------------------------------------------------------------- audio preprocessing


@pytest.mark.reference
def test_reference_imagebind_audio_filterbank(tmp_path):
    fixture = np.load(FIXTURE)
    for name, (rate, samples) in signals().items():
        path = tmp_path / f"{name}.wav"
        wavfile.write(path, rate, samples)
        waveform, read_rate = audio.read_wav(path)
        assert read_rate == rate and waveform.shape == (samples.shape[1], samples.shape[0])
        at16k = audio.resample(waveform, rate, 16000)
        assert audio.clip_boundaries(at16k.shape[1]) == [tuple(b) for b in fixture[f"{name}/bounds"].tolist()]
        clips = audio.load_audio_clips(path).numpy()
        assert clips.shape == (3, 1, 128, 204)
        got = clips.reshape(-1)[fixture[f"{name}/positions"]]
        np.testing.assert_allclose(got, fixture[f"{name}/values"], rtol=0, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(clips[:, 0].mean(2), fixture[f"{name}/bin_means"], rtol=0, atol=1e-4, err_msg=name)


def test_constants_and_clip_sampling():
    assert (audio.NUM_MEL_BINS, audio.TARGET_LENGTH, audio.SAMPLE_RATE) == (128, 204, 16000)
    assert (audio.MEAN, audio.STD) == (-4.268, 9.138)
    # 10 s: starts at 0, 8/3, 16/3 s (truncated to samples); 1 s: three identical clips.
    assert audio.clip_boundaries(160000) == [(0, 32000), (42666, 74666), (85333, 117333)]
    assert audio.clip_boundaries(16000) == [(0, 32000)] * 3
    banks = audio.mel_banks()
    assert banks.shape == (128, 257) and float(banks[:, -1].abs().max()) == 0.0
    # 128 bins on a 512-point FFT: some low bins fall between FFT bins and stay empty, as in Kaldi
    assert float(banks[64:].sum(1).min()) > 0 and float(banks[:16].sum(1).min()) == 0


def test_spectrogram_image_silence_is_zero_and_round_trip(tmp_path):
    wavfile.write(tmp_path / "silence.wav", 16000, np.zeros(32000, np.int16))
    image = audio.spectrogram_image(tmp_path / "silence.wav")
    assert image.shape == (128, 204, 3) and image.dtype == np.uint8
    # 2 s = 198 frames of silence, then ImageBind's zero padding (log-mel 0, not silence).
    assert image[:, :198].max() == 0
    assert (image[:, 198:] == round(-audio.SILENCE / (audio.CEILING - audio.SILENCE) * 255)).all()
    rate, samples = signals()["mono16k_5s"]
    wavfile.write(tmp_path / "tone.wav", rate, samples)
    fbank = audio.waveform_clips(*audio.read_wav(tmp_path / "tone.wav"))
    image = audio.spectrogram_image(tmp_path / "tone.wav")
    back = audio.image_to_fbank(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)[0]
    step = (audio.CEILING - audio.SILENCE) / 255
    assert float((back - fbank).abs().max()) <= step / 2 + 1e-5
    # Orientation: mel bin 3 has no FFT bin (empty filter, silence in every frame); it is row 127 − 3.
    assert float(audio.mel_banks()[3].sum()) == 0 and image[124, :198].max() == 0 and image[3, :198, 0].min() > 0
    with pytest.raises(InputError, match="--input-size 224 224: .*use --input-size 128 204"):
        audio.spectrogram_image(tmp_path / "tone.wav", (224, 224))
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(InputError, match=r"bad\.wav: cannot be read as a WAV file"):
        audio.read_wav(tmp_path / "bad.wav")


# --------------------------------------------------------------------------- the adapter


def test_missing_or_placeholder_package_is_one_line(tmp_path, monkeypatch):
    _clear_imagebind()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "standin" not in p])
    with pytest.raises(InputError, match="needs the 'imagebind' package.*empty placeholder"):
        imagebind.imagebind_modules()
    # The PyPI placeholder: an 'imagebind' with nothing inside.
    (tmp_path / "imagebind").mkdir()
    (tmp_path / "imagebind" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(InputError, match=r"has no imagebind\.models\.imagebind_model: not the real package"):
            imagebind.imagebind_modules()
    finally:
        _clear_imagebind()


def test_vision_scorer_by_hand(standin, tmp_path):
    model, checkpoint = standin
    classes, templates = ["cat", "coffee", "rocket"], ["a photo of a {}.", "a {}."]
    scorer = imagebind.build_imagebind_scorer(checkpoint, "vision", classes, templates, cache_dir=tmp_path)
    assert scorer.logit_scale == 100.0 and scorer.num_classes == 3
    assert len(list(tmp_path.glob("imagebind_huge-*.pt"))) == 1
    tok = sys.modules["imagebind.models.multimodal_preprocessors"].SimpleTokenizer(
        str(sys.modules["imagebind"].__path__[0] + "/bpe/bpe_simple_vocab_16e6.txt.gz"))
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        protos = []
        for name in classes:
            text = model({"text": tok([t.format(name) for t in templates])})["text"]
            mean = F.normalize(text, dim=-1).mean(0)
            protos.append(mean / mean.norm())
        mean = torch.tensor(imagebind.OPENAI_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(imagebind.OPENAI_STD).view(1, 3, 1, 1)
        e = model({"vision": (images - mean) / std})["vision"]
        expected = (100 * e @ torch.stack(protos).T).softmax(-1)
        out = scorer(images)
    torch.testing.assert_close(out.probs, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(2))
    assert scorer.attribution_module is scorer.model.modality_trunks["vision"]


def test_audio_scorer_temperature_and_clips(standin, tmp_path):
    model, checkpoint = standin
    classes = imagebind.vggsound_classes()
    assert len(classes) == 309 == len(set(classes)) and classes[0] == "air conditioning noise"
    scorer = imagebind.build_imagebind_scorer(checkpoint, "audio", classes[:4], imagebind.VGGSOUND_TEMPLATES,
                                              cache_dir=tmp_path)
    assert scorer.logit_scale == pytest.approx(0.05 * 20 * 50)  # 0.05 · s_audio · s_text
    rate, samples = signals()["stereo44k_3s"]
    wavfile.write(tmp_path / "s.wav", rate, samples)
    image = torch.from_numpy(audio.spectrogram_image(tmp_path / "s.wav")).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        got = scorer(image)
        # ImageBind's own path: the 3 normalised clips as one B×S×1×128×204 input.
        e = F.normalize(model({"audio": audio.load_audio_clips(tmp_path / "s.wav")[None]})["audio"], dim=-1)
    torch.testing.assert_close(got.embeddings, e, rtol=0, atol=2e-3)  # only the 8-bit quantisation differs
    assert got.probs.shape == (1, 4)


def test_missing_weights_and_bad_modality(standin, tmp_path):
    with pytest.raises(InputError, match=r"nope\.pth: ImageBind weights not found"):
        imagebind.build_imagebind_scorer(tmp_path / "nope.pth", "vision", ["a"], ["{}"], cache_dir=tmp_path)
    with pytest.raises(InputError, match="modality 'depth'"):
        imagebind.build_imagebind_scorer(standin[1], "depth", ["a"], ["{}"], cache_dir=tmp_path)
    torch.save({"other": torch.zeros(2)}, tmp_path / "wrong.pth")
    with pytest.raises(InputError, match=r"wrong\.pth: weights do not fit ImageBindModel"):
        imagebind.build_imagebind_scorer(tmp_path / "wrong.pth", "vision", ["a"], ["{}"], cache_dir=tmp_path)


# --------------------------------------------------------------------------- scripts


@pytest.mark.parametrize("name", ["imagenet_imagebind", "imagenet_languagebind", "vggsound_imagebind"])
def test_scripts_answer_help(name, capsys):
    import importlib

    module = importlib.import_module(f"submodular_attribution.smdl_explanation_{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--class-names" in text and "--semantic-cache" in text and "--checkpoint" in text


def _run(module, tmp_path, *args):
    assert module.main([*args, "--save-dir", str(tmp_path / "out"), "--device", "cpu", "--batch-size", "16"]) == 0
    (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    results = [load_result(f) for f in find_result_files(run_dir)]
    summary = summarize_run(run_dir)
    assert 0 <= summary["insertion_auc"] <= 1 and 0 <= summary["deletion_auc"] <= 1
    return run_dir, results


def test_imagenet_imagebind_script_end_to_end(standin, tmp_path):
    from submodular_attribution import smdl_explanation_imagenet_imagebind as script

    _, checkpoint = standin
    (tmp_path / "samples").mkdir()
    for name in ["chelsea the cat.jpg", "coffee.jpg"]:
        shutil.copy(f"datasets/samples/{name}", tmp_path / "samples" / name)
    (tmp_path / "list.txt").write_text("samples/chelsea the cat.jpg 0\nsamples/coffee.jpg 1\n")
    (tmp_path / "names.txt").write_text("tabby cat\nespresso\nrocket\n")
    run_dir, results = _run(script, tmp_path, "--eval-list", str(tmp_path / "list.txt"), "--checkpoint", str(checkpoint),
                            "--class-names", str(tmp_path / "names.txt"), "--semantic-cache", str(tmp_path / "cache"),
                            "--input-size", "64", "--region-size", "16")
    assert run_dir.name == "slico-0.01-0.05-20.0-10.0"  # the published greedy λ
    assert len(results) == 2 and results[0].record["target_name"] in ("tabby cat", "espresso")
    assert results[0].npy.shape == (64, 64)


def test_vggsound_imagebind_script_end_to_end(standin, tmp_path):
    from submodular_attribution import smdl_explanation_vggsound_imagebind as script

    _, checkpoint = standin
    rate, samples = signals()["mono16k_5s"]
    wavfile.write(tmp_path / "tone.wav", rate, samples)
    (tmp_path / "list.txt").write_text("tone.wav 2\n")
    run_dir, results = _run(script, tmp_path, "--eval-list", str(tmp_path / "list.txt"), "--checkpoint", str(checkpoint),
                            "--semantic-cache", str(tmp_path / "cache"), "--region-size", "40")
    assert run_dir.name.startswith("grid-0.01-0.05-20.0-5.0")
    (result,) = results
    assert result.npy.shape == (128, 204) and result.record["num_regions"] == 15  # 3 × 5 cells of ~40 px
    assert result.record["target_name"] == "airplane"


def test_scripts_fail_with_one_line_without_the_package(tmp_path, monkeypatch, capsys):
    from submodular_attribution import smdl_explanation_imagenet_imagebind as script

    _clear_imagebind()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "standin" not in p])
    (tmp_path / "a.jpg").write_bytes(open("datasets/samples/coffee.jpg", "rb").read())
    (tmp_path / "list.txt").write_text("a.jpg 0\n")
    (tmp_path / "names.txt").write_text("a\nb\n")
    code = script.main(["--eval-list", str(tmp_path / "list.txt"), "--checkpoint", str(tmp_path / "x.pth"),
                        "--class-names", str(tmp_path / "names.txt"), "--save-dir", str(tmp_path / "out"),
                        "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "imagebind" in err and "empty placeholder" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
