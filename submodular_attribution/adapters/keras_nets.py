"""PyTorch networks configured to compute what the published Keras CUB classifiers compute,
with torchvision's module layout and key names (files written by ``convert_keras``).

Architectures (``--arch keras:<name>``):

* ``keras:resnet101`` (and ``resnet50``/``resnet152``): :class:`KerasResNet`, torchvision's
  ``Bottleneck`` blocks and key names (``conv1 bn1 layer1..4 fc``). Differences from
  torchvision's ResNet, reproduced here: the stride of a downsampling block sits on its first
  1×1 convolution (Keras ResNet v1), not on the 3×3 (torchvision's v1.5); the Keras
  convolution biases are folded into the BatchNorm statistics by the converter.
* ``keras:mobilenet_v2``: torchvision's ``MobileNetV2``; every stride-2 convolution pads like
  Keras ("same" with stride 2, or ``ZeroPadding2D(correct_pad)``): one row/column at the bottom
  and right only for even sizes (torchvision pads one on every side), see :class:`TFSameConv2d`.
* ``keras:vgg19``: torchvision's ``VGG`` feature layout (``features.<i>``); 3×3 convolutions
  with stride 1 pad alike in both.

Head: the Keras layers after the convolutional base — global average pooling (or a
``Flatten`` of the final map), then one or more ``Dense`` layers — become ``fc``
(``classifier`` for MobileNetV2/VGG): one ``nn.Linear`` (for ResNets, torchvision's ``fc``), or an
``nn.Sequential`` of Linear layers (``.0``, ``.2``, …) with the hidden activations recorded in
the buffer ``keras_head`` (0 linear, 1 ReLU). The final softmax is left out: the scorer applies
it to the logits. ``keras_head`` also marks the file: loading it into a plain torchvision model
fails on that key instead of silently computing something else.

Preprocessing (what ``keras.applications.<model>.preprocess_input`` does, expressed as RGB
mean/std on [0, 1] images): ResNet and VGG ("caffe" mode) take BGR pixels minus the ImageNet
BGR mean, unscaled; the converter reverses the first convolution's input channels so that the
network takes RGB, hence mean = (123.68, 116.779, 103.939)/255 and std = 1/255.
MobileNetV2 ("tf" mode): (x − 127.5)/127.5, i.e. mean = std = 0.5. Input sizes: 224.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..common.checkpoints import load_state, read_state_dict, strip_prefixes
from ..common.errors import InputError

KERAS_PREFIX = "keras:"
CAFFE = {"mean": (123.68 / 255, 116.779 / 255, 103.939 / 255), "std": (1 / 255,) * 3}
TF_MODE = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
RESNETS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
RESNET_WIDTHS = (64, 128, 256, 512)
VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
ARCHS = (*RESNETS, "mobilenet_v2", "vgg19")
ACTIVATIONS = {0: nn.Identity, 1: nn.ReLU}
HEAD_KEY = "keras_head"
SETTING_KEY = "keras_setting"  # MobileNetV2: its (t, c, n, s) rows; VGG: conv widths, 0 for a max-pool


class TFSameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "same": total padding max((⌈n/s⌉−1)·s + k − n, 0)
    per axis, the smaller half before (top/left) and the larger after (bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return self._conv_forward(F.pad(x, (left, right, top, bottom)), self.weight, self.bias)


def tf_same(conv: nn.Conv2d) -> TFSameConv2d:
    """``conv`` (same parameters, same key names) padding like TensorFlow's "same"."""
    new = TFSameConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0,
                       conv.dilation, conv.groups, conv.bias is not None)
    new.load_state_dict(conv.state_dict())
    return new


def keras_head(dims: list[int], activations: list[int]) -> nn.Module:
    """Dense layers ``dims[0] → dims[1] → …``: one Linear, or Linear/activation pairs."""
    if len(dims) == 2:
        return nn.Linear(dims[0], dims[1])
    layers: list[nn.Module] = []
    for index, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(cin, cout))
        if index < len(dims) - 2:
            layers.append(ACTIVATIONS[activations[index]]())
    return nn.Sequential(*layers)


