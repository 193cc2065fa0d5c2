"""The embedded audio benchmark: synthetic 2-second clips whose class is one time–frequency event.

Each clip is one **event** of its class over a **background**, both drawn at random:

* events (the class is the kind of event; its time, frequency, duration and level vary):
  ``steady_tone`` (one sine, 0.4–0.9 s), ``up_chirp`` / ``down_chirp`` (an exponential sweep over
  1–2 octaves, 0.3–0.7 s), ``tone_pair`` (two simultaneous sines a ratio 1.5–2.5 apart),
  ``pulsed_tone`` (4–7 beeps of 40–70 ms), ``noise_burst`` (band-limited noise, ½–1 octave wide,
  0.2–0.6 s), ``click_train`` (4–8 broadband 3-ms clicks 60–150 ms apart), ``warble`` (a sine whose
  frequency swings ±8–15 % at 5–9 Hz). Tones lie between 300 Hz and 4 kHz and fade in and out over
  10 ms (no onset clicks);
* backgrounds: a mix of one to three of coloured noise (spectral slope between pink and brown),
  mains hum (50 or 60 Hz and its harmonics) and babble-like noise (2–6 "talkers": noise through
  two random formant bands, amplitude-modulated at a syllable rate of 2–6 Hz);
* the event sits at a random signal-to-noise ratio of 0–20 dB (event power over its own duration,
  from its first to its last click for a click train, against the background's mean power), and
  the mix at a random level of -35 to -15 dBFS RMS.

The ground truth kept with each clip is the **ideal binary mask** of the event: the
time–frequency bins (pixels of the spectrogram image of :mod:`.features`, same orientation: low
frequencies at the bottom) where the event's mel power exceeds the background's, restricted to
bins within 30 dB of the event's loudest one (so that window side lobes and onset splatter over a
very quiet background do not count as the event).

Conventions: waveforms are float32 mono at :data:`~.features.SAMPLE_RATE`; images ``uint8``
``80×80×3``; masks ``bool`` ``80×80``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from ..common.generated import save_png, write_generated_set
from .features import CLIP_SAMPLES, SAMPLE_RATE, db_to_unit, log_mel_db, unit_to_image

__all__ = [
    "CLASS_NAMES", "NUM_CLASSES", "DATA_VERSION", "EVAL_SEED", "render_clip", "make_split", "make_clips", "write_wav",
    "write_eval_set", "mask_path_for", "load_mask",
]

#: Bump whenever the generator changes the clips (cached models and evaluation sets are rebuilt).
DATA_VERSION = "audio-v1"
CLASS_NAMES: tuple[str, ...] = ("steady_tone", "up_chirp", "down_chirp", "tone_pair", "pulsed_tone",
                                "noise_burst", "click_train", "warble")
NUM_CLASSES = len(CLASS_NAMES)
#: Seed of the held-out evaluation set (training uses other seeds).
EVAL_SEED = 4321

_SNR_DB = (0.0, 20.0)
_LEVEL_DBFS = (-35.0, -15.0)
_FADE = 0.010  # s, raised-cosine fade of tonal events
_MASK_RANGE_DB = 30.0  # mask bins lie within this of the event's loudest bin (no window side lobes)
_T = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
_FREQS = np.fft.rfftfreq(CLIP_SAMPLES, 1.0 / SAMPLE_RATE)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _gate(start: float, duration: float, fade: float = _FADE) -> np.ndarray:
    """Envelope: 1 on [start, start + duration] s with raised-cosine edges of ``fade`` s, 0 elsewhere."""
    t = _T - start
    env = np.clip(np.minimum(t, duration - t) / fade, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * env)


def _sweep_phase(freq: np.ndarray) -> np.ndarray:
    """Phase (rad) of a sine whose instantaneous frequency is ``freq`` (Hz, per sample)."""
    return 2.0 * np.pi * np.cumsum(freq) / SAMPLE_RATE


def _noise_spectrum(rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """complex64 rfft of white Gaussian noise shaped by the amplitude response ``gain`` (per bin;
    ``k×bins`` gives k independent spectra)."""
    white = rng.standard_normal((*np.shape(gain), 2), dtype=np.float32).view(np.complex64)[..., 0]
    return white * np.asarray(gain, np.float32)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    """``x`` (last axis: samples) scaled to unit RMS."""
    return x / np.maximum(np.sqrt(np.mean(x * x, axis=-1, keepdims=True)), 1e-12)


def _band_noise(rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """White noise shaped by the amplitude response ``gain`` (per rfft bin), unit RMS."""
    return _unit_rms(np.fft.irfft(_noise_spectrum(rng, gain), CLIP_SAMPLES))


def _event(rng: np.random.Generator, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(signal, active): the event of class ``name`` and a bool per sample of where it sounds."""
    if name == "click_train":
        count, gap = int(rng.integers(4, 9)), rng.uniform(0.06, 0.15)
        start = rng.uniform(0.05, 1.95 - count * gap)
        x = np.zeros(CLIP_SAMPLES)
        white = rng.standard_normal(CLIP_SAMPLES)
        tilt = _band_noise(rng, np.where(_FREQS > 300.0, (_FREQS / 1000.0 + 1e-3) ** -0.3, 0.0))
        for k in range(count):
            i = int((start + k * gap) * SAMPLE_RATE)
            n = int(0.003 * SAMPLE_RATE)
            x[i:i + n] = (0.5 * white[i:i + n] + tilt[i:i + n]) * np.exp(-np.arange(n) / (0.3 * n))
        span = (_T >= start) & (_T <= start + (count - 1) * gap + 0.003)  # its SNR is over the whole train
        return x, span
    if name == "pulsed_tone":
        freq, count = _log_uniform(rng, 300.0, 4000.0), int(rng.integers(4, 8))
        on, off = rng.uniform(0.04, 0.07), rng.uniform(0.04, 0.08)
        start = rng.uniform(0.05, 1.95 - count * (on + off))
        env = sum(_gate(start + k * (on + off), on, 0.005) for k in range(count))
        return env * np.sin(2 * np.pi * freq * _T + rng.uniform(0, 2 * np.pi)), env > 0
    if name == "noise_burst":
        duration = rng.uniform(0.2, 0.6)
        start = rng.uniform(0.05, 1.95 - duration)
        centre, octaves = _log_uniform(rng, 500.0, 5000.0), rng.uniform(0.5, 1.0)
        lo, hi = centre * 2 ** (-octaves / 2), centre * 2 ** (octaves / 2)
        env = _gate(start, duration)
        return env * _band_noise(rng, ((_FREQS >= lo) & (_FREQS <= hi)).astype(float)), env > 0
    duration = rng.uniform(*{"up_chirp": (0.3, 0.7), "down_chirp": (0.3, 0.7)}.get(name, (0.4, 0.9)))
    start = rng.uniform(0.05, 1.95 - duration)
    env = _gate(start, duration)
    progress = np.clip((_T - start) / duration, 0.0, 1.0)
    if name in ("up_chirp", "down_chirp"):
        octaves = rng.uniform(1.0, 2.0)
        low = _log_uniform(rng, 300.0, 4000.0 / 2 ** octaves)
        ramp = progress if name == "up_chirp" else 1.0 - progress
        x = np.sin(_sweep_phase(low * 2 ** (octaves * ramp)))
    elif name == "warble":
        freq, depth, rate = _log_uniform(rng, 400.0, 3000.0), rng.uniform(0.08, 0.15), rng.uniform(5.0, 9.0)
        x = np.sin(_sweep_phase(freq * (1.0 + depth * np.sin(2 * np.pi * rate * _T + rng.uniform(0, 2 * np.pi)))))
    elif name == "tone_pair":
        low = _log_uniform(rng, 300.0, 1600.0)
        high = low * rng.uniform(1.5, 2.5)
        x = np.sin(2 * np.pi * low * _T) + rng.uniform(0.6, 1.0) * np.sin(2 * np.pi * high * _T + 1.0)
    elif name == "steady_tone":
        x = np.sin(2 * np.pi * _log_uniform(rng, 300.0, 4000.0) * _T + rng.uniform(0, 2 * np.pi))
    else:  # pragma: no cover - guarded by CLASS_NAMES
        raise ValueError(f"unknown event {name!r}")
    return env * x, env > 0


