"""A small CenterNet-style detector for the embedded detection benchmark, trained at first use.

Network: three 3×3 stride-2 conv+BN+ReLU (3→16→32→48, so 112×112 gives a 14×14 map at
stride 8), two dilated 3×3 layers (dilation 2 and 4, context for objects up to ~40 px), then
three 1×1 heads on a shared 3×3 layer: a class heat-map (6 channels,
sigmoid), box width/height (in stride units) and the centre's sub-cell offset.

Decoding (:meth:`ShapesDetector.detect`): a cell is a detection of class c when its heat is the
maximum of its 3×3 neighbourhood; the ``top_k`` (20) highest over classes and cells are kept,
each with box (cx ± w/2, cy ± h/2) clipped to the image and score = its heat for class c
(0 for the other classes). No score threshold: weak detections keep weak scores.

Training (:func:`train_shapes_detector`): scenes of :mod:`.shapes_data`, half of each batch
with random black regions (the shapes classifier's occlusion); an object less than half
visible after occlusion is not a target, so scores fall as an object is hidden. Focal loss on
Gaussian centre maps (CenterNet), L1 on size and offset at the centres. Default: 2400 scenes,
8 epochs, batch 32: 170 s with one CPU thread on a shared 2-core machine, held-out recall 0.95
(:func:`held_out_recall`). ``torch.set_num_threads`` is left to the caller; on a machine busy
with other jobs one thread is much faster than several (2 threads took 35 minutes there).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common import paths
from ..common.trained import fit_one_cycle, load_or_train
from ..shapes.data import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from ..shapes.model import MEAN, STD, _occlude
from .matching import Detections
from .shapes_data import DATA_VERSION, make_scenes

MODEL_VERSION = "shapes-centernet-v1"
STRIDE = 8
TOP_K = 20
DEFAULT_N_TRAIN = 2400
DEFAULT_EPOCHS = 8
_BATCH = 32
_LR = 3e-3


def default_checkpoint() -> Path:
    """The shipped ``ckpt/embedded/shapes_detector.pt``, else a cache of that name under ``ckpt/``."""
    return paths.weights_file("shapes_detector.pt")


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class ShapesDetector(nn.Module):
    """See the module docstring. ``forward`` takes normalised B×3×H×W images and returns
    (heat logits B×C×h×w, size B×2×h×w, offset B×2×h×w)."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 48) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = nn.Sequential(*_conv(3, 16, 2), *_conv(16, 32, 2), *_conv(32, width, 2),
                                      *_conv(width, width, 1, 2), *_conv(width, width, 1, 4))
        self.neck = nn.Sequential(*_conv(width, width))
        self.heat = nn.Conv2d(width, num_classes, 1)
        self.size = nn.Conv2d(width, 2, 1)
        self.offset = nn.Conv2d(width, 2, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1, as CenterNet
        self.to(memory_format=torch.channels_last)  # markedly faster on CPU

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.neck(self.backbone(x.contiguous(memory_format=torch.channels_last)))
        return self.heat(f), self.size(f), self.offset(f)


def decode(heat_logits: torch.Tensor, size: torch.Tensor, offset: torch.Tensor, image_hw: tuple[int, int],
           top_k: int = TOP_K) -> Detections:
    """Detections (boxes in the input's pixels, one-hot class scores) from the head outputs."""
    b, c, h, w = heat_logits.shape
    heat = heat_logits.sigmoid()
    peaks = heat * (heat == F.max_pool2d(heat, 3, 1, 1)).to(heat.dtype)
    k = min(top_k, c * h * w)
    score, index = peaks.flatten(1).topk(k, dim=1)  # B×k
    cls = torch.div(index, h * w, rounding_mode="floor")
    cell = index % (h * w)
    ys, xs = torch.div(cell, w, rounding_mode="floor"), cell % w
    gather = lambda m: m.flatten(2).gather(2, cell[:, None].expand(-1, m.shape[1], -1))  # noqa: E731  B×2×k
    wh, off = gather(size), gather(offset)
    sy, sx = image_hw[0] / h, image_hw[1] / w
    cx, cy = (xs + off[:, 0]) * sx, (ys + off[:, 1]) * sy
    bw, bh = wh[:, 0].clamp(min=0) * sx, wh[:, 1].clamp(min=0) * sy
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
    limit = torch.tensor([image_hw[1], image_hw[0], image_hw[1], image_hw[0]], device=boxes.device, dtype=boxes.dtype)
    boxes = torch.minimum(boxes.clamp(min=0), limit)
    scores = torch.zeros(b, k, c, device=heat.device, dtype=score.dtype)
    scores = scores.scatter(2, cls[..., None], score[..., None])
    return Detections(boxes, scores)


class ShapesDetectorAdapter:
    """The trained network as a :class:`~submodular_attribution.detection.scorer.Detector`:
    RGB [0, 1] images in (normalised with the shapes MEAN/STD), :func:`decode`\\ d detections out."""

    def __init__(self, net: ShapesDetector, device: str | torch.device = "cpu", top_k: int = TOP_K) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.top_k = top_k
        self.num_classes = net.num_classes
        self.class_names = list(CLASS_NAMES)
        self.mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)

    @property
    def attribution_module(self) -> nn.Module:
        return self.net

    @property
    def cam_layer(self) -> nn.Module:
        return self.net.neck

    def __call__(self, images: torch.Tensor) -> Detections:
        heat, size, offset = self.net((images - self.mean) / self.std)
        return decode(heat, size, offset, tuple(images.shape[-2:]), self.top_k)


