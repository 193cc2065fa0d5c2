"""B-cos ResNet-50 — the benchmark's ``bcos_resnet50`` (and ``bcos_resnet18``, basic blocks).

The benchmark (Hesse et al., NeurIPS 2024) uses the B-cos v2 ResNet-50 (Böhle, Singh, Fritz &
Schiele, "B-cos Alignment for Inherently Interpretable CNNs and Vision Transformers", TPAMI 2024;
the successor of Böhle, Fritz & Schiele, "B-cos Networks", CVPR 2022), in the single-file form of
its ``models/bcos_v2/bcos_resnet.py``. Facts, all reproduced here:

* **B-cos convolution** (:class:`BcosConv2d`, B = 2, no bias, no MaxOut): with the weights
  normalised to unit L2 norm per output channel (ŵ = w/‖w‖) and, at each output position, the
  input patch x_p (all input channels of the kernel window, per group),
  ``out = |ŵᵀx_p| / ‖x_p‖ · ŵᵀx_p`` where ‖x_p‖ = sqrt(Σ x_p² + 1e−6), i.e.
  out = |cos(ŵ, x_p)|^(B−1) · ŵᵀx_p. Writing s(x) = |ŵᵀx_p| / ‖x_p‖ (the *dynamic scaling*),
  out = W(x) x with W(x) = s(x) ŵᵀ: a dynamic linear map.
* **Explanation mode** (:meth:`BcosResNet.explanation_mode`): s(x) is detached from the graph, so
  the gradient of an output w.r.t. the input *is* W(x) and, the network having no biases,
  output − logit bias = Σ W(x) ⊙ x exactly.
* **Normalisation inside the layers**: :class:`UncenteredBatchNorm2d` divides by
  sqrt(running_var + eps) and multiplies by ``weight``; it subtracts no mean and adds no bias
  (state-dict keys ``weight``, ``running_mean`` — kept for the key layout, unused —,
  ``running_var``, ``num_batches_tracked``). In eval mode it is linear.
* **Input**: six channels [r, g, b, 1−r, 1−g, 1−b] of an RGB image in [0, 1], unnormalised
  (:class:`AddInverse`, run inside :meth:`BcosResNet.forward`, so the net takes the 3-channel
  image; :meth:`BcosResNet.forward_encoded` takes the six channels).
* **Layout**: ResNet-50 (3, 4, 6, 3 bottlenecks) with every conv a B-cos conv and no ReLU; the
  stem is conv 7×7/2 → BN → 3×3/2 *average* pooling (padding 1); shortcuts are 1×1 B-cos conv →
  BN (``downsample.0``/``downsample.1``); the classifier ``fc`` is a 1×1 B-cos conv applied to
  the last feature map *before* global average pooling; logits = pooled fc output + the fixed
  logit bias log(1/(C−1)) (not a parameter).
* Initialisation: He-normal (fan-out) convolutions, BN weights 1.

Parameter names and shapes match the benchmark's state dict key for key (checked in
``tests/test_archs_benchmark.py``); original B-cos v2 weights that name the weight
``linear.weight`` load too.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import InputError

STAGES = (3, 4, 6, 3)
EXPANSION = 4
B = 2.0
PATCH_EPS = 1e-6  # added to the squared patch norm before the square root, as the benchmark's code


class AddInverse(nn.Module):
    """B×3×H×W RGB in [0, 1] → B×6×H×W [r, g, b, 1−r, 1−g, 1−b]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, 1 - x], dim=1)


