"""Task factories per model family: the flags and scorer builder shared by per-task scripts.

A per-task script is one call to one of these with that experiment's defaults, so the
scripts stay configurations rather than near-copies.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .cli import TaskConfig
from .data import InputError
from .objective import Weights
from .results import REPO_ROOT

CKPT = REPO_ROOT / "ckpt"
RESULTS = REPO_ROOT / "submodular_results"


def _read_class_names(path: str) -> list[str]:
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise InputError(f"{path}: cannot read class names ({err.strerror})") from None
    if not names:
        raise InputError(f"{path}: no class names")
    return names


def clip_task(*, name: str, description: str, model_name: str, checkpoint: str, class_set: str,
              weights: Weights, save_dir: str, weights_by_search: dict | None = None,
              input_size: int = 224, region_size: int = 30) -> TaskConfig:
    """Zero-shot CLIP-family model through open_clip; effectiveness uses image embeddings."""

    def add_arguments(group: argparse._ArgumentGroup) -> None:
        from .class_names import CLASS_SETS

        group.add_argument("--model-name", default=model_name, help="open_clip architecture (ViT-L-14, ViT-B-32, RN101, ...)")
        group.add_argument("--class-set", default=class_set, choices=sorted(CLASS_SETS),
                           help="class names and prompt templates of the zero-shot head")
        group.add_argument("--class-names", default=None,
                           help="file with one class name per line, instead of --class-set's names")
        group.add_argument("--semantic-cache", default=str(CKPT / "semantic_features"),
                           help="where text prototypes are cached")

    def build(args: argparse.Namespace, device: torch.device):
        from .adapters.clip import build_clip_scorer
        from .class_names import CLASS_SETS

        classes_of, templates_of = CLASS_SETS[args.class_set]
        classes = _read_class_names(args.class_names) if args.class_names else list(classes_of())
        return build_clip_scorer(args.model_name, args.checkpoint, (classes, list(templates_of())), device=device,
                                 cache_dir=args.semantic_cache)

    return TaskConfig(name=name, description=description, build_scorer=build, input_size=(input_size, input_size),
                      region_size=region_size, weights=weights, weights_by_search=weights_by_search or {},
                      save_dir=str(RESULTS / save_dir), checkpoint=str(CKPT / checkpoint), add_arguments=add_arguments)


def classifier_task(*, name: str, description: str, arch: str, checkpoint: str, num_classes: int,
                    weights: Weights, save_dir: str, input_size: int = 224, region_size: int = 30) -> TaskConfig:
    """A single-modal classifier (torchvision or ``timm:`` name); embeddings only when λ2 ≠ 0."""

    def add_arguments(group: argparse._ArgumentGroup) -> None:
        group.add_argument("--arch", default=arch, help="torchvision name (resnet101, vit_b_16, ...) or timm:<name>")
        group.add_argument("--num-classes", type=int, default=num_classes, help="classes of the checkpoint's head")

    def build(args: argparse.Namespace, device: torch.device):
        from .adapters.classifier import build_classifier_scorer

        return build_classifier_scorer(args.arch, args.checkpoint, args.num_classes, device=device,
                                       with_embeddings=args.lambda2 != 0, input_size=tuple(args.input_size))

    return TaskConfig(name=name, description=description, build_scorer=build, input_size=(input_size, input_size),
                      region_size=region_size, weights=weights, save_dir=str(RESULTS / save_dir),
                      checkpoint=str(CKPT / checkpoint), add_arguments=add_arguments)


def face_task(*, name: str, description: str, checkpoint: str, prototypes: str | None, weights: Weights,
              save_dir: str, arch: str = "iresnet100", uncertainty_head: str | None = None) -> TaskConfig:
    """Face recognition on 112×112 aligned faces: IR-ResNet + identity prototypes or a head."""

    def add_arguments(group: argparse._ArgumentGroup) -> None:
        group.add_argument("--arch", default=arch, help="iresnet18/34/50/100")
        group.add_argument("--prototypes", default=str(CKPT / prototypes) if prototypes else None,
                           help="C×512 identity prototypes (tensor file)")
        group.add_argument("--head", default=None, help="classification head weights instead of prototypes")
        group.add_argument("--uncertainty-head", default=str(CKPT / uncertainty_head) if uncertainty_head else None,
                           help="evidential (EDL) head weights; enables the EDL confidence term")

    def build(args: argparse.Namespace, device: torch.device):
        from .adapters.face import build_face_scorer

        return build_face_scorer(args.arch, args.checkpoint, prototypes=None if args.head else args.prototypes,
                                 head=args.head, uncertainty_head=args.uncertainty_head, device=device)

    # Published face division: SLICO region size 15, ruler 40 at 112×112 (≈49 regions).
    return TaskConfig(name=name, description=description, build_scorer=build, input_size=(112, 112),
                      region_size=15, division_options={"slico": {"ruler": 40.0}}, weights=weights,
                      save_dir=str(RESULTS / save_dir), checkpoint=str(CKPT / checkpoint), add_arguments=add_arguments)
