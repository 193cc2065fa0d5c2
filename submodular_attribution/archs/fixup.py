"""Fixup ResNet-50 (Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without
Normalization", ICLR 2019): a ResNet-50 without BatchNorm — the benchmark's ``fixup_resnet50``.

Facts (paper; parameter names as in the benchmark's ``models/xdnns/xfixup_resnet.py``, whose
state dict our :func:`fixup_resnet50` reproduces key for key and shape for shape, checked in
``tests/test_archs_benchmark.py``):

* no normalisation layer anywhere; every convolution is bias-free;
* instead, scalar (1-element) learnable biases before each convolution and each activation of a
  residual branch (``bias1a``, ``bias1b``, ``bias2a``, ``bias2b``, ``bias3a``, ``bias3b``) and one
  scalar multiplier ``scale`` on the branch output:
  ``out = relu(scale · conv3(relu(conv2(relu(conv1(x + b1a) + b1b) + b2a) + b2b) + b3a) + b3b
  + shortcut(x + b1a))``, the shortcut being the identity or a bias-free 1×1 strided
  convolution ``downsample`` (a bare ``nn.Conv2d``, key ``downsample.weight``);
* the stem is ``relu(conv1(x) + bias1)`` then 3×3/2 max pooling; the head is
  ``fc(avgpool(x) + bias2)`` with an ordinary biased ``nn.Linear``;
* initialisation: the last convolution of each branch and the classifier are zero; the other
  branch convolutions are He-normal (fan-out) scaled by L^(−1/4) (L = 16 residual branches,
  m = 3 layers per branch: L^(−1/(2m−2))); shortcuts are He-normal; biases 0, scales 1.
"""
from __future__ import annotations

import math

import torch
from torch import nn

STAGES = (3, 4, 6, 3)  # ResNet-50
EXPANSION = 4


def _scalar(value: float) -> nn.Parameter:
    return nn.Parameter(torch.full((1,), float(value)))


def he_normal_(weight: torch.Tensor, factor: float = 1.0) -> None:
    """N(0, 2 / (out_channels · kh · kw)) · factor², the He (fan-out) initialisation."""
    fan_out = weight.shape[0] * math.prod(weight.shape[2:])
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / fan_out) * factor)


class FixupBottleneck(nn.Module):
    """1×1 → 3×3 (stride here) → 1×1 bottleneck with Fixup's scalar biases and multiplier."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bias1a = _scalar(0)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bias1b = _scalar(0)
        self.bias2a = _scalar(0)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bias2b = _scalar(0)
        self.bias3a = _scalar(0)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.scale = _scalar(1)
        self.bias3b = _scalar(0)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = x + self.bias1a
        out = torch.relu(self.conv1(shifted) + self.bias1b)
        out = torch.relu(self.conv2(out + self.bias2a) + self.bias2b)
        out = self.conv3(out + self.bias3a) * self.scale + self.bias3b
        shortcut = x if self.downsample is None else self.downsample(shifted)
        return torch.relu(out + shortcut)


def add_bottleneck_stages(net: nn.Module, block: type, stages: tuple[int, ...], width: int) -> int:
    """Add ``layer1``…``layerK`` (torchvision's names) of ``block(inplanes, planes, stride,
    downsample)`` bottlenecks to ``net``: stage i has ``width·2^i`` planes, stride 2 from the
    second on, a bias-free 1×1 projection where the shape changes. Returns the output channels."""
    inplanes = width
    for i, blocks in enumerate(stages):
        planes, stride = width * 2 ** i, 1 if i == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes * EXPANSION:
            downsample = nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False)
        layer = [block(inplanes, planes, stride, downsample)]
        inplanes = planes * EXPANSION
        layer += [block(inplanes, planes) for _ in range(1, blocks)]
        setattr(net, f"layer{i + 1}", nn.Sequential(*layer))
    return inplanes


def fixup_initialise(net: nn.Module, block: type, branches: int) -> None:
    """Fixup's initialisation: each residual branch's first two convolutions He-normal scaled by
    branches^(−1/4), its last one and the classifier's weight zero."""
    for m in net.modules():
        if isinstance(m, block):
            he_normal_(m.conv1.weight, branches ** -0.25)
            he_normal_(m.conv2.weight, branches ** -0.25)
            nn.init.zeros_(m.conv3.weight)
            if m.downsample is not None:
                he_normal_(m.downsample.weight)
    nn.init.zeros_(net.fc.weight)


class FixupResNet(nn.Module):
    """Fixup ResNet; ``width`` is the stem width (64 in the published model; smaller only for
    tests). Input B×3×H×W ImageNet-normalised, H, W ≥ 32; output B×num_classes logits."""

    def __init__(self, num_classes: int = 1000, stages: tuple[int, ...] = STAGES, width: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bias1 = _scalar(0)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = add_bottleneck_stages(self, FixupBottleneck, stages, width)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.bias2 = _scalar(0)
        self.fc = nn.Linear(inplanes, num_classes)
        self._fixup_init(sum(stages))

    def _fixup_init(self, branches: int) -> None:
        fixup_initialise(self, FixupBottleneck, branches)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.conv1(x) + self.bias1))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1) + self.bias2)


def fixup_resnet50(num_classes: int = 1000, width: int = 64) -> FixupResNet:
    """The benchmark's ``fixup_resnet50``: Fixup ResNet-50 (stages 3, 4, 6, 3)."""
    return FixupResNet(num_classes, STAGES, width)
