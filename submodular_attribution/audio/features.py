"""Audio in, as the image models and the region search see it: a log-mel spectrogram image.

The representation (computed with torch only; no torchaudio, no librosa):

* **Waveform**: mono float in [-1, 1] at :data:`SAMPLE_RATE` (16 kHz), the first
  :data:`CLIP_SECONDS` (2 s) of the file; a shorter clip is padded with silence (zeros) at the end.
* **Power spectrum**: ``torch.stft`` with a periodic Hann window of :data:`N_FFT` = 1024 samples
  (64 ms), hop :data:`HOP` = 400 samples (25 ms), frames centred on ``t·HOP`` with zero padding,
  the first :data:`N_FRAMES` = 80 frames kept (frame t is centred at t × 25 ms). |X|² is divided by
  ``(Σ window / 2)²``, the peak-bin power of a full-scale sine, so levels are dBFS (a full-scale
  sine at a band's centre reads 0 to +2 dB, its window's main lobe spanning several FFT bins).
* **Mel**: :data:`N_MELS` = 80 triangular filters of peak 1 (HTK mel scale, ``2595·log10(1+f/700)``),
  centres evenly spaced in mel between :data:`FMIN` = 40 Hz and :data:`FMAX` = 8 kHz.
* **dB and [0, 1]**: ``10·log10(mel power)``, clipped to [:data:`FLOOR_DB`, 0] = [-80, 0] dBFS and
  mapped linearly to [0, 1]. Silence (and anything at or below -80 dBFS) is exactly **0**, which is
  the value the search gives removed regions, so a removed time–frequency patch is silence; a band
  at or above 0 dBFS is 1.
* **Image**: mel bins on the vertical axis, **low frequencies at the bottom** (row 0 is the highest
  band), time left to right, the same value in the three channels, quantised to uint8 as
  ``round(255·value)``: 256 levels over the 80 dB range, 0.31 dB per level.

The image is ``N_MELS × N_FRAMES`` = 80 × 80: square, so the CLI's grid of side 10 px (``--num-regions
64``) is an exact 8 × 8 time × frequency grid and side 8 px (``--num-regions 100``) an exact 10 × 10 one.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from ..common.errors import InputError
from ..common.sound import read_sound

__all__ = [
    "SAMPLE_RATE", "CLIP_SECONDS", "CLIP_SAMPLES", "N_FFT", "HOP", "N_MELS", "N_FRAMES", "FMIN", "FMAX",
    "FLOOR_DB", "IMAGE_SHAPE", "hz_to_mel", "mel_to_hz", "mel_filterbank", "mel_center_frequencies",
    "frame_times", "log_mel_db", "db_to_unit", "unit_to_db", "unit_to_image", "spectrogram_image", "read_wav",
    "load_spectrogram_image", "tone",
]

SAMPLE_RATE = 16_000
CLIP_SECONDS = 2.0
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
N_FFT = 1024
HOP = 400
N_MELS = 80
N_FRAMES = 80
FMIN = 40.0
FMAX = 8000.0
FLOOR_DB = -80.0
#: (H, W) of the spectrogram image: mel bands × frames.
IMAGE_SHAPE: tuple[int, int] = (N_MELS, N_FRAMES)


def hz_to_mel(hz):
    """HTK mel scale: ``2595·log10(1 + f/700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_center_frequencies(n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Centre frequency (Hz) of each mel filter, lowest first (``n_mels`` values)."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)[1:-1])


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   fmin: float = FMIN, fmax: float = FMAX) -> torch.Tensor:
    """``n_mels × (n_fft//2 + 1)`` float32 triangular filters, peak 1 at each centre frequency,
    falling linearly (in Hz) to 0 at the neighbouring centres."""
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32))


def frame_times(n_frames: int = N_FRAMES) -> np.ndarray:
    """Centre time (s) of each frame."""
    return np.arange(n_frames) * HOP / SAMPLE_RATE


def _fit_length(waveform: torch.Tensor) -> torch.Tensor:
    n = waveform.shape[-1]
    if n >= CLIP_SAMPLES:
        return waveform[..., :CLIP_SAMPLES]
    return torch.nn.functional.pad(waveform, (0, CLIP_SAMPLES - n))


def log_mel_db(waveform) -> torch.Tensor:
    """Mel power in dBFS (not clipped) of one clip (``T`` samples) or a batch (``B×T``), float32
    ``[B×]N_MELS×N_FRAMES``, lowest band first. Silence gives -inf clipped at -200 dB."""
    x = torch.as_tensor(waveform, dtype=torch.float32)
    squeeze = x.ndim == 1
    x = _fit_length(x.reshape(-1, x.shape[-1]))
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float32)
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()
    power = power[..., :N_FRAMES] / float(window.sum() / 2) ** 2
    mel = mel_filterbank() @ power
    db = 10.0 * torch.log10(mel.clamp_min(1e-20))
    return db[0] if squeeze else db


def db_to_unit(db) -> torch.Tensor:
    """dBFS → [0, 1]: ``(clip(db, FLOOR_DB, 0) − FLOOR_DB) / −FLOOR_DB``; FLOOR_DB and below → 0."""
    db = torch.as_tensor(db, dtype=torch.float32)
    return (db.clamp(FLOOR_DB, 0.0) - FLOOR_DB) / -FLOOR_DB


def unit_to_db(unit) -> np.ndarray:
    """[0, 1] → dBFS (the inverse of :func:`db_to_unit` on [FLOOR_DB, 0])."""
    return FLOOR_DB + np.asarray(unit, dtype=np.float64) * -FLOOR_DB


def unit_to_image(unit) -> np.ndarray:
    """``N_MELS×N_FRAMES`` values in [0, 1] (lowest band first) → ``N_MELS×N_FRAMES×3`` uint8 image,
    lowest band at the bottom, ``round(255·value)`` in all three channels."""
    unit = np.asarray(unit, dtype=np.float32)
    levels = np.rint(np.flipud(unit) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(levels[:, :, None], 3, axis=2))


def spectrogram_image(waveform) -> np.ndarray:
    """A mono clip (float samples in [-1, 1] at SAMPLE_RATE) → its H×W×3 uint8 spectrogram image."""
    return unit_to_image(db_to_unit(log_mel_db(waveform)).numpy())


def read_wav(path: str | Path) -> np.ndarray:
    """A sound file as mono float32 samples in [-1, 1], channels averaged (WAV, or any format
    ``soundfile`` reads when it is installed: :func:`~submodular_attribution.common.sound.read_sound`).
    A missing or unreadable file, an empty one or a sample rate other than SAMPLE_RATE is an
    :class:`InputError` naming it."""
    data, rate = read_sound(path)
    if rate != SAMPLE_RATE:
        raise InputError(f"{path}: sample rate {rate} Hz; this model takes {SAMPLE_RATE} Hz (resample the file)")
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def load_spectrogram_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """The list-item loader of audio tasks: a sound file (:func:`read_wav`) → its H×W×3 uint8 spectrogram image
    (:func:`spectrogram_image`), resized bilinearly to ``size`` = (H, W) when that differs from
    :data:`IMAGE_SHAPE` (as images are resized to ``--input-size``)."""
    image = spectrogram_image(read_wav(path))
    if size is not None and tuple(size) != image.shape[:2]:
        image = cv2.resize(image, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
    return image


def tone(freq: float, seconds: float = CLIP_SECONDS, amplitude: float = 1.0) -> np.ndarray:
    """A sine of ``freq`` Hz (for checks): float32 samples at SAMPLE_RATE."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    return (amplitude * np.sin(2.0 * math.pi * freq * t)).astype(np.float32)
