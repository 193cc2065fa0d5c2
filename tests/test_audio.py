"""The embedded audio default: log-mel features, clips and masks, the WAV reader, the task script
end to end with a tiny model, and a hand-built scorer whose answer is known."""
from __future__ import annotations

import dataclasses
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from evals import audio_pointing, eval_AUC_faithfulness
from submodular_attribution import cli, smdl_explanation_audio as audio_script
from submodular_attribution.audio import data as audio_data
from submodular_attribution.audio import features as F
from submodular_attribution.audio.model import AudioCNN, train_audio_cnn
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.lists import read_eval_list
from submodular_attribution.common.results import iter_results
from submodular_attribution.models import ModelOutput
from submodular_attribution.regions import grid_division
from visualization import spectrogram as spectrogram_figures
from visualization.folders import find_photo


# ---- features -------------------------------------------------------------------------------

@pytest.mark.parametrize("band", [3, 30, 62])
def test_a_tone_peaks_in_its_mel_band_and_image_row(band):
    freq = F.mel_center_frequencies()[band]
    db = F.log_mel_db(F.tone(freq))
    assert db.shape == (F.N_MELS, F.N_FRAMES)
    assert int(db[:, 5:-5].mean(1).argmax()) == band
    assert -0.5 < float(db[band, 10]) < 2.5  # a full-scale sine reads about 0 dBFS
    image = F.spectrogram_image(F.tone(freq))
    assert image.shape == (80, 80, 3) and image.dtype == np.uint8
    assert (image[:, :, 0] == image[:, :, 2]).all()
    assert int(image[:, 40, 0].argmax()) == F.N_MELS - 1 - band  # low frequencies at the bottom
    row = F.N_MELS - 1 - band
    loud, quiet = (F.spectrogram_image(F.tone(freq, amplitude=a))[row, 40, 0] for a in (0.5, 0.005))
    assert abs(int(loud) - int(quiet) - 127.5) <= 1.5  # 40 dB apart: half of the 255 levels


def test_silence_maps_to_zero_exactly():
    assert F.spectrogram_image(np.zeros(F.CLIP_SAMPLES)).max() == 0
    assert float(F.db_to_unit(torch.tensor([-200.0, F.FLOOR_DB])).max()) == 0.0
    # a short clip is padded with silence: the second half of the image is 0
    half = F.spectrogram_image(F.tone(1000.0, seconds=1.0))
    assert half[:, 45:].max() == 0 and half[:, :38].max() > 200


def test_unit_round_trip_and_quantisation():
    db = torch.linspace(F.FLOOR_DB, 0.0, 161)
    unit = F.db_to_unit(db)
    assert float(unit[0]) == 0.0 and float(unit[-1]) == 1.0
    np.testing.assert_allclose(F.unit_to_db(unit.numpy()), db.numpy(), atol=1e-4)
    assert float(F.db_to_unit(torch.tensor(6.0))) == 1.0  # above full scale clips to 1
    image = F.unit_to_image(unit.reshape(1, -1).numpy())
    back = F.unit_to_db(image[0, :, 0] / 255.0)
    assert np.abs(back - db.numpy()).max() <= 0.5 * 80 / 255 + 1e-6  # 256 levels over 80 dB


def _write_wav(path: Path, samples: np.ndarray, rate: int = F.SAMPLE_RATE, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.asarray(samples, np.int16).tobytes())
    return path


def test_read_wav_formats_and_errors(tmp_path):
    samples = (np.sin(np.arange(1600) / 5.0) * 16384).astype(np.int16)
    read = F.read_wav(_write_wav(tmp_path / "a.wav", samples))
    np.testing.assert_allclose(read, samples / 32768.0)
    stereo = np.stack([samples, np.zeros_like(samples)], 1).reshape(-1)
    np.testing.assert_allclose(F.read_wav(_write_wav(tmp_path / "s.wav", stereo, channels=2)), samples / 65536.0)
    cases = {
        _write_wav(tmp_path / "rate.wav", samples, rate=44100): "sample rate 44100 Hz",
        tmp_path / "missing.wav": "not found",
    }
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00not a wav file at all")
    cases[tmp_path / "junk.wav"] = "cannot be read as a WAV file"
    for path, words in cases.items():
        with pytest.raises(InputError) as err:
            F.load_spectrogram_image(path, (80, 80))
        message = str(err.value)
        assert "\n" not in message and str(path) in message and words in message


def test_load_spectrogram_image_resizes_like_images(tmp_path):
    path = tmp_path / "t.wav"
    audio_data.write_wav(path, F.tone(500.0, amplitude=0.5))
    native = F.load_spectrogram_image(path, F.IMAGE_SHAPE)
    np.testing.assert_array_equal(native, F.spectrogram_image(F.read_wav(path)))
    assert F.load_spectrogram_image(path, (40, 120)).shape == (40, 120, 3)


