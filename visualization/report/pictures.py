"""The report's pictures: the photo (JPEG) and each run's rank map (lossless PNG) as data URIs
for the page to composite, and one small heat-map thumbnail per run and image.

The photo and rank map travel as data URIs inside the per-image script rather than as sibling
files because a canvas that has drawn a ``file://`` image is tainted in Chromium: its pixels
could not be read back to composite the first k regions.
"""
from __future__ import annotations

import base64

import cv2
import numpy as np
from matplotlib import colormaps

from submodular_attribution.common.results import rank_map_saliency

from ..canvas import heat_over_grey

THUMB_SIDE = 96  # pixels along the longer side
PHOTO_QUALITY = 88


def _encode(suffix: str, rgb: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(rgb[..., ::-1]), params or [])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as {suffix}")
    return data.tobytes()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def rank_png(ranks: np.ndarray) -> bytes:
    """H×W ranks (< 65,536) as an RGB PNG: rank = 256·R + G, B = 0 (lossless, opaque, so the
    page reads the ranks back exactly)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    if ranks.min() < 0 or ranks.max() > 0xFFFF:
        raise ValueError(f"ranks must lie in [0, 65535], got [{ranks.min()}, {ranks.max()}]")
    rgb = np.stack([ranks >> 8, ranks & 0xFF, np.zeros_like(ranks)], axis=-1).astype(np.uint8)
    return _encode(".png", rgb, [cv2.IMWRITE_PNG_COMPRESSION, 6])


def photo_jpeg(photo: np.ndarray) -> bytes:
    """H×W×3 uint8 RGB → JPEG bytes."""
    return _encode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, PHOTO_QUALITY])


def thumbnail(photo: np.ndarray | None, ranks: np.ndarray, num_regions: int, colormap: str, alpha: float,
              side: int = THUMB_SIDE) -> bytes:
    """JPEG of the ordering heat-map over the photo's grey (as the figures draw it), its longer
    side ``side`` pixels."""
    picture = heat_over_grey(photo, rank_map_saliency(ranks, num_regions), colormap, alpha)
    height, width = picture.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    return _encode(".jpg", cv2.resize(picture, size, interpolation=method), [cv2.IMWRITE_JPEG_QUALITY, 85])


def colormap_table(colormap: str) -> list[list[int]]:
    """256 RGB entries of ``colormap``, for the page's own heat-map of the ordering."""
    rgba = colormaps[colormap](np.linspace(0.0, 1.0, 256))
    return (rgba[:, :3] * 255).round().astype(int).tolist()
