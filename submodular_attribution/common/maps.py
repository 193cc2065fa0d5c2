"""Saliency-map folders: ``<save-dir>/<class>/<stem>.npy``, one H×W float32 map per image."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_save_npy
from .errors import InputError


def map_path(save_dir: str | Path, class_name: str, stem: str) -> Path:
    return Path(save_dir) / class_name / f"{stem}.npy"


def save_map(save_dir: str | Path, class_name: str, stem: str, saliency: np.ndarray) -> Path:
    path = map_path(save_dir, class_name, stem)
    atomic_save_npy(path, np.asarray(saliency, dtype=np.float32))
    return path


def read_map(save_dir: str | Path, class_name: str, stem: str) -> np.ndarray:
    """The H×W map of one image; a missing, unreadable or non-finite file is an InputError naming it."""
    path = map_path(save_dir, class_name, stem)
    if not path.is_file():
        raise InputError(f"{path}: saliency map not found")
    try:
        saliency = np.load(path)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: unreadable saliency map ({err})") from None
    if saliency.ndim != 2 or not np.isfinite(saliency).all():
        raise InputError(f"{path}: expected a finite H×W map, got shape {saliency.shape}")
    return saliency
