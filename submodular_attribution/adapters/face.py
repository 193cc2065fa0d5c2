"""Face recognition scorers (CelebA / VGGFace2 experiments) on 112×112 aligned faces.

Backbone: the IR-ResNet ("iresnet") family used by ArcFace / insightface, written here from
its published description. Parameter names follow insightface's ``arcface_torch`` backbones
(``conv1 bn1 prelu layer1..4 bn2 fc features``; blocks ``bn1 conv1 bn2 prelu conv2 bn3
downsample.{0,1}``) so that a plain insightface ``backbone.pth`` loads by key.

The backbone gives a 512-d embedding; one of two heads turns it into class probabilities:

* **prototypes** — a C×512 tensor file, row k the mean embedding of identity k. Rows are
  L2-normalised at load and ``probs = softmax(scale · cos(e, prototypes))``.
* **head** — the state dict of an ``nn.Linear(512, C)`` (bias optional):
  ``probs = softmax(W e + b)``.

An optional uncertainty file adds evidential (EDL) logits, so the objective's confidence term
becomes 1 − u instead of 1 − normalised entropy: the published ``edl-101-*.pth`` networks (an
IR-ResNet-100 with ``fc2``, run on the images; see ``adapters/edl.py``) or an
:class:`EvidentialHead` on the embedding.

Backbones converted from the published Keras models (``python -m
submodular_attribution.convert_keras IN.h5 OUT.pt --arch iresnet100``) load as any backbone.

Preprocessing: RGB in [0, 1] → ``(x − 0.5) / 0.5`` (i.e. ``(pixel − 127.5) / 127.5``), the
normalisation insightface trains and evaluates ``arcface_torch`` models with, on **RGB**
images (its training records decode to RGB; its ONNX pipeline swaps BGR→RGB). Models trained
on BGR input (some older MXNet/Caffe ports) need ``bgr=True``. Inputs that are not
``input_size``×``input_size`` are resized bilinearly (with antialiasing) first; the images
should already be aligned face crops.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import InputError
from ..models import ModelOutput, tune_module
from ..common.checkpoints import load_weights, read_state_dict, read_tensor_file, strip_prefixes
from .edl import FACE_EDL_SCALE, load_evidential_network, stage_depths

FACE_SIZE = 112
EMBEDDING_DIM = 512
WIDTHS = (64, 128, 256, 512)
# ArcFace trains its classifier on s·cos(θ) with s = 64, over L2-normalised class centres,
# so softmax(64·cos) is the distribution such a model's own head produces over its
# identities; prototypes (normalised mean embeddings) play the role of those centres.
DEFAULT_SCALE = 64.0

IRESNETS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """BN → 3×3 conv → BN → PReLU → 3×3 conv (stride) → BN, plus a shortcut
    (identity, or 1×1 conv with the stride + BN when the shape changes)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=1e-5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IR-ResNet face backbone: ``B×3×S×S`` normalised faces → ``B×512`` embeddings.

    ``layers`` gives the number of blocks per stage (``widths``, 64, 128, 256, 512 in every
    published model; each stage starting with a stride-2 block). ``input_size`` must be a
    multiple of 16; the final map is ``input_size/16`` square (7×7 for 112×112), which fixes the
    size of ``fc``.
    """

    def __init__(self, layers: tuple[int, ...], num_features: int = EMBEDDING_DIM, dropout: float = 0.0,
                 input_size: int = FACE_SIZE, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"IResNet needs four stages of at least one block, got {tuple(layers)}")
        if input_size % 16:
            raise ValueError(f"IResNet input size must be a multiple of 16, got {input_size}")
        if len(widths) != 4:
            raise ValueError(f"IResNet needs four stage widths, got {tuple(widths)}")
        self.layers = tuple(int(n) for n in layers)
        self.input_size = input_size
        self.num_features = num_features
        self.conv1 = _conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        inplanes = widths[0]
        for index, (width, blocks) in enumerate(zip(widths, self.layers), start=1):
            stage = [IBasicBlock(inplanes, width, stride=2)]
            stage += [IBasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))
            inplanes = width
        self.bn2 = nn.BatchNorm2d(widths[-1], eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        side = input_size // 16
        self.fc = nn.Linear(widths[-1] * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def _unknown(kind: str, name: str, known) -> InputError:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return InputError(f"unknown {kind} {name!r} (known: {', '.join(known)}){hint}")


def iresnet(arch: str, **kwargs) -> IResNet:
    """A randomly initialised IR-ResNet of a registered depth (``IRESNETS``)."""
    if arch not in IRESNETS:
        raise _unknown("face architecture", arch, IRESNETS)
    return IResNet(IRESNETS[arch], **kwargs)


class PrototypeHead(nn.Module):
    """``logits = scale · cos(e, prototypes)``; prototypes (C×D) are L2-normalised here."""

    def __init__(self, prototypes: torch.Tensor, scale: float = DEFAULT_SCALE) -> None:
        super().__init__()
        self.register_buffer("prototypes", F.normalize(prototypes.float(), dim=-1))
        self.scale = float(scale)

    @property
    def num_classes(self) -> int:
        return self.prototypes.shape[0]

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(embeddings, dim=-1) @ self.prototypes.T


class EvidentialHead(nn.Module):
    """Evidential (EDL) uncertainty head on the raw (un-normalised) 512-d embedding:
    ``fc1: Linear(in, hidden) → ReLU → fc2: Linear(hidden, C)`` → evidence logits z, which the
    objective turns into evidence exp(clamp(z·s)), α = evidence + 1 and confidence 1 − C/Σα."""

    def __init__(self, num_classes: int, in_features: int = EMBEDDING_DIM, hidden: int = 256) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(embeddings)))


class FaceScorer:
    """Scorer over aligned faces: embeddings = backbone features (B×512), probabilities from
    ``head`` (any module mapping embeddings to C logits), evidential logits from
    ``uncertainty_head`` when given (else None). Images: ``B×3×H×W`` RGB in [0, 1]."""

    def __init__(self, backbone: nn.Module, head: nn.Module, uncertainty_head: nn.Module | None = None,
                 device: str | torch.device = "cpu", bgr: bool = False, input_size: int = FACE_SIZE) -> None:
        self.device = torch.device(device)
        self.backbone = backbone.to(self.device).eval()
        self.head = head.to(self.device).eval()
        self.uncertainty_head = None if uncertainty_head is None else uncertainty_head.to(self.device).eval()
        self.num_classes = int(head.num_classes if hasattr(head, "num_classes") else head.out_features)
        self.bgr = bgr
        self.input_size = input_size
        self.dtype = next(self.backbone.parameters()).dtype
        self.pixel_mean = (0.5, 0.5, 0.5)  # (x − 0.5)/0.5: mid-grey is zero to the network

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] → resized to input_size, channel order as the model expects, (x − 0.5)/0.5."""
        x = images.to(self.device, self.dtype)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        if self.bgr:
            x = x.flip(1)
        return (x - 0.5) / 0.5

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.preprocess(images))

    @property
    def attribution_module(self) -> nn.Module:
        """The backbone, which baseline methods hook into."""
        return self.backbone

    def tune(self, channels_last: bool = False, compile: bool = False) -> None:
        """Channels-last memory and/or ``torch.compile`` for the backbone."""
        self.backbone = tune_module(self.backbone, channels_last, compile)

    def representation(self, images: torch.Tensor) -> torch.Tensor:
        """The identity embedding ``B×512`` (differentiable)."""
        return self.embed(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable B×C logits of the head (for gradient baselines)."""
        return self.head(self.embed(images))

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        embeddings = self.embed(images)
        probs = self.head(embeddings).softmax(dim=-1)
        if self.uncertainty_head is None:
            evidence = None
        elif getattr(self.uncertainty_head, "takes_images", False):  # a published EDL network
            evidence = self.uncertainty_head(images.to(self.device))
        else:
            evidence = self.uncertainty_head(embeddings)
        return ModelOutput(probs=probs, embeddings=embeddings, evidence_logits=evidence)


def load_prototypes(path: str | Path) -> torch.Tensor:
    """A C×512 tensor file: a bare tensor, ``{"prototypes": T}``, or a dict holding one tensor
    (e.g. ``{"weight": W}`` of an ArcFace margin head). Not normalised here."""
    path = Path(path)
    obj = read_tensor_file(path, "prototypes file")
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if isinstance(obj.get("prototypes"), torch.Tensor):
            obj = obj["prototypes"]
        elif len(tensors) == 1:
            obj = next(iter(tensors.values()))
        else:
            raise InputError(f"{path}: expected a tensor or {{'prototypes': tensor}}, got keys {', '.join(map(str, obj))[:200]}")
    if not isinstance(obj, torch.Tensor):
        raise InputError(f"{path}: expected a C×{EMBEDDING_DIM} prototypes tensor, got {type(obj).__name__}")
    if obj.ndim != 2 or obj.shape[1] != EMBEDDING_DIM or obj.shape[0] < 1 or not obj.is_floating_point():
        raise InputError(f"{path}: prototypes must be a float C×{EMBEDDING_DIM} tensor, got {obj.dtype} {tuple(obj.shape)}")
    if not torch.isfinite(obj).all() or (obj.norm(dim=1) == 0).any():
        raise InputError(f"{path}: prototypes contain non-finite values or all-zero rows")
    return obj.float()


def _shape_of(path: str | Path, key: str, expected: list[str]) -> tuple[int, ...] | None:
    state = strip_prefixes(read_state_dict(path), expected)
    return tuple(state[key].shape) if key in state else None


def load_linear_head(path: str | Path) -> nn.Linear:
    """``nn.Linear(512, C)`` from a state dict; C is read from ``weight``, ``bias`` is optional."""
    state = strip_prefixes(read_state_dict(path), ["weight", "bias"])
    weight = state.get("weight")
    if weight is None or weight.ndim != 2:
        raise InputError(f"{path}: expected the state dict of nn.Linear({EMBEDDING_DIM}, C) "
                         f"(keys: {', '.join(list(state)[:4]) or 'none'})")
    head = nn.Linear(EMBEDDING_DIM, weight.shape[0], bias="bias" in state)
    return load_weights(head, path)


def load_evidential_head(path: str | Path) -> EvidentialHead:
    """:class:`EvidentialHead` from a state dict; hidden width and C are read from the file."""
    keys = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    fc1, fc2 = _shape_of(path, "fc1.weight", keys), _shape_of(path, "fc2.weight", keys)
    if fc1 is None or fc2 is None or len(fc1) != 2 or len(fc2) != 2:
        head = EvidentialHead(1)  # let load_weights name the missing / mis-shaped keys
    else:
        head = EvidentialHead(num_classes=fc2[0], hidden=fc1[0])
    return load_weights(head, path)


class IResNetEDL(IResNet):
    """The published face EDL network: an IR-ResNet whose 512-d feature goes through
    ``fc2: Linear(512, C)`` to evidential logits (keys as in ``edl-101-10177.pth``)."""

    def __init__(self, layers: tuple[int, ...], num_classes: int, **kwargs) -> None:
        super().__init__(layers, **kwargs)
        self.fc2 = nn.Linear(self.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(super().forward(x))


def load_face_uncertainty(path: str | Path) -> nn.Module:
    """The ``--uncertainty-head`` file: a published EDL network (keys ``conv1 … features fc2``;
    an :class:`~.edl.EvidentialNetwork` on the images, scale 5, 112×112) or an
    :class:`EvidentialHead` (keys ``fc1 fc2``, on the embedding)."""
    keys = set(strip_prefixes(read_state_dict(path), ["conv1.weight", "fc1.weight"]))
    if "conv1.weight" not in keys:
        return load_evidential_head(path)

    def build(state: dict) -> nn.Module:
        depths = stage_depths(state)
        if len(depths) != 4 or min(depths) < 1:
            raise InputError(f"{path}: blocks per stage {list(depths)}: not an IR-ResNet")
        fc2 = state["fc2.weight"]
        widths = tuple(int(state[f"layer{s}.0.conv1.weight"].shape[0]) for s in range(1, 5))
        return IResNetEDL(depths, fc2.shape[0], num_features=fc2.shape[1], widths=widths, input_size=size(state))

    def size(state: dict) -> int:  # fc reads the (size/16)² final map: 112 for every published file
        widths = int(state["layer4.0.conv1.weight"].shape[0]) if "layer4.0.conv1.weight" in state else WIDTHS[-1]
        return 16 * int(round((state["fc.weight"].shape[1] / widths) ** 0.5)) if "fc.weight" in state else FACE_SIZE

    return load_evidential_network(path, build, "fc2.weight", FACE_EDL_SCALE, size)


def _load_backbone(model: IResNet, path: str | Path) -> IResNet:
    # Checkpoints written before torch 1.1 lack BatchNorm's num_batches_tracked; it is unused in eval.
    counters = [k for k in model.state_dict() if k.endswith("num_batches_tracked")]
    return load_weights(model, path, allow_missing=counters)


def build_face_scorer(arch: str, checkpoint: str | Path, *, prototypes: str | Path | None = None,
                      head: str | Path | None = None, uncertainty_head: str | Path | None = None,
                      device: str | torch.device = "cpu", scale: float = DEFAULT_SCALE,
                      bgr: bool = False) -> FaceScorer:
    """IR-ResNet ``arch`` with backbone weights ``checkpoint`` and exactly one of ``prototypes``
    (C×512 tensor file; probs = softmax(scale·cos)) or ``head`` (``nn.Linear(512, C)`` state
    dict; ``scale`` is then unused). ``uncertainty_head``: optional :class:`EvidentialHead`
    state dict with the same C. ``bgr=True`` for models trained on BGR input."""
    if (prototypes is None) == (head is None):
        raise InputError("face scorer: give exactly one of prototypes or head "
                         f"(got {'both' if prototypes is not None else 'neither'})")
    if not scale > 0:
        raise InputError(f"face scorer: scale must be positive, got {scale}")
    if arch not in IRESNETS:  # before any file is read
        raise _unknown("face architecture", arch, IRESNETS)
    if prototypes is not None:
        classifier: nn.Module = PrototypeHead(load_prototypes(prototypes), scale)
        source = prototypes
    else:
        classifier = load_linear_head(head)
        source = head
    num_classes = classifier.num_classes if prototypes is not None else classifier.out_features
    edl = None
    if uncertainty_head is not None:
        edl = load_face_uncertainty(uncertainty_head)
        if edl.num_classes != num_classes:
            raise InputError(f"{uncertainty_head}: evidential head has {edl.num_classes} classes "
                             f"but {source} has {num_classes}")
    backbone = _load_backbone(iresnet(arch), checkpoint)  # the large file last: small ones fail fast
    return FaceScorer(backbone, classifier, edl, device=device, bgr=bgr)
