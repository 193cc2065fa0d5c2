"""ImageBind's audio input, in torch only (no torchaudio, no pytorchvideo).

ImageBind (``imagebind/data.py``, ``load_and_transform_audio_data``) turns a sound file into
three 2-second clips, each a 128 × 204 log-mel filterbank, normalised with mean −4.268 and
std 9.138. This module computes the same numbers:

1. the file is read as float in [−1, 1] (``C×N``; 16-bit PCM divided by 32768, as
   ``torchaudio.load`` does) and resampled to 16 kHz with the windowed-sinc resampler that
   ``torchaudio.functional.resample`` uses by default (Hann window, 6 zero crossings,
   roll-off 0.99);
2. clip times: pytorchvideo's ``ConstantClipsPerVideoSampler(clip_duration=2,
   clips_per_video=3)``: clip ``k`` starts at ``k · max(duration − 2, 0) / 3`` seconds (exact
   fractions), and samples ``int(start·16000) … int(end·16000)`` are taken, so clips of a file
   shorter than 6 s overlap and a file shorter than 2 s gives three short clips;
3. each clip has its mean (over all channels) subtracted *in place*, as ImageBind does on a view of
   the waveform — overlapping clips therefore see samples already shifted by the earlier clips'
   means; this is reproduced;
4. Kaldi filterbank of the first channel (``torchaudio.compliance.kaldi.fbank`` with ImageBind's
   settings): 25 ms frames every 10 ms (400/160 samples, snip-edges framing), per-frame DC removal,
   pre-emphasis 0.97, symmetric Hann ("hanning") window, FFT of 512, power spectrum, 128
   triangular mel bins from 20 Hz to 8 kHz on Kaldi's mel scale ``1127 ln(1 + f/700)``, natural
   log floored at float32 epsilon; no dither, no energy term;
5. transposed to mel × frames and padded on the right with **0** (or cropped) to 204 frames
   (2 s gives 198 frames, so the last 6 columns are 0 in every clip: ImageBind's own padding);
6. normalised ``(fbank + 4.268) / 9.138``.

Checked against the reference implementation to 1e-4 by ``tests/test_adapter_imagebind.py`` with
the fixture made by ``tests/fixtures/make_imagebind_fbank.py``.

As an image for the region search (:func:`spectrogram_image`): channel ``k`` holds clip ``k``,
rows are mel bins with the highest at the top, columns are frames; pixel values map linearly
``u = 255 · (fbank − SILENCE) / (CEILING − SILENCE)`` (clipped to 0…255), so a removed region
(0) is digital silence: ``SILENCE = ln(float32 eps) ≈ −15.94`` is exactly what the filterbank
gives for a frame of zeros. ``CEILING = 12`` is above any full-scale signal's log-mel energy
(≈ 10.6 for a full-scale sine). The 8-bit map quantises log-mel values in steps of 0.11
(0.012 after normalisation). (The original SMDL-Attribution script instead zeroed removed patches
of the *normalised* filterbank, i.e. filled them with the dataset's mean level −4.268.)
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..common.errors import InputError
from ..common.sound import read_sound

SAMPLE_RATE = 16000
NUM_MEL_BINS = 128
TARGET_LENGTH = 204  # frames per clip
CLIP_DURATION = 2  # seconds
CLIPS_PER_VIDEO = 3
MEAN = -4.268
STD = 9.138
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
SILENCE = math.log(torch.finfo(torch.float32).eps)  # the log-mel value of digital silence
CEILING = 12.0
IMAGE_SIZE = (NUM_MEL_BINS, TARGET_LENGTH)  # H × W of the spectrogram image


# --------------------------------------------------------------------------- reading


def read_wav(path: str | Path) -> tuple[torch.Tensor, int]:
    """``(C×N float32 waveform in [−1, 1], sample rate)`` of a WAV file, or of any format
    ``soundfile`` reads when it is installed
    (:func:`~submodular_attribution.common.sound.read_sound`); failures are one-line InputErrors."""
    data, rate = read_sound(path)
    return torch.from_numpy(np.ascontiguousarray(data.T)), rate


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int, zero_crossings: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited resampling of ``C×N`` (the default method of ``torchaudio.functional.resample``):
    the rates are divided by their gcd; output sample ``j`` of each block of ``new`` samples is a
    Hann-windowed sinc interpolation (cut-off ``rolloff · min(orig, new) / 2``, ``zero_crossings``
    zero crossings each side) of the input block of ``orig`` samples; ``ceil(new·N/orig)`` samples."""
    if orig_freq == new_freq:
        return waveform
    g = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // g, int(new_freq) // g
    dtype = waveform.dtype if waveform.dtype in (torch.float32, torch.float64) else torch.float32
    base = min(orig, new) * rolloff
    width = math.ceil(zero_crossings * orig / base)
    # The kernel is computed in the signal's dtype, as torchaudio does.
    idx = torch.arange(-width, width + orig, dtype=dtype)[None, :] / orig
    t = (torch.arange(0, -new, -1, dtype=dtype)[:, None] / new + idx) * base
    t = t.clamp(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t = t * math.pi
    scale = base / orig
    kernel = torch.where(t == 0, torch.tensor(1.0, dtype=t.dtype), t.sin() / t) * window * scale
    kernel = kernel[:, None, :]  # new × 1 × taps
    shape = waveform.shape
    x = waveform.reshape(-1, 1, shape[-1]).to(dtype)
    n = shape[-1]
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x, kernel, stride=orig)  # B × new × blocks
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = math.ceil(new * n / orig)
    return y[..., :target].reshape(*shape[:-1], target)


