"""X-DNNs (Hesse, Schaub-Meyer & Roth, "Fast Axiomatic Attribution for Neural Networks",
NeurIPS 2021): networks without any additive bias and without BatchNorm, so that with ReLU,
max/average pooling and bias-free linear maps they are nonnegatively homogeneous,
f(αx) = α f(x) for α ≥ 0 — and then Input×Gradient equals Integrated Gradients with the zero
baseline (in the space the network receives: the ImageNet-normalised image).

* ``x_resnet50``: the Fixup ResNet-50 (:mod:`.fixup`) with its scalar biases and multipliers
  removed and a bias-free classifier; shortcuts are bare bias-free 1×1 convolutions (key
  ``downsample.weight``). Initialised as Fixup (last branch convolution and classifier zero).
* ``x_vgg16``: torchvision's VGG-16 layout (configuration D: 13 3×3 convolutions, 5 max-pools,
  7×7 adaptive average pooling, 4096-4096-C classifier with dropout) with every ``bias=False``;
  keys ``features.<i>.weight`` and ``classifier.{0,3,6}.weight`` as torchvision's.

Parameter names and shapes follow the benchmark's ``models/xdnns/xfixup_resnet.py`` and
``models/xdnns/xvgg.py`` key for key (checked in ``tests/test_archs_benchmark.py``). Input
B×3×H×W ImageNet-normalised, H, W ≥ 32; output B×num_classes logits.
"""
from __future__ import annotations

import torch
from torch import nn

from .fixup import EXPANSION, STAGES, add_bottleneck_stages, fixup_initialise

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class XBottleneck(nn.Module):
    """Bias-free 1×1 → 3×3 (stride here) → 1×1 bottleneck; ReLU after each but the last, and
    after the residual sum."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class XResNet(nn.Module):
    """Bias-free, normalisation-free ResNet (X-ResNet); ``width`` = stem width (64 published)."""

    def __init__(self, num_classes: int = 1000, stages: tuple[int, ...] = STAGES, width: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = add_bottleneck_stages(self, XBottleneck, stages, width)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes, bias=False)
        fixup_initialise(self, XBottleneck, sum(stages))  # as the X-DNN code does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class XVGG(nn.Module):
    """Bias-free VGG without BatchNorm. ``width`` scales every channel count (64 published: 64…512
    convolution channels, 4096 hidden units); smaller only for tests."""

    def __init__(self, num_classes: int = 1000, config: tuple = VGG16_CONFIG, width: int = 64):
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                out = int(item) * width // 64
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        hidden = 4096 * width // 64
        self.classifier = nn.Sequential(
            nn.Linear(channels * 49, hidden, bias=False), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, hidden, bias=False), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, num_classes, bias=False))
        for m in self.modules():  # torchvision VGG's initialisation, without the biases
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def x_resnet50(num_classes: int = 1000, width: int = 64) -> XResNet:
    """The benchmark's ``x_resnet50`` (their ``xfixup_resnet50``): X-ResNet-50, stages 3, 4, 6, 3."""
    return XResNet(num_classes, STAGES, width)


def x_vgg16(num_classes: int = 1000, width: int = 64) -> XVGG:
    """The benchmark's ``x_vgg16`` (their ``xvgg16``): bias-free VGG-16 without BatchNorm."""
    return XVGG(num_classes, VGG16_CONFIG, width)
