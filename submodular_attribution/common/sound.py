"""Reading sound files: WAV with scipy, other formats (FLAC, OGG, ...) with ``soundfile`` when
it is installed. Every failure is one :class:`InputError` line naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError


def read_sound(path: str | Path) -> tuple[np.ndarray, int]:
    """``(N×C float32 samples in [−1, 1], sample rate)``. Integer WAV samples are divided by
    2^(bits−1) (8-bit WAV is unsigned: (x − 128) / 128); float samples are kept as they are."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: audio file not found")
    data, rate = _read_wav(path) if path.suffix.lower() == ".wav" else _read_other(path)
    if data.size == 0:
        raise InputError(f"{path}: the audio file holds no samples")
    data = data[:, None] if data.ndim == 1 else data
    if not np.isfinite(data).all():
        raise InputError(f"{path}: the audio file holds non-finite samples")
    return data, int(rate)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except Exception as err:  # noqa: BLE001 - scipy raises ValueError, EOFError, struct.error ...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot be read as a WAV file ({reason})") from None
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0, rate
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(-np.iinfo(data.dtype).min), rate
    return data.astype(np.float32), rate


def _read_other(path: Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError:
        raise InputError(f"{path}: only WAV files can be read without the soundfile package "
                         f"(pip install soundfile), or convert it to WAV") from None
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # noqa: BLE001 - soundfile raises RuntimeError, LibsndfileError ...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if str(path) in reason:  # "Error opening '<path>': Format not recognised." names it again
            reason = reason.rsplit("': ", 1)[-1]
        raise InputError(f"{path}: cannot be read as audio ({reason})") from None
    return data, rate