# ---- clips and masks -------------------------------------------------------------------------

def test_clips_are_deterministic_and_masks_hold_the_event():
    a = audio_data.make_split(16, seed=5)
    b = audio_data.make_split(16, seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    images, labels, masks = a
    assert np.bincount(labels, minlength=8).tolist() == [2] * 8
    waves, labels2, masks2 = audio_data.make_clips(16, seed=5)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(masks, masks2)
    assert np.abs(waves).max() < 1.0
    for image, mask, label in zip(images, masks, labels):
        assert 0 < mask.mean() < 0.3
        # event pixels are louder than the rest of the clip, on average by several dB
        assert image[mask].mean() > image[~mask].mean() + 10
    tone = [m for m, label in zip(masks, labels) if audio_data.CLASS_NAMES[label] == "steady_tone"]
    for mask in tone:  # a steady tone covers a few adjacent bands over one stretch of time
        rows = np.nonzero(mask.any(1))[0]
        assert rows.max() - rows.min() <= 5


def test_write_eval_set_layout_and_idempotence(tmp_path):
    list_path = audio_data.write_eval_set(tmp_path / "audio", n=4)
    items = read_eval_list(list_path)
    assert len(items) == 4 and all(item.path.endswith(".wav") for item in items)
    for item in items:
        wav = list_path.parent / item.path
        assert audio_data.CLASS_NAMES[item.label] in item.path
        assert F.read_wav(wav).shape == (F.CLIP_SAMPLES,)
        assert audio_data.load_mask(wav).shape == (80, 80) and audio_data.load_mask(wav).any()
    stamp = list_path.stat().st_mtime_ns
    assert audio_data.write_eval_set(tmp_path / "audio", n=4) == list_path
    assert list_path.stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "audio" / "meta.json").read_text())["data_version"] == audio_data.DATA_VERSION


# ---- the search on spectrograms -------------------------------------------------------------------

class OnePatchScorer:
    """Two classes; the logit of class 1 is 40 × the mean of one time–frequency patch of the
    spectrogram image (rows/cols of cell (3, 5) of the 8 × 8 grid), so only that patch matters."""

    def __init__(self, cell=(3, 5)):
        self.device = torch.device("cpu")
        self.num_classes = 2
        self.rows = slice(10 * cell[0], 10 * cell[0] + 10)
        self.cols = slice(10 * cell[1], 10 * cell[1] + 10)

    def __call__(self, images):
        logit = 40.0 * images[:, 0, self.rows, self.cols].double().mean(dim=(1, 2))
        return ModelOutput(probs=torch.stack([torch.zeros_like(logit), logit], -1).softmax(-1))


def test_known_answer_the_search_picks_the_patch_the_scorer_reads(tmp_path):
    list_path = audio_data.write_eval_set(tmp_path / "audio", n=2)
    lines = [f"{item.path} 1" for item in read_eval_list(list_path)]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    model = dataclasses.replace(audio_script.TASK.model, build_scorer=lambda args, device, emb: OnePatchScorer())
    task = dataclasses.replace(audio_script.TASK, model=model)
    args = cli.get_args_parser(task).parse_args([
        "--eval-list", str(tmp_path / "list.txt"), "--datasets", str(list_path.parent), "--save-dir",
        str(tmp_path / "out"), "--device", "cpu", "--lambda1", "0", "--lambda4", "0"])
    outcome = cli.run(task, args)
    assert outcome.report.exit_status == 0
    expected = grid_division(80, 80, 8, 8) == 3 * 8 + 5
    results = list(iter_results(outcome.run_dir))
    assert len(results) == 2
    for result in results:
        assert result.npy.shape == (80, 80)
        assert (result.npy[expected] == 0).all() and (result.npy[~expected] > 0).all()
        assert result.record["division"]["algorithm"] == "grid"


def test_pointing_scores_by_hand():
    ranks = np.array([[0, 0, 1], [2, 2, 1], [3, 3, 3]])
    mask = np.zeros((3, 3), bool)
    mask[1, 2] = True  # in region 1
    assert audio_pointing.pointing_scores(ranks, mask) == {"hit": 0.0, "chance": 0.25, "top10_recall": 0.0}
    mask[0, 1] = True  # region 0 too
    assert audio_pointing.pointing_scores(ranks, mask) == {"hit": 1.0, "chance": 0.5, "top10_recall": 0.5}


