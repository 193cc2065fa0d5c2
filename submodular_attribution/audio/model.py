"""A small CNN on the log-mel spectrogram image, trained on first use and cached.

The search queries the model on spectrograms whose removed time–frequency patches are silence
(0), so half of every training batch has random patches silenced (rectangular time × frequency
cells, smooth blobs, or everything but the event, dilated, plus a few cells), the label kept —
as the shapes CNN is trained on partly blacked-out photos.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..common import paths
from ..common.trained import fit_one_cycle, load_or_train
from ..models import ClassifierScorer
from .data import CLASS_NAMES, DATA_VERSION, EVAL_SEED, NUM_CLASSES, make_split
from .features import IMAGE_SHAPE

__all__ = ["MEAN", "STD", "MODEL_VERSION", "default_checkpoint", "AudioCNN", "build_scorer", "train_audio_cnn",
           "load_or_train_default"]

#: The scorer feeds the [0, 1] spectrogram as it is: silence stays 0.
MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
STD: tuple[float, float, float] = (1.0, 1.0, 1.0)
MODEL_VERSION = "audio-cnn-v1"

# Default training: 98.0 % held-out accuracy (seed 0) in 67 s on a lightly loaded 2-core machine
# (271 s when it was shared with several other training jobs).
DEFAULT_N_TRAIN = 2000
DEFAULT_N_VAL = 400
DEFAULT_EPOCHS = 8
_BATCH_SIZE = 64
_PEAK_LR = 3e-3
_WEIGHT_DECAY = 1e-4
_OCCLUDE_PROB = 0.5


def default_checkpoint() -> Path:
    """The shipped ``ckpt/embedded/audio_cnn.pt``, else a cache of that name under ``ckpt/``."""
    return paths.weights_file("audio_cnn.pt")


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class AudioCNN(nn.Module):
    """The three (identical) channels averaged to one, five 3×3 conv+BN+ReLU layers
    (1→16→32→64→64→64, strides 2, 2, 1, 2, 1: 80×80 → 10×10), global max pooling to a 64-d
    feature (an event may sit anywhere in time and frequency) and a linear head.

    Input: ``B×3×H×W`` spectrogram images in [0, 1] (see :mod:`.features`; MEAN 0, STD 1).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = width
        self.features = nn.Sequential(*_conv_bn(1, 16, 2), *_conv_bn(16, 32, 2), *_conv_bn(32, width, 1),
                                      *_conv_bn(width, width, 2), *_conv_bn(width, width, 1))
        self.head = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``B×3×H×W`` → ``B×64`` pooled features."""
        return self.features(x.mean(dim=1, keepdim=True)).amax(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_scorer(net: nn.Module, device: str | torch.device = "cpu") -> ClassifierScorer:
    """A :class:`ClassifierScorer` for ``net``: spectrogram images in [0, 1] in, softmax out."""
    return ClassifierScorer(net, mean=MEAN, std=STD, device=device, num_classes=int(getattr(net, "num_classes")))


def _silence(x: torch.Tensor, masks: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Silence (set to 0) random time–frequency patches of about half of ``x`` (``B×1×H×W``).

    Each chosen clip keeps one of: a random 5–95 % of the cells of an r × c grid (2–10 each);
    a random 5–95 % of smooth random blobs; or its event mask (``masks``, ``B×H×W`` bool) dilated
    by 0–4 px plus 0–30 % of grid cells.
    """
    b, _, h, w = x.shape
    chosen = torch.nonzero(torch.rand(b, generator=gen) < _OCCLUDE_PROB).flatten()
    if len(chosen) == 0:
        return x
    keep = torch.empty(len(chosen), 1, h, w)
    for j, i in enumerate(chosen.tolist()):
        mode = int(torch.randint(0, 3, (1,), generator=gen))
        rows, cols = (int(v) for v in torch.randint(2, 11, (2,), generator=gen))
        field = torch.rand(1, 1, rows, cols, generator=gen)
        field = F.interpolate(field, size=(h, w), mode="nearest" if mode != 1 else "bicubic", align_corners=None)
        fraction = 0.3 * float(torch.rand(1, generator=gen)) if mode == 2 else 0.05 + 0.9 * float(torch.rand(1, generator=gen))
        threshold = torch.quantile(field.flatten(), 1.0 - fraction)
        cells = (field >= threshold).float()
        if mode == 2:
            r = int(torch.randint(0, 5, (1,), generator=gen))
            event = masks[i].float()[None, None]
            event = F.max_pool2d(event, 2 * r + 1, stride=1, padding=r) if r else event
            cells = torch.maximum(cells, event)
        keep[j] = cells[0]
    x = x.clone()
    x[chosen] *= keep
    return x


