"""Sound files other than WAV: read through soundfile, the same numbers as the WAV reader, and
one-line errors when the file is bad or soundfile is missing."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile
from scipy.io import wavfile

from submodular_attribution.adapters import imagebind_audio
from submodular_attribution.audio import features
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.sound import read_sound


def _stereo(rate: int = 16000) -> np.ndarray:
    t = np.arange(rate // 4)
    left = (np.sin(t / 7.0) * 12000).astype(np.int16)
    return np.stack([left, (left // 3).astype(np.int16)], axis=1)


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_other_formats_read_as_the_wav_reader_reads_them(tmp_path, suffix):
    samples = _stereo()
    wavfile.write(tmp_path / "a.wav", 16000, samples)
    soundfile.write(tmp_path / f"a{suffix}", samples, 16000)
    wav, wav_rate = read_sound(tmp_path / "a.wav")
    other, rate = read_sound(tmp_path / f"a{suffix}")
    assert (rate, wav_rate) == (16000, 16000) and other.shape == wav.shape == (len(samples), 2)
    np.testing.assert_array_equal(wav, samples / 32768.0)
    if suffix == ".flac":  # lossless: the same numbers
        np.testing.assert_array_equal(other, wav)
    else:  # Vorbis is lossy
        assert np.abs(other - wav).mean() < 0.01
    # Both task readers take it: the embedded one averages channels, ImageBind's keeps C×N.
    np.testing.assert_array_equal(features.read_wav(tmp_path / "a.flac" if suffix == ".flac" else tmp_path / "a.wav"),
                                  wav.mean(axis=1, dtype=np.float32))
    waveform, read_rate = imagebind_audio.read_wav(tmp_path / f"a{suffix}")
    assert read_rate == 16000 and tuple(waveform.shape) == (2, len(samples))


def test_bad_files_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "junk.flac").write_bytes(b"fLaC not really")
    wavfile.write(tmp_path / "empty.wav", 16000, np.zeros(0, np.int16))
    soundfile.write(tmp_path / "fast.flac", _stereo(22050), 22050)
    cases = {
        tmp_path / "junk.flac": "cannot be read as audio",
        tmp_path / "empty.wav": "holds no samples",
        tmp_path / "missing.flac": "audio file not found",
    }
    for path, words in cases.items():
        with pytest.raises(InputError) as err:
            read_sound(path)
        message = str(err.value)
        assert message.count(str(path)) == 1 and words in message and "\n" not in message
    with pytest.raises(InputError, match=r"fast\.flac: sample rate 22050 Hz"):
        features.read_wav(tmp_path / "fast.flac")
    monkeypatch.setitem(sys.modules, "soundfile", None)  # as if it were not installed
    with pytest.raises(InputError, match=r"fast\.flac: only WAV files can be read without the soundfile package"):
        read_sound(tmp_path / "fast.flac")
    assert read_sound(_write(tmp_path / "ok.wav"))[1] == 16000  # WAV needs no soundfile


def _write(path):
    wavfile.write(path, 16000, _stereo())
    return path