# -- training -----------------------------------------------------------------------------------

def _targets(objects_batch, visible: torch.Tensor, masks: list[list[np.ndarray]], h: int, w: int):
    """Gaussian centre maps B×C×h×w, and (batch, y, x, w, h, off_x, off_y) rows of the objects
    at least half visible. ``visible``: B×H×W bool pixels left after occlusion."""
    b = len(objects_batch)
    heat = torch.zeros(b, NUM_CLASSES, h, w)
    rows = []
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    for i, objects in enumerate(objects_batch):
        for obj, mask in zip(objects, masks[i]):
            m = torch.from_numpy(mask)
            if visible[i][m].float().mean() < 0.5:
                continue
            x1, y1, x2, y2 = obj.box
            cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
            bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
            ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
            sigma = max(0.5, 0.15 * (bw + bh) / 2)
            g = torch.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma ** 2))
            heat[i, obj.label] = torch.maximum(heat[i, obj.label], g)
            rows.append((i, iy, ix, bw, bh, cx - ix, cy - iy))
    return heat, torch.tensor(rows, dtype=torch.float32).reshape(-1, 7)


def _focal(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def train_shapes_detector(seed: int = 0, n_train: int = DEFAULT_N_TRAIN, epochs: int = DEFAULT_EPOCHS,
                          device: str | torch.device = "cpu", progress: bool = True) -> tuple[ShapesDetector, dict]:
    """Train a :class:`ShapesDetector` from scratch (reproducible for ``seed``); returns
    ``(net in eval mode, info)`` with the held-out recall at IoU 0.5 of the top detection per object."""
    t0 = time.perf_counter()
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = ShapesDetector().to(device)
    images, scenes = make_scenes(n_train, 20_000 + 2 * seed)
    masks = [[o.mask for o in objs] for objs in scenes]
    union = torch.from_numpy(np.stack([np.any([o.mask for o in objs], axis=0) if objs else
                                       np.zeros(images.shape[1:3], bool) for objs in scenes]))
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    h = w = IMAGE_SIZE // STRIDE

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        clean = x_all[idx].float().div_(255.0)
        x = _occlude(clean, union[idx], gen)
        visible = x.abs().sum(1) > 0
        heat_gt, rows = _targets([scenes[i] for i in idx.tolist()], visible, [masks[i] for i in idx.tolist()], h, w)
        heat, size, offset = net(((x.to(device)) - mean) / std)
        loss = _focal(heat, heat_gt.to(device))
        if len(rows):
            rows = rows.to(device)
            bi, yi, xi = rows[:, 0].long(), rows[:, 1].long(), rows[:, 2].long()
            loss = loss + 0.1 * F.l1_loss(size[bi, :, yi, xi], rows[:, 3:5]) + F.l1_loss(offset[bi, :, yi, xi], rows[:, 5:7])
        return loss

    fit_one_cycle(net, torch.optim.AdamW(net.parameters(), lr=_LR, weight_decay=1e-4), loss_of, n_train=n_train,
                  batch_size=_BATCH, epochs=epochs, peak_lr=_LR, generator=gen, desc="training shapes detector",
                  progress=progress)
    info = {"seed": int(seed), "n_train": int(n_train), "epochs": int(epochs), "data_version": DATA_VERSION,
            "model_version": MODEL_VERSION, "class_names": list(CLASS_NAMES), "image_size": IMAGE_SIZE,
            "recall_iou50": held_out_recall(net, device), "seconds": round(time.perf_counter() - t0, 2)}
    return net, info


@torch.inference_mode()
def held_out_recall(net: ShapesDetector, device: str | torch.device = "cpu", n: int = 200, seed: int = 99) -> float:
    """Share of the objects of ``n`` held-out scenes (``seed`` 99; training uses 20000 + 2·seed, the
    evaluation set 4321) with a detection of their class at IoU ≥ 0.5 and score ≥ 0.3."""
    from .matching import box_iou

    adapter = ShapesDetectorAdapter(net, device)
    images, scenes = make_scenes(n, seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).to(device)
    found = total = 0
    for i in range(0, n, 50):
        det = adapter(x[i:i + 50])
        for j, objects in enumerate(scenes[i:i + 50]):
            for obj in objects:
                iou = box_iou(det.boxes[j], torch.tensor([obj.box], dtype=torch.float32, device=det.boxes.device))[:, 0]
                ok = (iou >= 0.5) & (det.scores[j, :, obj.label] >= 0.3)
                found += int(ok.any())
                total += 1
    return found / max(total, 1)


def load_or_train_detector(path: str | Path | None = None, device: str | torch.device = "cpu", seed: int = 0,
                           verbose: bool = True) -> tuple[ShapesDetector, dict]:
    """The default detector from ``path`` (default :func:`default_checkpoint`) when it matches the
    current data and model versions and ``seed``, else trained and saved there atomically (the
    caller holds the file lock). An unreadable file is a ``RuntimeError`` naming it."""
    return load_or_train(
        Path(path) if path is not None else default_checkpoint(), what="shapes detector",
        expected={"seed": seed, "data_version": DATA_VERSION, "model_version": MODEL_VERSION},
        build=lambda info: ShapesDetector(), train=lambda: train_shapes_detector(seed=seed, device=device, progress=verbose),
        quality=lambda info: f"held-out recall@0.5 {info['recall_iou50']:.3f}", device=device, verbose=verbose,
        duration="a few minutes")
