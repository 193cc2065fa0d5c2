"""The task registry: every task by name, one entry each (``python -m submodular_attribution <task>``).

A :class:`ModelTask` says how to build a scorer, at which input resolution, with which extra
flags, where its default weights and evaluation list are, and SMDL's published settings for it
(:class:`SMDLDefaults`: λ, division, region size, search, result folder). The SMDL command line
runs a task with those defaults (:func:`submodular_attribution.cli.get_smdl_task`); the baseline
map generator, the method benchmark and the error-analysis tools use the model part alone.
Adding a task is one entry here; a new model family is its adapter, a factory in ``families.py``
and one entry here.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .families import (ModelTask, SMDLDefaults, audio_model, classifier_model, clip_model, face_model,
                       imagebind_model, languagebind_model, shapes_model)

#: The published single-modal classifier λ (conf, eff, cons, colla) and the CLIP setting.
_CLASSIFIER_WEIGHTS = (0.01, 0.0, 20.0, 5.0)
_CLIP_WEIGHTS = (0.0, 0.05, 1.0, 1.0)
#: Aligned 112×112 faces: smaller SLICO regions with a stiffer ruler.
_FACE_REGIONS = {"region_size": 15, "division_options": {"slico": {"ruler": 40.0}}}


def _shapes() -> ModelTask:
    # 112×112 inputs with SLICO region size 16 give about 49 regions
    return replace(shapes_model(), smdl=SMDLDefaults(_CLASSIFIER_WEIGHTS, "shapes-cnn", region_size=16))


def _audio() -> ModelTask:
    return replace(audio_model(), smdl=SMDLDefaults(_CLASSIFIER_WEIGHTS, "audio-cnn", division="grid", region_size=10))


def _imagenet_clip() -> ModelTask:
    return clip_model(name="imagenet_clip", description="ImageNet, zero-shot CLIP (open_clip ViT-L-14)",
                      model_name="ViT-L-14", checkpoint="ViT-L-14.pt", class_set="imagenet",
                      smdl=SMDLDefaults(_CLIP_WEIGHTS, "imagenet-clip-vitl",
                                        weights_by_search={"bidirectional": (0.0, 0.05, 20.0, 1.0)}))


def _imagenet_classifier() -> ModelTask:
    from .class_names import imagenet_classes

    return classifier_model(name="imagenet_classifier", description="ImageNet, a torchvision or timm classifier",
                            arch="resnet101", checkpoint="resnet101-imagenet.pth", num_classes=1000,
                            class_names=imagenet_classes, smdl=SMDLDefaults(_CLASSIFIER_WEIGHTS, "imagenet-classifier"))


def _cub() -> ModelTask:
    from .class_names import cub_classes

    return classifier_model(name="cub", description="CUB-200-2011 birds, fine-tuned ResNet-101", arch="resnet101",
                            checkpoint="cub-resnet101.pth", num_classes=200, class_names=cub_classes,
                            uncertainty=True, smdl=SMDLDefaults((1.0, 1.0, 1.0, 1.0), "cub-resnet101"))


def _quilt() -> ModelTask:
    return clip_model(name="quilt", description="LC25000 lung histopathology, QuiltNet (open_clip ViT-B-32)",
                      model_name="ViT-B-32", checkpoint="QuiltNet-B-32.bin", class_set="lc25000_lung",
                      smdl=SMDLDefaults(_CLIP_WEIGHTS, "lc25000-quiltnet"))


def _celeba() -> ModelTask:
    return face_model(name="celeba", description="CelebA identities, IR-ResNet-100 on 112×112 faces",
                      checkpoint="celeba-iresnet100.pth", prototypes="celeba-prototypes.pt",
                      smdl=SMDLDefaults((1.0, 1.0, 1.0, 1.0), "celeba-iresnet100", **_FACE_REGIONS))


def _vggface2() -> ModelTask:
    return face_model(name="vggface2", description="VGGFace2 identities, IR-ResNet-100 on 112×112 faces",
                      checkpoint="vggface2-iresnet100.pth", prototypes="vggface2-prototypes.pt",
                      smdl=SMDLDefaults((1.0, 200.0, 10.0, 1.0), "vggface2-iresnet100", **_FACE_REGIONS))


def _imagenet_imagebind() -> ModelTask:
    return imagebind_model(name="imagenet_imagebind", modality="vision",
                           description="ImageNet, zero-shot ImageBind (imagebind_huge, vision)",
                           smdl=SMDLDefaults((0.01, 0.05, 20.0, 10.0), "imagenet-imagebind",
                                             weights_by_search={"bidirectional": (0.0, 1.0, 1.0, 10.0)}))


def _imagenet_languagebind() -> ModelTask:
    return languagebind_model(name="imagenet_languagebind", description="ImageNet, zero-shot LanguageBind (image tower)",
                              smdl=SMDLDefaults((1.0, 1.0, 1.0, 1.0), "imagenet-languagebind"))


def _vggsound_imagebind() -> ModelTask:
    return imagebind_model(name="vggsound_imagebind", modality="audio",
                           description="VGGSound sounds, zero-shot ImageBind (imagebind_huge, audio)",
                           smdl=SMDLDefaults((0.01, 0.05, 20.0, 5.0), "vggsound-imagebind", division="grid",
                                             region_size=20, search="bidirectional",
                                             search_options={"pending_samples": 12}))


# Name → factory; built on use so that listing names imports no model family.
MODEL_TASKS: dict[str, Callable[[], ModelTask]] = {
    "shapes": _shapes,
    "imagenet_clip": _imagenet_clip,
    "imagenet_classifier": _imagenet_classifier,
    "cub": _cub,
    "quilt": _quilt,
    "celeba": _celeba,
    "vggface2": _vggface2,
    "audio": _audio,
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
