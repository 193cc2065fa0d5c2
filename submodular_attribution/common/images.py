"""Images in, as the models see them: RGB uint8 arrays and [0, 1] float tensors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import InputError

# torchvision / timm ImageNet normalisation (RGB, [0, 1] pixel scale).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def _check_complete(path: Path) -> None:
    """OpenCV decodes a truncated JPEG/PNG with only a warning (grey rows at the bottom);
    Pillow's full decode raises instead, so a cut-off download never gets explained."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as handle:
            handle.load()
    except UnidentifiedImageError:
        return  # a format Pillow lacks: OpenCV decides below
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: truncated or corrupt image ({err})") from None


def load_image_rgb(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as H×W×3 uint8 **RGB** (OpenCV reads BGR; the original fed that to
    RGB models), resized to ``size`` = (H, W) with bilinear interpolation when given.
    A missing, truncated or unreadable file is an :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image not found")
    _check_complete(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: cannot be read as an image")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if size is not None and image.shape[:2] != tuple(size):
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return image


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB → 3×H×W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)
