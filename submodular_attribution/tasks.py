"""Models and their data, by name: what every front end with ``--model TASK`` can load.

A :class:`ModelTask` says how to build a scorer, at which input resolution, with which extra
flags, and where its default weights and evaluation list are. The SMDL scripts add their
method defaults on top (:class:`submodular_attribution.cli.SMDLTask`); the baseline map
generator, the method benchmark and the error-analysis tools use the model part alone.
"""
from __future__ import annotations

from typing import Callable

from .families import (ModelTask, audio_model, classifier_model, clip_model, face_model, imagebind_model,
                       languagebind_model, shapes_model)


def _imagenet_clip() -> ModelTask:
    return clip_model(name="imagenet_clip", description="ImageNet, zero-shot CLIP (open_clip ViT-L-14)",
                      model_name="ViT-L-14", checkpoint="ViT-L-14.pt", class_set="imagenet")


def _imagenet_classifier() -> ModelTask:
    from .class_names import imagenet_classes

    return classifier_model(name="imagenet_classifier", description="ImageNet, a torchvision or timm classifier",
                            arch="resnet101", checkpoint="resnet101-imagenet.pth", num_classes=1000,
                            class_names=imagenet_classes)


def _cub() -> ModelTask:
    from .class_names import cub_classes

    return classifier_model(name="cub", description="CUB-200-2011 birds, fine-tuned ResNet-101", arch="resnet101",
                            checkpoint="cub-resnet101.pth", num_classes=200, class_names=cub_classes,
                            uncertainty=True)


def _quilt() -> ModelTask:
    return clip_model(name="quilt", description="LC25000 lung histopathology, QuiltNet (open_clip ViT-B-32)",
                      model_name="ViT-B-32", checkpoint="QuiltNet-B-32.bin", class_set="lc25000_lung")


def _celeba() -> ModelTask:
    return face_model(name="celeba", description="CelebA identities, IR-ResNet-100 on 112×112 faces",
                      checkpoint="celeba-iresnet100.pth", prototypes="celeba-prototypes.pt")


def _vggface2() -> ModelTask:
    return face_model(name="vggface2", description="VGGFace2 identities, IR-ResNet-100 on 112×112 faces",
                      checkpoint="vggface2-iresnet100.pth", prototypes="vggface2-prototypes.pt")


def _imagenet_imagebind() -> ModelTask:
    return imagebind_model(name="imagenet_imagebind", modality="vision",
                           description="ImageNet, zero-shot ImageBind (imagebind_huge, vision)")


def _imagenet_languagebind() -> ModelTask:
    return languagebind_model(name="imagenet_languagebind", description="ImageNet, zero-shot LanguageBind (image tower)")


def _vggsound_imagebind() -> ModelTask:
    return imagebind_model(name="vggsound_imagebind", modality="audio",
                           description="VGGSound sounds, zero-shot ImageBind (imagebind_huge, audio)")


# Name → factory; built on use so that listing names imports no model family.
MODEL_TASKS: dict[str, Callable[[], ModelTask]] = {
    "shapes": shapes_model,
    "imagenet_clip": _imagenet_clip,
    "imagenet_classifier": _imagenet_classifier,
    "cub": _cub,
    "quilt": _quilt,
    "celeba": _celeba,
    "vggface2": _vggface2,
    "audio": audio_model,
    "imagenet_imagebind": _imagenet_imagebind,
    "imagenet_languagebind": _imagenet_languagebind,
    "vggsound_imagebind": _vggsound_imagebind,
}
TASK_NAMES: tuple[str, ...] = tuple(MODEL_TASKS)
ALIASES = {"default": "shapes"}


def get_model_task(name: str) -> ModelTask:
    name = ALIASES.get(name, name)
    if name not in MODEL_TASKS:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    return MODEL_TASKS[name]()
