"""Image divisions from Segment Anything (SAM) masks.

SAM's automatic mask generator returns overlapping binary masks that need not cover the
image. :func:`masks_to_label_map` turns them into a *division* (see ``utils``: an H×W int32
label map with labels exactly 0..N−1), and :func:`sam_label_map` runs the generator on an
image and does that in one call. ``SAM_mask_generate.py`` precomputes such label maps for an
evaluation list; :func:`read_label_map` reads one back, validated.

segment_anything and torch are imported inside the functions that need them, so importing
this module (e.g. for ``--help``) stays cheap.
"""
from __future__ import annotations

import math
from functools import partial
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..common.errors import InputError
from .labels import check_division
from .superpixels import DEFAULT_MIN_AREA_FRACTION

if TYPE_CHECKING:  # pragma: no cover
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything.modeling import Sam

__all__ = [
    "DEFAULT_MIN_AREA_FRACTION",
    "SAM_MODEL_TYPES",
    "DEFAULT_CHECKPOINTS",
    "masks_to_label_map",
    "build_tiny_sam",
    "load_sam",
    "build_mask_generator",
    "sam_label_map",
    "label_map_path",
    "read_label_map",
]



# --------------------------------------------------------------------------
# Masks -> division
# --------------------------------------------------------------------------


def masks_to_label_map(
    masks: Sequence[np.ndarray],
    shape: tuple[int, int],
    min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION,
) -> np.ndarray:
    """Turn possibly overlapping, possibly incomplete binary masks into a division.

    Order of operations:

    1. **Overlaps.** For every pair of masks A, B (indices i < j in ``masks``) with overlap
       O ≠ ∅, O stays with the mask of which it is the larger fraction — |O|/|A| vs |O|/|B|,
       i.e. the mask with the smaller area — and is removed from the other; on a tie
       (|A| = |B|) it stays with A, the earlier mask. Areas are those of the masks *as given*
       (not as shrunk by other pairs), so the pairs can be resolved in any order with the same
       result: each pixel ends up in exactly one of the masks covering it, the one with the
       smallest given area, ties to the lowest index. (A mask containing a smaller one thus
       becomes a ring; a mask can become empty or disconnected.)
    2. **Area floor.** Resolved masks with fewer than ``min_area_fraction · H · W`` pixels,
       and empty ones, are dropped; their pixels become uncovered.
    3. **Residual.** The uncovered pixels (never covered, or left by dropped masks), if any,
       form one more region. If no mask survives, that is the whole image: one region.
    4. **Labels.** Surviving masks are numbered 0..K−1 by resolved area, largest first, ties
       by the position of the region's first pixel in raster order; the residual region,
       when present, is label K (the last). The numbering therefore depends only on the
       resulting partition, not on the order of ``masks``.

    Args:
        masks: binary masks, each of shape ``shape`` (bool, or any dtype: non-zero = inside).
        shape: (H, W) of the image.
        min_area_fraction: area floor as a fraction of H·W, in [0, 1].

    Returns:
        (H, W) int32 label map, labels exactly 0..N−1 (passes ``utils.check_division``).

    Raises:
        ValueError: on a bad shape, a mask of the wrong shape, or a bad floor.
    """
    h, w = _check_shape(shape)
    floor = _check_fraction(min_area_fraction)
    masks = list(masks)
    for i, mask in enumerate(masks):
        if not isinstance(mask, np.ndarray) or mask.shape != (h, w):
            got = mask.shape if isinstance(mask, np.ndarray) else type(mask).__name__
            raise ValueError(f"mask {i} must be a numpy array of shape {(h, w)}, got {got}")
    total = h * w
    if not masks:
        return np.zeros((h, w), dtype=np.int32)

    stack = np.stack([m.reshape(-1) != 0 for m in masks])  # M × HW bool
    areas = stack.sum(axis=1)
    # Step 1: the owner of a pixel is the covering mask first in (area, index) order.
    priority = np.lexsort((np.arange(len(masks)), areas))  # ascending area, ties by index
    ranked = stack[priority]
    covered = ranked.any(axis=0)
    owner = np.where(covered, priority[ranked.argmax(axis=0)], -1)  # index into masks, −1 = none

    # Step 2: area floor on the resolved masks.
    resolved = np.bincount(owner[covered], minlength=len(masks))
    keep = (resolved > 0) & (resolved >= floor * total)

    # Step 4: number the kept masks; everything else maps to the residual label K.
    kept = np.flatnonzero(keep)
    first_pixel = np.full(len(masks), total, dtype=np.int64)
    np.minimum.at(first_pixel, owner[covered], np.flatnonzero(covered))
    kept = kept[np.lexsort((first_pixel[kept], -resolved[kept]))]
    lookup = np.full(len(masks) + 1, len(kept), dtype=np.int32)  # slot −1 (last) = uncovered
    lookup[kept] = np.arange(len(kept), dtype=np.int32)
    # Step 3: the residual is label K when non-empty; if K = 0 it is the whole image.
    labels = lookup[owner].reshape(h, w)
    return labels


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
        ok = (h, w) == tuple(shape) and h > 0 and w > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"shape must be (H, W) with positive integers, got {shape!r}")
    return h, w