# --------------------------------------------------------------------------- clips


def clip_boundaries(num_samples: int, sample_rate: int = SAMPLE_RATE, clip_duration: int = CLIP_DURATION,
                    clips_per_video: int = CLIPS_PER_VIDEO) -> list[tuple[int, int]]:
    """Sample ranges ``[start, end)`` of the clips (pytorchvideo's constant-clips-per-video sampler
    on a duration of ``num_samples / sample_rate`` seconds, times truncated to samples)."""
    duration = num_samples / sample_rate
    # As the sampler: float − Fraction is a float, then taken exactly as a Fraction.
    longest_start = Fraction(max(duration - Fraction(clip_duration), 0))
    step = Fraction(longest_start, clips_per_video)
    bounds = []
    for k in range(clips_per_video):
        start = step * k
        bounds.append((int(start * sample_rate), int((start + clip_duration) * sample_rate)))
        if k + 1 < clips_per_video and step * (k + 1) > longest_start:
            break
    return bounds


# --------------------------------------------------------------------------- filterbank


def _mel(freq: torch.Tensor | float):
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log(1.0 + freq / 700.0)
    return 1127.0 * math.log(1.0 + freq / 700.0)


def mel_banks(num_bins: int = NUM_MEL_BINS, fft_size: int = 512, sample_rate: int = SAMPLE_RATE,
              low_freq: float = LOW_FREQ) -> torch.Tensor:
    """``num_bins × (fft_size/2 + 1)`` triangular weights, equally spaced on Kaldi's mel scale
    from ``low_freq`` to Nyquist; the last (Nyquist) FFT bin has weight 0, as in Kaldi."""
    half = fft_size // 2
    low, high = _mel(low_freq), _mel(0.5 * sample_rate)
    delta = (high - low) / (num_bins + 1)
    b = torch.arange(num_bins, dtype=torch.float32)[:, None]
    left, center, right = low + b * delta, low + (b + 1) * delta, low + (b + 2) * delta
    mel = _mel(sample_rate / fft_size * torch.arange(half, dtype=torch.float32))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(weights, (0, 1))


