"""The embedded audio benchmark: synthetic clips defined by one time–frequency event, their
log-mel spectrogram images, and a small CNN trained at first use (cached under ``ckpt/``).

Needs no downloads: :mod:`.features` (the spectrogram, torch only), :mod:`.data` (clips, event
masks, the evaluation set), :mod:`.model` (the CNN and its scorer).
"""
from .data import (CLASS_NAMES, DATA_VERSION, EVAL_SEED, NUM_CLASSES, load_mask, make_clips, make_split,
                   mask_path_for, render_clip, write_eval_set, write_wav)
from .features import IMAGE_SHAPE, SAMPLE_RATE, load_spectrogram_image, read_wav, spectrogram_image
from .model import (AudioCNN, MODEL_VERSION, build_scorer, default_checkpoint, held_out_accuracy,
                    load_or_train_default, train_audio_cnn)

__all__ = [
    "CLASS_NAMES", "DATA_VERSION", "EVAL_SEED", "NUM_CLASSES", "load_mask", "make_clips", "make_split",
    "mask_path_for", "render_clip", "write_eval_set", "write_wav", "IMAGE_SHAPE", "SAMPLE_RATE",
    "load_spectrogram_image", "read_wav", "spectrogram_image", "AudioCNN", "MODEL_VERSION", "build_scorer",
    "default_checkpoint", "held_out_accuracy", "load_or_train_default", "train_audio_cnn",
]