_LOG_FREQS = np.log(np.maximum(_FREQS, 1.0)).astype(np.float32)
_STEP = SAMPLE_RATE // 100  # samples per 10 ms


def _coloured_gain(rng: np.random.Generator) -> np.ndarray:
    """Amplitude response of coloured noise: power ∝ 1/f^slope above 20 Hz, slope 1 (pink) to 2 (brown)."""
    return np.where(_FREQS > 20.0, np.exp(np.float32(-0.5 * rng.uniform(1.0, 2.0)) * _LOG_FREQS), np.float32(0.0))


def _coloured_noise(rng: np.random.Generator) -> np.ndarray:
    return _band_noise(rng, _coloured_gain(rng))


def _hum(rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz (±0.5 %) and 7 harmonics of decaying random amplitude, over faint
    coloured noise; built in the frequency domain (0.5 Hz bins), so harmonics are exact sines."""
    base = (50.0 if rng.random() < 0.5 else 60.0) * rng.uniform(0.995, 1.005)
    k = np.arange(1, 9, dtype=float)
    amps = rng.uniform(0.2, 1.0, 8) * k ** -rng.uniform(0.5, 1.5)
    spectrum = np.zeros(len(_FREQS), complex)
    bins = np.rint(k * base * CLIP_SAMPLES / SAMPLE_RATE).astype(int)
    spectrum[bins] = amps * np.exp(1j * rng.uniform(0, 2 * np.pi, 8))
    hum = _unit_rms(np.fft.irfft(spectrum, CLIP_SAMPLES))
    return _unit_rms(hum + 0.05 * _coloured_noise(rng))


def _babble(rng: np.random.Generator) -> np.ndarray:
    """2–6 "talkers": noise through two formant-like bands (250–900 Hz, 900–3000 Hz), each gated
    by a rectified sine at a syllable rate of 2–6 Hz (held over 10-ms steps)."""
    k = int(rng.integers(2, 7))
    f1 = rng.uniform(np.log(250.0), np.log(900.0), (k, 1)).astype(np.float32)
    f2 = rng.uniform(np.log(900.0), np.log(3000.0), (k, 1)).astype(np.float32)
    gain = np.exp(-8.0 * (_LOG_FREQS - f1) ** 2) + 0.6 * np.exp(-12.5 * (_LOG_FREQS - f2) ** 2)  # σ 0.25, 0.2
    talkers = _unit_rms(np.fft.irfft(_noise_spectrum(rng, gain), CLIP_SAMPLES))
    rate, phase = rng.uniform(2.0, 6.0, (k, 1)), rng.uniform(0, 2 * np.pi, (k, 1))
    env = np.clip(np.sin(2 * np.pi * rate * _T[::_STEP] + phase) + rng.uniform(-0.3, 0.6, (k, 1)), 0, None)
    env = np.repeat((rng.uniform(0.3, 1.0, (k, 1)) * env).astype(np.float32), _STEP, axis=1)
    return _unit_rms((env * talkers).sum(0))


_BACKGROUNDS = (_coloured_noise, _hum, _babble)


def _background(rng: np.random.Generator) -> np.ndarray:
    kinds = rng.permutation(len(_BACKGROUNDS))[: int(rng.integers(1, 4))]
    x = sum(10 ** (rng.uniform(-12.0, 0.0) / 20) * _BACKGROUNDS[k](rng) for k in kinds)
    return _unit_rms(x)


def _draw(rng: np.random.Generator, label: int) -> tuple[np.ndarray, np.ndarray]:
    """The scaled ``(event, background)`` waveforms (float32) of one clip of class ``label``."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label must be in [0, {NUM_CLASSES}), got {label}")
    event, active = _event(rng, CLASS_NAMES[label])
    background = _background(rng)  # unit power
    event *= np.sqrt(10 ** (rng.uniform(*_SNR_DB) / 10) / float(np.mean(event[active] ** 2)))
    mix = event + background
    gain = min(10 ** (rng.uniform(*_LEVEL_DBFS) / 20) / np.sqrt(np.mean(mix * mix)), 0.99 / float(np.abs(mix).max()))
    return (event * gain).astype(np.float32), (background * gain).astype(np.float32)


