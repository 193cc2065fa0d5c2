"""The embedded default benchmark: coloured shapes on real photographs, and a small CNN for it.

Runs anywhere without downloads: backgrounds are scikit-image's bundled photographs,
and the model is trained on first use (about a minute on CPU) and cached under ``ckpt/``.
"""
from .data import (
    CLASS_NAMES,
    DATA_VERSION,
    EVAL_SEED,
    IMAGE_SIZE,
    NUM_CLASSES,
    make_split,
    mask_path_for,
    load_mask,
    render_sample,
    write_eval_set,
)
from .model import (
    default_checkpoint,
    MEAN,
    ARCHITECTURES,
    MODEL_VERSION,
    STD,
    ShapesCNN,
    ShapesViT,
    build_shapes_model,
    build_scorer,
    held_out_accuracy,
    load_or_train_default,
    train_shapes_cnn,
)

__all__ = [
    "CLASS_NAMES",
    "DATA_VERSION",
    "EVAL_SEED",
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "make_split",
    "mask_path_for",
    "load_mask",
    "render_sample",
    "write_eval_set",
    "default_checkpoint",
    "MEAN",
    "MODEL_VERSION",
    "STD",
    "ShapesCNN",
    "ShapesViT",
    "ARCHITECTURES",
    "build_shapes_model",
    "build_scorer",
    "held_out_accuracy",
    "load_or_train_default",
    "train_shapes_cnn",
]