class BcosConv2d(nn.Conv2d):
    """B-cos convolution (B = 2, bias-free, unit-norm weights): see the module docstring."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=False)
        self.detach = False  # explanation mode: the dynamic scaling carries no gradient

    def patch_norms(self, x: torch.Tensor) -> torch.Tensor:
        """B×O×h×w: ‖x_p‖ = sqrt(Σ over the window and the output's input group of x² + 1e−6)."""
        squares = x ** 2
        if self.groups == 1:
            squares = squares.sum(1, keepdim=True)
        else:
            squares = squares.unflatten(1, (self.groups, -1)).sum(2)
        # divisor_override=1 turns the average into a sum over the window (zero padding included)
        sums = F.avg_pool2d(squares, self.kernel_size, stride=self.stride, padding=self.padding,
                            divisor_override=1)
        norms = (sums + PATCH_EPS).sqrt()
        if self.groups > 1:
            norms = norms.repeat_interleave(self.out_channels // self.groups, dim=1)
        return norms

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """ŵᵀx_p at every position: the convolution with unit-norm weights."""
        return self._conv_forward(x, F.normalize(self.weight, dim=(1, 2, 3)), None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        norms = self.patch_norms(x)
        scale = out / norms
        if self.detach:
            scale = scale.detach()
        return scale.abs() * out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # original B-cos v2 checkpoints keep the weight in a ``linear`` submodule
        if prefix + "linear.weight" in state_dict:
            state_dict[prefix + "weight"] = state_dict.pop(prefix + "linear.weight")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class UncenteredBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm without centring and without bias: x · weight / sqrt(var + eps) (eval: the
    running variance; training: the batch variance, which also updates the running one)."""

    def __init__(self, num_features: int):
        super().__init__(num_features)
        self.bias = None  # removes the parameter: no ``bias`` key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            var = x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            var = self.running_var
        return x * (self.weight / (var + self.eps).sqrt())[None, :, None, None]


class BcosBottleneck(nn.Module):
    """1×1 → 3×3 (stride here) → 1×1 B-cos convolutions, each followed by uncentred BN; the
    residual sum has no activation (B-cos layers are the non-linearity)."""

    expansion = EXPANSION

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = BcosConv2d(inplanes, planes, 1)
        self.bn1 = UncenteredBatchNorm2d(planes)
        self.conv2 = BcosConv2d(planes, planes, 3, stride=stride, padding=1)
        self.bn2 = UncenteredBatchNorm2d(planes)
        self.conv3 = BcosConv2d(planes, planes * EXPANSION, 1)
        self.bn3 = UncenteredBatchNorm2d(planes * EXPANSION)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv3(self.bn2(self.conv2(self.bn1(self.conv1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class BcosBasicBlock(nn.Module):
    """Two 3×3 B-cos convolutions (stride on the first), each followed by uncentred BN, plus the
    shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = BcosConv2d(inplanes, planes, 3, stride=stride, padding=1)
        self.bn1 = UncenteredBatchNorm2d(planes)
        self.conv2 = BcosConv2d(planes, planes, 3, padding=1)
        self.bn2 = UncenteredBatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        return out + (x if self.downsample is None else self.downsample(x))


class BcosResNet(nn.Module):
    """B-cos ResNet; ``width`` = stem width (64 published; smaller only for tests); ``block``:
    :class:`BcosBottleneck` (ResNet-50) or :class:`BcosBasicBlock` (ResNet-18).

    ``forward``: B×3×H×W RGB in [0, 1] (unnormalised), H, W ≥ 32 → B×C logits.
    """

    def __init__(self, num_classes: int = 1000, stages: tuple[int, ...] = STAGES, width: int = 64,
                 block: type[nn.Module] | None = None):
        super().__init__()
        if num_classes < 2:
            raise InputError(f"B-cos ResNet: needs at least 2 classes (logit bias log(1/(C−1))), got {num_classes}")
        block = block or BcosBottleneck
        expansion = block.expansion
        self.num_classes = num_classes
        self.add_inverse = AddInverse()
        self.conv1 = BcosConv2d(6, width, 7, stride=2, padding=3)
        self.bn1 = UncenteredBatchNorm2d(width)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        inplanes = width
        for i, blocks in enumerate(stages):
            planes = width * 2 ** i
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * expansion:
                downsample = nn.Sequential(BcosConv2d(inplanes, planes * expansion, 1, stride=stride),
                                           UncenteredBatchNorm2d(planes * expansion))
            layer = [block(inplanes, planes, stride, downsample)]
            inplanes = planes * expansion
            layer += [block(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.num_features = inplanes
        self.fc = BcosConv2d(inplanes, num_classes, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.logit_bias = math.log(1.0 / (num_classes - 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)

    def features(self, x6: torch.Tensor) -> torch.Tensor:
        """The last feature map (B×num_features×h×w) of a six-channel input."""
        x = self.pool(self.bn1(self.conv1(x6)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_encoded(self, x6: torch.Tensor) -> torch.Tensor:
        """B×C logits of a six-channel input [r, g, b, 1−r, 1−g, 1−b]."""
        return self.avgpool(self.fc(self.features(x6))).flatten(1) + self.logit_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise ValueError(f"B-cos ResNet takes B×3×H×W RGB in [0, 1], got {tuple(x.shape)}")
        return self.forward_encoded(self.add_inverse(x))

    @contextlib.contextmanager
    def explanation_mode(self) -> Iterator[None]:
        """Within the block, every B-cos conv detaches its dynamic scaling (restored after)."""
        convs = [m for m in self.modules() if isinstance(m, BcosConv2d)]
        before = [m.detach for m in convs]
        for m in convs:
            m.detach = True
        try:
            yield
        finally:
            for m, state in zip(convs, before):
                m.detach = state


def bcos_resnet50(num_classes: int = 1000, width: int = 64) -> BcosResNet:
    """The benchmark's ``bcos_resnet50``: B-cos v2 ResNet-50 (stages 3, 4, 6, 3)."""
    return BcosResNet(num_classes, STAGES, width)


def bcos_resnet18(num_classes: int = 1000, width: int = 64) -> BcosResNet:
    """The benchmark's ``bcos_resnet18`` (in its model list; no fine-tuned weights published):
    B-cos v2 ResNet-18 (basic blocks, stages 2, 2, 2, 2)."""
    return BcosResNet(num_classes, (2, 2, 2, 2), width, BcosBasicBlock)