def _check_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"min_area_fraction must be a number in [0, 1], got {value!r}")
    return float(value)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def build_tiny_sam(
    img_size: int = 64,
    patch_size: int = 8,
    encoder_dim: int = 32,
    encoder_depth: int = 2,
    prompt_dim: int = 32,
) -> "Sam":
    """A SAM of a few hundred thousand parameters, made of segment_anything's own modules
    (ViT image encoder with windowed + global attention, prompt encoder, mask decoder with a
    one-layer two-way transformer). Randomly initialised; for tests and smoke runs."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = img_size // patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=encoder_dim,
            depth=encoder_depth,
            num_heads=2,
            mlp_ratio=2.0,
            out_chans=prompt_dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=max(1, grid // 2),
            global_attn_indexes=(encoder_depth - 1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=prompt_dim, num_heads=2, mlp_dim=2 * prompt_dim),
            transformer_dim=prompt_dim,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def _registry_builder(name: str) -> Callable[[], "Sam"]:
    def build() -> "Sam":
        from segment_anything import sam_model_registry

        # checkpoint=None: segment_anything would torch.load without map_location; we load
        # the weights ourselves (load_sam), strictly and on the CPU.
        return sam_model_registry[name](checkpoint=None)

    build.__name__ = f"build_sam_{name}"
    return build


# Model type -> builder of a randomly initialised SAM (weights come from load_sam).
SAM_MODEL_TYPES: dict[str, Callable[[], "Sam"]] = {
    "vit_h": _registry_builder("vit_h"),
    "vit_l": _registry_builder("vit_l"),
    "vit_b": _registry_builder("vit_b"),
    "vit_tiny": build_tiny_sam,
}

# Official checkpoint file names (see ckpt/README.md); vit_tiny has none.
DEFAULT_CHECKPOINTS: dict[str, str] = {
    "vit_h": "ckpt/sam_vit_h_4b8939.pth",
    "vit_l": "ckpt/sam_vit_l_0b3195.pth",
    "vit_b": "ckpt/sam_vit_b_01ec64.pth",
}


def load_sam(model_type: str, checkpoint: str | Path, device: Any = "cpu") -> "Sam":
    """Build a SAM of ``model_type`` and load ``checkpoint`` into it strictly (read on the
    CPU; ``module.``/``model.`` prefixes stripped), then move it to ``device``.

    Raises:
        InputError: unknown model type, missing or unreadable checkpoint, or weights that do
            not fit the model (one line naming the file and the first offending keys).
    """
    if model_type not in SAM_MODEL_TYPES:
        raise InputError(f"unknown SAM model type {model_type!r}; choose one of {', '.join(SAM_MODEL_TYPES)}")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():  # fail before building a 600M-parameter model
        raise InputError(f"{checkpoint}: checkpoint not found (see ckpt/README.md for where to get it)")
    from ..common.checkpoints import load_weights

    sam = SAM_MODEL_TYPES[model_type]()
    load_weights(sam, checkpoint)
    return sam.to(device).eval()


def build_mask_generator(
    sam: "Sam", points_per_side: int = 32, stability_score_thresh: float = 0.8, **kw: Any
) -> "SamAutomaticMaskGenerator":
    """SAM's automatic mask generator with the published SMDL settings (32×32 point grid,
    stability threshold 0.8); ``kw`` goes to ``SamAutomaticMaskGenerator`` unchanged."""
    from segment_anything import SamAutomaticMaskGenerator

    if isinstance(points_per_side, bool) or not isinstance(points_per_side, int) or points_per_side < 1:
        raise InputError(f"points_per_side must be an integer ≥ 1, got {points_per_side!r}")
    if not 0.0 <= stability_score_thresh <= 1.0:
        raise InputError(f"stability_score_thresh must be in [0, 1], got {stability_score_thresh!r}")
    kw.setdefault("output_mode", "binary_mask")
    if kw["output_mode"] != "binary_mask":
        raise InputError("build_mask_generator: only output_mode='binary_mask' is supported")
    return SamAutomaticMaskGenerator(
        sam, points_per_side=points_per_side, stability_score_thresh=stability_score_thresh, **kw
    )


def sam_label_map(
    image: np.ndarray, generator: Any, min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION
) -> np.ndarray:
    """Run ``generator`` (a ``SamAutomaticMaskGenerator``, binary-mask output) on an H×W×3
    uint8 RGB image and return the division of :func:`masks_to_label_map` (H×W int32).
    Masks are taken in the generator's output order (which only matters for ties)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 \
            or image.shape[0] == 0 or image.shape[1] == 0:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be a uint8 RGB array of shape (H, W, 3), got {got}")
    records = generator.generate(np.ascontiguousarray(image))
    masks = [np.asarray(record["segmentation"]) for record in records]
    return masks_to_label_map(masks, image.shape[:2], min_area_fraction)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def label_map_path(save_dir: str | Path, class_name: str, stem: str) -> Path:
    """``<save_dir>/<class>/<stem>.npy``."""
    return Path(save_dir) / str(class_name) / f"{stem}.npy"


def read_label_map(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a saved label map and check it is a division of an image of ``shape`` = (H, W).

    Returns:
        (H, W) int32 label map with labels 0..N−1.

    Raises:
        InputError: naming the file, if it is missing, unreadable, of another shape, or not a
            valid division.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: label map not found (generate it with SAM_mask_generate.py)")
    try:
        labels = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises several types for a corrupt file
        raise InputError(f"{path}: cannot read label map ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(labels, np.ndarray):  # an .npz archive
        raise InputError(f"{path}: not a single .npy array")
    expected = tuple(int(v) for v in shape)
    if labels.shape != expected:
        raise InputError(f"{path}: label map has shape {labels.shape}, expected {expected} "
                         "(was it generated with another --input-size?)")
    try:
        check_division(labels)
    except ValueError as err:
        raise InputError(f"{path}: not a valid division ({err})") from None
    return labels.astype(np.int32)
