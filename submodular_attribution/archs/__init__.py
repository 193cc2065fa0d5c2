"""Architectures of "Benchmarking the Attribution Quality of Vision Models" (Hesse et al., NeurIPS
2024) that neither torchvision nor timm builds: ``fixup_resnet50``, ``x_resnet50``, ``x_vgg16``,
``bcos_resnet50``, ``bagnet33`` (and ``bcos_resnet18``, ``bagnet9`` of its model list) — one
module per family, names in :data:`REGISTRY`."""
from .bagnet import BagNet, bagnet9, bagnet33  # noqa: F401
from .bcos import BcosConv2d, BcosResNet, bcos_resnet18, bcos_resnet50  # noqa: F401
from .fixup import FixupResNet, fixup_resnet50  # noqa: F401
from .registry import REGISTRY, ArchSpec, build_arch  # noqa: F401
from .xdnn import XResNet, XVGG, x_resnet50, x_vgg16  # noqa: F401
