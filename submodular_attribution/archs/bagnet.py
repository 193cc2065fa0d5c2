"""BagNet-33 (Brendel & Bethge, "Approximating CNNs with Bag-of-local-Features models works
surprisingly well on ImageNet", ICLR 2019) — the benchmark's ``bagnet33`` (and ``bagnet9``).

Facts (paper and its public code ``bagnets/pytorchnet.py``, which the benchmark copies):

* A ResNet-50-like network (stem, then 3, 4, 6, 3 bottlenecks with BatchNorm and ReLU) in which
  every convolution is 1×1 except the stem's second convolution and the *first* bottleneck's
  middle convolution of each stage, which are 3×3 — all without padding. The stem is
  conv 1×1 (3→64) → conv 3×3 (64→64) → BN → ReLU, with no pooling. Stage strides are 2, 2, 2, 1
  (on the 3×3 convolution and the 1×1 shortcut); a shortcut longer than the branch output is
  cropped at the bottom/right.
* Hence each location of the last feature map sees exactly a 33×33 input window (receptive field
  3 + 2·(1 + 2 + 4 + 8) = 33 px) and neighbouring locations are 8 px apart: for an H×W input the
  map has h = ⌊(H − 33)/8⌋ + 1 rows (24 for 224), location (i, j) seeing rows 8i … 8i+32 and
  columns 8j … 8j+32.
* The classifier ``fc`` (a biased ``nn.Linear``) is applied to the spatially averaged features;
  being linear, that equals the average over locations of the *patch logits*
  p_ij = fc(f_ij) = W f_ij + b (:meth:`BagNet.patch_logits`): logit = mean_ij p_ij.
* Weights: He-normal (fan-out) convolutions, BN weights 1 and biases 0 (the stem BN has momentum
  0.001).

State-dict keys and shapes match the benchmark's (checked in ``tests/test_archs_benchmark.py``).
Input B×3×H×W ImageNet-normalised, H, W ≥ 33.
"""
from __future__ import annotations

import math

import torch
from torch import nn

STAGES = (3, 4, 6, 3)
STRIDES = (2, 2, 2, 1)
EXPANSION = 4


class BagNetBottleneck(nn.Module):
    """1×1 → k×k (stride here, no padding) → 1×1 with BN and ReLU; the shortcut (identity or 1×1
    strided conv + BN) is cropped at the bottom/right to the branch's size."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 kernel_size: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size, stride=stride, padding=0, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        shortcut = shortcut[:, :, :out.shape[2], :out.shape[3]]
        return torch.relu(out + shortcut)


class BagNet(nn.Module):
    """BagNet; ``width`` = stem width (64 published; smaller only for tests). ``kernel3[s]`` = 1
    makes stage s's first bottleneck 3×3 (BagNet-33: all four stages)."""

    def __init__(self, num_classes: int = 1000, stages: tuple[int, ...] = STAGES,
                 strides: tuple[int, ...] = STRIDES, kernel3: tuple[int, ...] = (1, 1, 1, 1), width: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, width, 1, bias=False)
        self.conv2 = nn.Conv2d(width, width, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=0.001)
        receptive_field, jump = 3, 1
        inplanes = width
        for i, (blocks, stride) in enumerate(zip(stages, strides)):
            planes = width * 2 ** i
            downsample = None
            if stride != 1 or inplanes != planes * EXPANSION:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(planes * EXPANSION))
            first_kernel = 3 if kernel3[i] else 1
            layer = [BagNetBottleneck(inplanes, planes, stride, downsample, first_kernel)]
            # the published rule: block j ≥ 1 is 3×3 only when j < kernel3[i] (never for BagNet-33)
            layer += [BagNetBottleneck(planes * EXPANSION, planes, kernel_size=1 if kernel3[i] <= j else 3)
                      for j in range(1, blocks)]
            inplanes = planes * EXPANSION
            for block in layer:
                receptive_field += (block.conv2.kernel_size[0] - 1) * jump
                jump *= block.conv2.stride[0]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(inplanes, num_classes)
        #: each patch logit sees a receptive_field × receptive_field window; windows are patch_stride apart
        self.receptive_field, self.patch_stride = receptive_field, jump
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """B×D×h×w local features, one per receptive_field-sized window."""
        x = torch.relu(self.bn1(self.conv2(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def patch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """B×C×h×w patch logits p_ij = W f_ij + b (bias included); their mean over (i, j) is the logit."""
        return torch.einsum("bdhw,cd->bchw", self.features(x), self.fc.weight) + self.fc.bias[None, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))

    def dense_patch_logits(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """B×H×W: at each pixel, the target's logit of the receptive_field-sized window centred
        there, the input being zero-padded by (receptive_field − 1)/2 on every side — the map of
        the BagNet code's ``generate_heatmap_pytorch`` (which runs the network on every window).

        Computed as patch_stride² passes over shifted copies of the padded input (a BagNet's
        output at (i, j) depends on its window alone, identically wherever the window lies), each
        giving every patch_stride-th pixel; ``x`` is the normalised network input.
        """
        _, _, height, width = x.shape
        half, step = (self.receptive_field - 1) // 2, self.patch_stride
        padded = nn.functional.pad(x, (half, half, half, half))
        weight = self.fc.weight[targets]  # B×D
        bias = self.fc.bias[targets]
        out = x.new_empty(x.shape[0], height, width)
        for dy in range(min(step, height)):
            for dx in range(min(step, width)):
                feats = self.features(padded[:, :, dy:, dx:])
                logits = torch.einsum("bdhw,bd->bhw", feats, weight) + bias[:, None, None]
                rows, cols = len(range(dy, height, step)), len(range(dx, width, step))
                out[:, dy::step, dx::step] = logits[:, :rows, :cols]
        return out


def bagnet33(num_classes: int = 1000, width: int = 64) -> BagNet:
    """The benchmark's ``bagnet33``: BagNet-33 (stages 3, 4, 6, 3; strides 2, 2, 2, 1)."""
    return BagNet(num_classes, STAGES, STRIDES, (1, 1, 1, 1), width)


def bagnet9(num_classes: int = 1000, width: int = 64) -> BagNet:
    """The benchmark's ``bagnet9`` (in its model list; no fine-tuned weights published): BagNet-9,
    3×3 first bottlenecks in stages 1 and 2 only (receptive field 3 + 2·(1 + 2) = 9 px)."""
    return BagNet(num_classes, STAGES, STRIDES, (1, 1, 0, 0), width)