def kaldi_fbank(signal: torch.Tensor, sample_rate: int = SAMPLE_RATE, num_mel_bins: int = NUM_MEL_BINS) -> torch.Tensor:
    """``frames × num_mel_bins`` log-mel filterbank of a 1-D signal with ImageBind's Kaldi settings
    (see the module docstring, step 4). Fewer than 400 samples give 0 frames."""
    signal = signal.to(torch.float32)
    size = int(sample_rate * FRAME_LENGTH_MS * 0.001)
    shift = int(sample_rate * FRAME_SHIFT_MS * 0.001)
    fft_size = 1 << (size - 1).bit_length()
    if signal.numel() < size:
        return torch.zeros(0, num_mel_bins)
    frames = signal.unfold(0, size, shift)  # snip edges: only whole frames
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # Kaldi: the first sample is its own predecessor
    frames = frames - PREEMPHASIS * previous
    frames = frames * torch.hann_window(size, periodic=False, dtype=torch.float32)
    frames = F.pad(frames, (0, fft_size - size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    energies = power @ mel_banks(num_mel_bins, fft_size, sample_rate).T
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()


def waveform_clips(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``3 × 128 × 204`` un-normalised log-mel filterbanks (mel × frames) of a ``C×N`` waveform,
    steps 1–5 of the module docstring."""
    if waveform.ndim == 1:
        waveform = waveform[None]
    waveform = resample(waveform.to(torch.float32), sample_rate, SAMPLE_RATE).clone()
    clips = []
    for start, end in clip_boundaries(waveform.shape[1]):
        view = waveform[:, start:end]
        view -= view.mean()  # in place, on purpose (step 3)
        fbank = kaldi_fbank(view[0]).T
        frames = fbank.shape[1]
        if frames < TARGET_LENGTH:
            fbank = F.pad(fbank, (0, TARGET_LENGTH - frames), value=0.0)
        clips.append(fbank[:, :TARGET_LENGTH])
    return torch.stack(clips)


def normalise(fbank: torch.Tensor) -> torch.Tensor:
    """ImageBind's normalisation ``(fbank − MEAN) / STD``."""
    return (fbank - MEAN) / STD


def load_audio_clips(path: str | Path) -> torch.Tensor:
    """``3 × 1 × 128 × 204`` normalised clips of a sound file: what ImageBind's
    ``load_and_transform_audio_data`` gives for one file."""
    waveform, rate = read_wav(path)
    return normalise(waveform_clips(waveform, rate))[:, None]


# --------------------------------------------------------------------------- as an image


def fbank_to_image(clips: torch.Tensor) -> np.ndarray:
    """``128 × 204 × 3`` uint8 image of ``3 × 128 × 204`` filterbanks (channel = clip, top row =
    highest mel bin), with the linear map whose 0 is silence (module docstring)."""
    if clips.shape != (CLIPS_PER_VIDEO, *IMAGE_SIZE):
        raise ValueError(f"expected {CLIPS_PER_VIDEO}×{IMAGE_SIZE[0]}×{IMAGE_SIZE[1]} filterbanks, got {tuple(clips.shape)}")
    scaled = (clips.flip(1) - SILENCE) / (CEILING - SILENCE) * 255.0
    return scaled.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def image_to_fbank(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fbank_to_image` for a batch ``B×3×128×204`` in [0, 1] (the scorer's input):
    ``B×3×128×204`` log-mel filterbanks, lowest mel bin first; 0 becomes :data:`SILENCE`."""
    return (SILENCE + images * (CEILING - SILENCE)).flip(-2)


def spectrogram_image(path: str | Path, input_size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """The task's input loader: a sound file → its ``128 × 204 × 3`` uint8 spectrogram image."""
    if tuple(input_size) != IMAGE_SIZE:
        raise InputError(f"--input-size {input_size[0]} {input_size[1]}: ImageBind's audio spectrogram is "
                         f"{IMAGE_SIZE[0]} mel bins × {IMAGE_SIZE[1]} frames; use --input-size {IMAGE_SIZE[0]} {IMAGE_SIZE[1]}")
    waveform, rate = read_wav(path)
    return fbank_to_image(waveform_clips(waveform, rate))
