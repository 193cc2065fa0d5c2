"""Evaluation sets generated at first use (the embedded image, audio and detection defaults).

A set is a folder with its files, ``meta.json`` (what generated it) and ``eval_list.txt``,
written last, so an interrupted generation never looks finished and a changed generator (other
``meta``) rewrites the set.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Mapping

import cv2
import numpy as np

from .atomic import atomic_write_text


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (RGB ``H×W×3`` or gray ``H×W``, uint8) as a PNG, atomically."""
    path = Path(path)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)


def write_generated_set(root: str | Path, meta: Mapping, write: Callable[[Path], Iterable[str]]) -> Path:
    """``root/eval_list.txt``, made by ``write(root)`` (which writes the files and returns the
    list's lines, without newlines) unless the list exists and ``root/meta.json`` equals ``meta``."""
    root = Path(root)
    list_path, meta_path = root / "eval_list.txt", root / "meta.json"
    if list_path.is_file() and meta_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == dict(meta):
                return list_path
        except (OSError, ValueError):
            pass
    list_path.unlink(missing_ok=True)  # an interrupted rewrite must not look finished
    lines = list(write(root))
    atomic_write_text(meta_path, json.dumps(dict(meta), indent=2) + "\n")
    atomic_write_text(list_path, "".join(f"{line}\n" for line in lines))
    return list_path