def _features(events: np.ndarray, backgrounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``B×T`` event and background waveforms → (``B×80×80`` uint8 spectrogram images of their sum,
    one channel; ``B×80×80`` bool ideal binary masks), low frequencies at the bottom."""
    db = log_mel_db(np.concatenate([events + backgrounds, events, backgrounds]))
    b = len(events)
    images = np.stack([unit_to_image(u)[:, :, 0] for u in db_to_unit(db[:b]).numpy()])
    event, background = db[b:2 * b], db[2 * b:]
    peak = event.amax(dim=(1, 2), keepdim=True)
    masks = np.ascontiguousarray(((event > background) & (event >= peak - _MASK_RANGE_DB)).numpy()[:, ::-1])
    return images, masks


def render_clip(rng: np.random.Generator, label: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clip of class ``label``: ``(waveform, image, mask)``.

    waveform: float32 ``CLIP_SAMPLES`` in [-1, 1]; image: its 80×80×3 uint8 spectrogram image;
    mask: 80×80 bool, the event's ideal binary mask (event mel power > background mel power, and
    within 30 dB of the event's peak).
    All randomness comes from ``rng``.
    """
    event, background = _draw(rng, label)
    images, masks = _features(event[None], background[None])
    return event + background, np.repeat(images[0][:, :, None], 3, axis=2), masks[0]


def _generate(n: int, seed: int, keep_waves: bool, chunk: int = 256):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % NUM_CLASSES).astype(np.int64)[rng.permutation(n)]
    waves = np.empty((n, CLIP_SAMPLES), np.float32) if keep_waves else None
    images = np.empty((n, 80, 80), np.uint8)
    masks = np.empty((n, 80, 80), bool)
    for start in range(0, n, chunk):
        pairs = [_draw(rng, int(label)) for label in labels[start:start + chunk]]
        events, backgrounds = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        stop = start + len(pairs)
        if waves is not None:
            waves[start:stop] = events + backgrounds
        images[start:stop], masks[start:stop] = _features(events, backgrounds)
    return waves, images, labels, masks


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A deterministic, class-balanced split of ``n`` clips as the model sees them: ``(images uint8
    n×80×80 (one channel of the spectrogram image), labels int64 n, masks bool n×80×80)``.
    Labels are ``i % NUM_CLASSES`` shuffled with ``seed``; the same ``(n, seed)`` gives identical
    arrays, and the same clips as :func:`make_clips`."""
    _, images, labels, masks = _generate(n, seed, keep_waves=False)
    return images, labels, masks


def make_clips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clips of :func:`make_split` as waveforms: ``(float32 n×CLIP_SAMPLES, labels, masks)``."""
    waves, _, labels, masks = _generate(n, seed, keep_waves=True)
    return waves, labels, masks