# ---- the script end to end with a tiny model ------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    net, info = train_audio_cnn(seed=0, n_train=16, n_val=8, epochs=1, progress=False)  # the plumbing, not skill
    path = tmp_path_factory.mktemp("audio_ckpt") / "audio_cnn.pt"
    torch.save({"state_dict": net.state_dict(), "info": info}, path)
    return path


def test_script_end_to_end_with_evaluations_and_figures(tmp_path, tiny_checkpoint, capsys):
    list_path = audio_data.write_eval_set(tmp_path / "audio", n=2)
    out = tmp_path / "out"
    common = ["--eval-list", str(list_path), "--checkpoint", str(tiny_checkpoint), "--save-dir", str(out),
              "--device", "cpu"]
    assert audio_script.main(common + ["--search", "fast", "--num-regions", "16"]) == 0  # 4 × 4 patches
    assert audio_script.main(common + ["--search", "random", "--division", "slico"]) == 0
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 2
    for run_dir in runs:
        capsys.readouterr()
        assert eval_AUC_faithfulness.main(["--explanation-dir", str(run_dir), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["num_images"] == 2 and 0.0 <= summary["insertion_auc"] <= 1.0
        assert audio_pointing.main(["--explanation-dir", str(run_dir), "--json"]) == 0
        pointing = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert pointing["num_clips"] == 2 and 0.0 < pointing["chance"] < 1.0
    grid_run = next(r for r in runs if r.name.startswith("grid"))
    result = next(iter_results(grid_run))
    assert int(result.npy.max()) == 15 and result.record["division"]["region_size"] == 20
    assert spectrogram_figures.main(["--explanation-dir", str(grid_run), "--images", "1"]) == 0
    assert len(list((grid_run / "figures" / "spectrogram").rglob("*.png"))) == 1
    # the generic figures read the clip through the same spectrogram loader (no 'photo not found')
    image, why = find_photo(result.record, [list_path.parent], (80, 80))
    assert why is None
    np.testing.assert_array_equal(image, F.load_spectrogram_image(list_path.parent / result.record["image"]))


def test_a_bad_clip_is_one_line_and_the_run_goes_on(tmp_path, tiny_checkpoint, capsys):
    list_path = audio_data.write_eval_set(tmp_path / "audio", n=2)
    bad = list_path.parent / "clips" / "bad.wav"
    _write_wav(bad, np.zeros(100, np.int16), rate=8000)
    list_path.write_text(list_path.read_text() + "clips/bad.wav 0\n")
    status = audio_script.main(["--eval-list", str(list_path), "--checkpoint", str(tiny_checkpoint), "--save-dir",
                                str(tmp_path / "out"), "--device", "cpu", "--search", "random"])
    assert status == 1
    err = capsys.readouterr().err
    assert "bad.wav: sample rate 8000 Hz" in err
    (run_dir,) = list((tmp_path / "out").iterdir())
    assert len(list(iter_results(run_dir))) == 2


def test_help_and_defaults(capsys):
    with pytest.raises(SystemExit) as done:
        audio_script.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "datasets/audio/eval_list.txt" in text and "audio_cnn.pt" in text
    args = cli.get_args_parser(audio_script.TASK).parse_args([])
    assert (args.division, args.region_size, args.input_size) == ("grid", 10, [80, 80])


def test_audio_cnn_shapes():
    net = AudioCNN().eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 3, 80, 80)).shape == (2, 8)
        assert net.forward_features(torch.zeros(1, 3, 80, 80)).shape == (1, 64)


def test_training_is_deterministic_by_seed():
    runs = [train_audio_cnn(seed=s, n_train=16, n_val=8, epochs=1, progress=False)[0].state_dict() for s in (0, 0, 1)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.equal(runs[0]["head.weight"], runs[2]["head.weight"])


def test_baseline_maps_and_highest_confidence_read_the_clips(tmp_path, tiny_checkpoint, capsys):
    """The map generator and highest_confidence read each list item through the task's loader:
    a WAV clip becomes the same 80×80 spectrogram image the SMDL script explains."""
    from baseline_attribution import generate_explanation_maps
    from evals import highest_confidence

    list_path = audio_data.write_eval_set(tmp_path / "audio", n=2)
    maps = tmp_path / "maps"
    common = ["--model", "audio", "--eval-list", str(list_path), "--checkpoint", str(tiny_checkpoint),
              "--device", "cpu"]
    assert generate_explanation_maps.main(["--method", "gradcam", "--save-dir", str(maps), *common]) == 0
    saved = sorted(maps.rglob("*.npy"))
    assert len(saved) == 2 and all(np.load(p).shape == (80, 80) for p in saved)
    capsys.readouterr()
    assert highest_confidence.main(["--maps", str(maps), "--json", "--budgets", "0.5", *common]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "saliency" and summary["num_images"] == 2
