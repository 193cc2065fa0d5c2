"""SAM mask folders in the original SMDL-Attribution format, read and written.

The original ``SAM_mask_generate.py`` saved, per image, ``<save dir>/<relative path>.npy``
(the list's path with its extension replaced): an N×H×W×3 uint8 array of *element images* at
the image's own resolution, each the BGR photo times one resolved SAM mask, the last one the
remainder (the photo minus all the others). Ours are H×W label maps at the model's input
size under ``<class>/<stem>.npy`` (:func:`~.sam.label_map_path`).

:func:`elements_to_label_map` recovers the division: a pixel belongs to the element that is
non-zero there; a pixel that is zero in every element (a black pixel of the photo, which no
element can show) takes the label of the nearest pixel that some element shows. The map is
then resized to the model's input size (nearest neighbour) and relabelled 0..N−1, so regions
too small to survive the resize disappear.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from ..common.errors import InputError
from ..common.lists import ListItem
from .labels import relabel_consecutive
from .sam import label_map_path, read_label_map

__all__ = ["original_mask_path", "elements_to_label_map", "label_map_to_elements", "read_sam_division"]


def original_mask_path(save_dir: str | Path, relative_path: str) -> Path:
    """``<save_dir>/<relative path>.npy``, as the original wrote (extension replaced)."""
    return Path(save_dir) / Path(relative_path).with_suffix(".npy")


def elements_to_label_map(elements: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """N×H×W×3 element images (the last the remainder) → a division, resized to ``shape``
    = (H, W) by nearest neighbour when given. Elements that show nothing add no region.

    Raises:
        ValueError: if ``elements`` is not an N×H×W×3 (or N×H×W) array with N ≥ 1.
    """
    if not isinstance(elements, np.ndarray) or elements.ndim not in (3, 4) or elements.shape[0] < 1 \
            or (elements.ndim == 4 and elements.shape[3] not in (1, 3)):
        got = elements.shape if isinstance(elements, np.ndarray) else type(elements).__name__
        raise ValueError(f"expected an N×H×W×3 array of element images, got {got}")
    shown = elements.reshape(elements.shape[0], elements.shape[1], elements.shape[2], -1).any(axis=3)  # N×H×W
    covered = shown.any(axis=0)
    if not covered.any():  # an all-black photo: one region
        labels = np.zeros(shown.shape[1:], dtype=np.int32)
    else:
        labels = shown.argmax(axis=0).astype(np.int32)  # the first element showing the pixel
        if not covered.all():
            # black photo pixels: the label of the nearest shown pixel
            _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
            labels = labels[rows, cols]
    if shape is not None and tuple(shape) != labels.shape:
        labels = cv2.resize(labels, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_NEAREST)
    return relabel_consecutive(labels)


def label_map_to_elements(image_bgr: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The original's array for a division of ``image_bgr`` (same H×W): one element image per
    region but the last, then the remainder (the photo minus them), N×H×W×3 uint8."""
    n = int(labels.max()) + 1
    masks = labels[None] == np.arange(n - 1)[:, None, None]
    elements = image_bgr[None] * masks[..., None].astype(np.uint8)
    remainder = image_bgr - elements.sum(axis=0).astype(np.uint8)
    return np.concatenate([elements, remainder[None]]).astype(np.uint8)


def read_sam_division(save_dir: str | Path, item: ListItem, shape: tuple[int, int]) -> np.ndarray:
    """The division of ``item`` from a SAM mask folder of either format: our label map
    (``<class>/<stem>.npy``) if present, else the original's element images
    (``<relative path>.npy``). An unreadable file or wrong array is an InputError naming it."""
    ours = label_map_path(save_dir, str(item.label), item.stem)
    original = original_mask_path(save_dir, item.path)
    if ours.is_file():
        return read_label_map(ours, shape)
    if not original.is_file():
        raise InputError(f"{ours}: SAM masks not found (nor {original}, the original's layout); "
                         "generate them with SAM_mask_generate.py")
    try:
        array = np.load(original, allow_pickle=False)
    except Exception as err:  # numpy raises several types for a corrupt file
        raise InputError(f"{original}: cannot read SAM masks ({type(err).__name__}: {str(err).splitlines()[0]})") \
            from None
    if isinstance(array, np.ndarray) and array.ndim == 2:  # a label map at the original path
        if array.shape != tuple(shape):
            array = cv2.resize(array.astype(np.int32), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        return relabel_consecutive(array)
    try:
        return elements_to_label_map(array, shape)
    except ValueError as err:
        raise InputError(f"{original}: {err} (the original SAM_mask_generate.py format)") from None