@torch.inference_mode()
def _accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    net.eval()
    correct = 0
    for start in range(0, len(images), 256):
        x = images[start:start + 256].float().div(255.0).expand(-1, 3, -1, -1).to(device)
        correct += int((net(x).argmax(1).cpu() == labels[start:start + 256]).sum())
    return correct / max(len(images), 1)


def train_audio_cnn(seed: int = 0, n_train: int = DEFAULT_N_TRAIN, n_val: int = DEFAULT_N_VAL,
                    epochs: int = DEFAULT_EPOCHS, device: str | torch.device = "cpu",
                    progress: bool = True) -> tuple[nn.Module, dict]:
    """Train an :class:`AudioCNN` from scratch, reproducibly for a given ``seed``.

    Training clips come from ``make_split(n_train, 20_000 + 2*seed)`` and validation clips from
    ``make_split(n_val, 20_001 + 2*seed)`` (never the evaluation set's seed). Adam with a
    one-cycle schedule; half of every batch gets random silenced patches.
    Returns ``(net, info)``: ``net`` in eval mode; ``info`` with seed, val_accuracy (clean
    held-out clips), val_accuracy_event_only (everything but the event's mask silenced), n_train,
    n_val, epochs, data_version, model_version, class_names, image_shape, seconds (all), data_seconds
    (making the clips).
    """
    t0 = time.perf_counter()
    device = torch.device(device)
    train_seed, val_seed = 20_000 + 2 * seed, 20_001 + 2 * seed  # held_out_accuracy regenerates val_seed
    assert EVAL_SEED not in (train_seed, val_seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = AudioCNN().to(device)

    tr_images, tr_labels, tr_masks = make_split(n_train, train_seed)
    va_images, va_labels, va_masks = make_split(n_val, val_seed)
    data_seconds = time.perf_counter() - t0
    x_train, y_train, m_train = (torch.from_numpy(tr_images)[:, None], torch.from_numpy(tr_labels),
                                 torch.from_numpy(tr_masks))
    x_val, y_val = torch.from_numpy(va_images)[:, None], torch.from_numpy(va_labels)
    x_val_event = x_val * torch.from_numpy(va_masks)[:, None]

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        x = _silence(x_train[idx].float().div(255.0), m_train[idx], gen)
        return F.cross_entropy(net(x.expand(-1, 3, -1, -1).to(device)), y_train[idx].to(device))

    fit_one_cycle(net, torch.optim.Adam(net.parameters(), lr=_PEAK_LR, weight_decay=_WEIGHT_DECAY), loss_of,
                  n_train=n_train, batch_size=_BATCH_SIZE, epochs=epochs, peak_lr=_PEAK_LR, generator=gen,
                  desc="training audio cnn", progress=progress)
    info = {
        "seed": int(seed),
        "val_accuracy": _accuracy(net, x_val, y_val, device),
        "val_accuracy_event_only": _accuracy(net, x_val_event, y_val, device),
        "n_train": int(n_train), "n_val": int(n_val), "epochs": int(epochs),
        "data_version": DATA_VERSION, "model_version": MODEL_VERSION, "class_names": list(CLASS_NAMES),
        "image_shape": list(IMAGE_SHAPE), "seconds": round(time.perf_counter() - t0, 2),
        "data_seconds": round(data_seconds, 2),
    }
    return net, info


def held_out_accuracy(net: nn.Module, seed: int = 0, n_val: int = DEFAULT_N_VAL,
                      device: str | torch.device = "cpu") -> float:
    """The accuracy :func:`train_audio_cnn` records as ``val_accuracy``, recomputed on the same
    ``n_val`` held-out clips (regenerated from the training ``seed``)."""
    images, labels, _ = make_split(n_val, 20_001 + 2 * seed)
    return _accuracy(net, torch.from_numpy(images)[:, None], torch.from_numpy(labels), torch.device(device))


def load_or_train_default(path: str | Path | None = None, device: str | torch.device = "cpu", seed: int = 0,
                          verbose: bool = True) -> tuple[nn.Module, dict]:
    """The default audio model: loaded from ``path`` (default ``ckpt/audio_cnn.pt``) if it holds a
    checkpoint of the same seed, data and model version, else trained and saved there atomically
    (callers that may run in parallel hold a file lock around this, as ``families`` does).
    An unreadable or mismatched file is a ``RuntimeError`` naming it. Returns ``(net, info)``."""
    return load_or_train(
        Path(path) if path is not None else default_checkpoint(), what="audio CNN",
        expected={"seed": seed, "data_version": DATA_VERSION, "model_version": MODEL_VERSION},
        build=lambda info: AudioCNN(len(info.get("class_names", CLASS_NAMES))),
        train=lambda: train_audio_cnn(seed=seed, device=device, progress=verbose),
        quality=lambda info: f"held-out accuracy {info['val_accuracy']:.3f}", device=device, verbose=verbose)