class KerasResNet(nn.Module):
    """ResNet v1 as ``keras.applications`` builds it, with torchvision's module names:
    stem 7×7/2 conv + BN + ReLU + 3×3/2 max-pool; stages of ``Bottleneck`` blocks (width w,
    output 4w), the first block of every stage but the first with stride 2 on its 1×1 ``conv1``;
    then the head (see the module docstring). ``flatten`` keeps the final map instead of
    averaging it (a Keras ``Flatten`` head)."""

    def __init__(self, layers: tuple[int, ...], head_dims: list[int], head_activations: list[int],
                 widths: tuple[int, ...] = RESNET_WIDTHS, stem: int = 64, flatten: bool = False) -> None:
        super().__init__()
        from torchvision.models.resnet import Bottleneck, conv1x1

        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)  # zero padding in Keras: the same after a ReLU
        inplanes = stem
        for index, (width, blocks) in enumerate(zip(widths, layers), start=1):
            stride = 1 if index == 1 else 2
            down = nn.Sequential(conv1x1(inplanes, width * 4, stride), nn.BatchNorm2d(width * 4))
            first = Bottleneck(inplanes, width, stride, down)
            first.conv1.stride, first.conv2.stride = (stride, stride), (1, 1)  # Keras v1: stride on the 1×1
            stage = [first] + [Bottleneck(width * 4, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*stage))
            inplanes = width * 4
        self.num_stages = len(layers)
        self.avgpool = nn.Identity() if flatten else nn.AdaptiveAvgPool2d(1)
        self.fc = keras_head(head_dims, head_activations)
        self.register_buffer(HEAD_KEY, torch.tensor(head_activations, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def keras_mobilenet_v2(head_dims: list[int], head_activations: list[int], width_mult: float = 1.0,
                       setting: list[list[int]] | None = None) -> nn.Module:
    """torchvision's ``MobileNetV2`` with TensorFlow "same" padding on its stride-2 convolutions
    and the Keras head as ``classifier`` (no dropout: eval)."""
    from torchvision.models import MobileNetV2

    net = MobileNetV2(num_classes=head_dims[-1], width_mult=width_mult, inverted_residual_setting=setting)
    default = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
    net.register_buffer(SETTING_KEY, torch.tensor(setting or default, dtype=torch.long))
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d) and child.stride != (1, 1):
                setattr(module, child_name, tf_same(child))
    net.classifier = keras_head(head_dims, head_activations)
    net.register_buffer(HEAD_KEY, torch.tensor(head_activations, dtype=torch.long))
    return net


class KerasVGG(nn.Module):
    """VGG as ``keras.applications`` builds it: torchvision's ``features`` layout (3×3 conv +
    ReLU, 2×2 max-pools), then global average pooling or a flatten, then the Keras head as
    ``classifier``."""

    def __init__(self, cfg: tuple, head_dims: list[int], head_activations: list[int], flatten: bool = False) -> None:
        super().__init__()
        from torchvision.models.vgg import make_layers

        self.features = make_layers(["M" if c in (0, "M") else int(c) for c in cfg], batch_norm=False)
        self.register_buffer(SETTING_KEY, torch.tensor([0 if c == "M" else int(c) for c in cfg], dtype=torch.long))
        self.avgpool = nn.Identity() if flatten else nn.AdaptiveAvgPool2d(1)
        self.classifier = keras_head(head_dims, head_activations)
        self.register_buffer(HEAD_KEY, torch.tensor(head_activations, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ----------------------------------------------------------------------------- from a state dict

def _head_layout(state: dict, prefix: str, source) -> tuple[list[int], list[int]]:
    if HEAD_KEY not in state:
        raise InputError(f"{source}: not a converted Keras model (no {HEAD_KEY!r} key); "
                         "convert the .h5 with python -m submodular_attribution.convert_keras")
    activations = [int(a) for a in state[HEAD_KEY].tolist()]
    if any(a not in ACTIVATIONS for a in activations):
        raise InputError(f"{source}: unknown head activation codes {activations}")
    if not activations:
        weight = state.get(f"{prefix}.weight")
        if weight is None or weight.ndim != 2:
            raise InputError(f"{source}: no {prefix}.weight")
        return [weight.shape[1], weight.shape[0]], []
    dims = []
    for index in range(len(activations) + 1):
        weight = state.get(f"{prefix}.{2 * index}.weight")
        if weight is None or weight.ndim != 2:
            raise InputError(f"{source}: no {prefix}.{2 * index}.weight for a {len(activations) + 1}-layer head")
        if not dims:
            dims.append(weight.shape[1])
        dims.append(weight.shape[0])
    return dims, activations


def _stages(state: dict, prefix: str = "layer") -> list[int]:
    counts: dict[int, set[int]] = {}
    for key in state:
        m = re.match(rf"{prefix}(\d+)\.(\d+)\.", key)
        if m:
            counts.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return [len(counts[i]) for i in sorted(counts)]


def _setting(state: dict, source) -> list:
    if SETTING_KEY not in state:
        raise InputError(f"{source}: not a converted Keras model (no {SETTING_KEY!r} key)")
    return state[SETTING_KEY].tolist()


def build_keras_net(arch: str, state: dict, source, check: bool = True) -> nn.Module:
    """The network of ``arch`` (without ``keras:``) sized from a converted state dict (its
    blocks, widths, head and ``keras_setting``). ``check``: the depth must be ``arch``'s own
    (off only for the tests' narrow models, built by this same code)."""
    if arch in RESNETS:
        dims, acts = _head_layout(state, "fc", source)
        stages = _stages(state)
        widths = tuple(int(state[f"layer{i + 1}.0.conv1.weight"].shape[0]) for i in range(len(stages)))
        if check and (tuple(stages) != RESNETS[arch] or widths != RESNET_WIDTHS):
            raise InputError(f"{source}: blocks per stage {stages} (widths {list(widths)}) are not {arch}'s "
                             f"{list(RESNETS[arch])} (widths {list(RESNET_WIDTHS)})")
        stem = int(state["conv1.weight"].shape[0]) if "conv1.weight" in state else 64
        return KerasResNet(tuple(stages), dims, acts, widths=widths, stem=stem, flatten=dims[0] != widths[-1] * 4)
    if arch == "mobilenet_v2":
        dims, acts = _head_layout(state, "classifier", source)
        setting = _setting(state, source)
        return keras_mobilenet_v2(dims, acts, setting=setting)
    if arch == "vgg19":
        dims, acts = _head_layout(state, "classifier", source)
        cfg = _setting(state, source)
        if check and [c if c else "M" for c in cfg] != list(VGG19):
            raise InputError(f"{source}: layers {cfg} are not VGG19's")
        last = [c for c in cfg if c][-1]
        return KerasVGG(tuple(cfg), dims, acts, flatten=dims[0] != last)
    raise InputError(f"unknown Keras architecture {arch!r} (known: {', '.join(ARCHS)})")


def preprocessing(arch: str) -> dict:
    """RGB [0, 1] normalisation and input size of the Keras model ``arch`` (module docstring)."""
    norm = TF_MODE if arch == "mobilenet_v2" else CAFFE
    return {**norm, "input_size": (224, 224)}


def load_keras_classifier(arch: str, checkpoint, num_classes: int | None = None,
                          input_size: tuple[int, int] | None = None, any_depth: bool = False) -> tuple[nn.Module, dict]:
    """``keras:<name>`` and a converted file → (network with the weights, preprocessing dict
    ``{"mean", "std", "input_size"}``). ``num_classes`` other than the file's is an error;
    ``any_depth`` accepts narrower or shallower files than ``<name>`` (the tests' models)."""
    name = arch[len(KERAS_PREFIX):] if arch.startswith(KERAS_PREFIX) else arch
    if name not in ARCHS:
        raise InputError(f"unknown Keras architecture {arch!r} (known: {', '.join(KERAS_PREFIX + a for a in ARCHS)})")
    if checkpoint is None:
        raise InputError(f"--checkpoint is required for {arch} (a file written by convert_keras)")
    state = read_state_dict(checkpoint)
    state = strip_prefixes(state, [HEAD_KEY])
    net = build_keras_net(name, state, checkpoint, check=not any_depth)
    load_state(net, state, checkpoint)
    classes = (net.fc if hasattr(net, "fc") else net.classifier)
    classes = (classes[-1] if isinstance(classes, nn.Sequential) else classes).out_features
    if num_classes is not None and num_classes != classes:
        raise InputError(f"{checkpoint}: the converted model has {classes} classes, not {num_classes}")
    prep = preprocessing(name)
    if input_size is not None:
        prep["input_size"] = tuple(int(s) for s in input_size)
    return net.eval(), prep