def write_wav(path: str | Path, waveform: np.ndarray) -> None:
    """Write float samples in [-1, 1] as a 16-bit PCM mono WAV at SAMPLE_RATE, atomically."""
    from scipy.io import wavfile

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pcm = np.clip(np.rint(np.asarray(waveform, np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    wavfile.write(tmp, SAMPLE_RATE, pcm)
    os.replace(tmp, path)


def mask_path_for(wav_path: str | Path) -> Path:
    """``.../<name>.wav`` → ``.../<name>.mask.png``, the ground-truth mask beside it."""
    return Path(wav_path).with_suffix(".mask.png")


def load_mask(wav_path: str | Path) -> np.ndarray | None:
    """The 80×80 bool event mask stored beside a clip of the benchmark, or None if there is none."""
    path = mask_path_for(wav_path)
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
    return None if mask is None else mask > 127


def write_eval_set(root: str | Path, n: int = 20, seed: int = EVAL_SEED) -> Path:
    """Write a held-out evaluation set of ``n`` clips under ``root`` and return its list file.

    Layout: ``root/clips/<class>/<class>_<k:03d>.wav`` (16-bit PCM, 16 kHz, mono), beside each the
    event mask ``<same stem>.mask.png`` (uint8, 255 = event), ``root/meta.json`` and
    ``root/eval_list.txt`` with one line ``clips/<class>/<file>.wav <label>`` per clip, classes
    interleaved. Idempotent: nothing is rewritten if the list exists and ``meta.json`` records the
    same ``n``, ``seed`` and data version. The list is written last.
    """
    def write(root: Path) -> list[str]:
        waves, labels, masks = make_clips(n, seed)
        for cls in CLASS_NAMES:
            folder = root / "clips" / cls
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():  # stale files of an earlier, larger set
                if re.fullmatch(rf"{re.escape(cls)}_\d{{3,}}(\.wav|\.mask\.png)", old.name):
                    old.unlink()
        counts = [0] * NUM_CLASSES
        entries = []
        for wave, label, mask in zip(waves, labels, masks):
            label = int(label)
            cls, k = CLASS_NAMES[label], counts[label]
            counts[label] += 1
            wav = root / "clips" / cls / f"{cls}_{k:03d}.wav"
            write_wav(wav, wave)
            save_png(mask_path_for(wav), mask.astype(np.uint8) * 255)
            entries.append((k, label, f"clips/{cls}/{wav.name}"))
        return [f"{rel} {label}" for _, label, rel in sorted(entries)]

    return write_generated_set(root, {"n": int(n), "seed": int(seed), "data_version": DATA_VERSION}, write)
