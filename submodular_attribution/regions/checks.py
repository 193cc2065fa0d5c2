"""Argument checks shared by the division functions (plain ValueErrors that name the argument)."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as int, or raise ValueError naming ``name``."""
    # bool is an Integral, but True as a size is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(name: str, value: Any, minimum: float, inclusive: bool = True) -> float:
    """Return ``value`` as a finite float, or raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (not inclusive and value == minimum):
        op = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    return float(value)


def check_label_array(labels: Any, name: str = "labels") -> np.ndarray:
    """Check that ``labels`` is a non-empty 2-D integer array (any values)."""
    if not isinstance(labels, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(labels).__name__}")
    if labels.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError(f"{name} must be non-empty, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must have an integer dtype, got {labels.dtype}")
    return labels


def check_image(image: Any) -> np.ndarray:
    """Check that ``image`` is an H x W x 3 uint8 array; return it contiguous."""
    expected = "image must be a uint8 RGB array of shape (H, W, 3)"
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{expected}; got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{expected}; got shape {image.shape}")
    if image.dtype != np.uint8:
        # No silent rescaling of float images: [0, 1] vs [0, 255] is ambiguous.
        raise ValueError(f"{expected}; got dtype {image.dtype}")
    # OpenCV needs contiguous memory (e.g. after image[..., ::-1]).
    return np.ascontiguousarray(image)
