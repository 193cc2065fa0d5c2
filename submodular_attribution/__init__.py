"""SMDL: submodular region attribution — the engine, model adapters and per-task scripts.

From Python::

    import submodular_attribution as smdl
    exp = smdl.explain(model, "cat.jpg", target=281, mean=smdl.IMAGENET_MEAN, std=smdl.IMAGENET_STD)
    exp.plot("cat_smdl.png"); print(exp.insertion_auc, exp.deletion_auc)

Beside the API: ``read_eval_list`` (the command line's ``<path> <class index>`` lists),
``get_class_set`` and ``build_clip_scorer`` (class names and prompt templates; a zero-shot CLIP
scorer, which ``explain`` takes as a model; ``build_imagebind_scorer`` and ``build_languagebind_scorer``
build ImageBind's and LanguageBind's from their weights), and Segment Anything divisions to pass as
``division=``: ``load_sam``, ``build_mask_generator``, ``sam_label_map`` (and ``build_tiny_sam``, a
random-initialised stand-in for smoke runs).

The names below are imported on first use, so importing a part of the package
(``submodular_attribution.common``, a task script's ``--help``) never loads the API, torch or
matplotlib through this file.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "explain": ".apps.explain",
    "explain_many": ".apps.explain",
    "Explanation": ".apps.explain",
    "ExplanationFigure": ".apps.explain",
    "IMAGENET_MEAN": ".common.images",
    "IMAGENET_STD": ".common.images",
    "read_eval_list": ".common.lists",
    "get_class_set": ".class_names",
    "build_clip_scorer": ".adapters.clip",
    "build_imagebind_scorer": ".adapters.imagebind",
    "build_languagebind_scorer": ".adapters.languagebind",
    "load_sam": ".regions.sam",
    "build_mask_generator": ".regions.sam",
    "sam_label_map": ".regions.sam",
    "build_tiny_sam": ".regions.sam",
}
__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time, __getattr__ below
    from .adapters.clip import build_clip_scorer  # noqa: F401
    from .adapters.imagebind import build_imagebind_scorer  # noqa: F401
    from .adapters.languagebind import build_languagebind_scorer  # noqa: F401
    from .apps.explain import Explanation, ExplanationFigure, explain, explain_many  # noqa: F401
    from .class_names import get_class_set  # noqa: F401
    from .common.images import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401
    from .common.lists import read_eval_list  # noqa: F401
    from .regions.sam import build_mask_generator, build_tiny_sam, load_sam, sam_label_map  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
