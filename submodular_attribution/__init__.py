"""SMDL: submodular region attribution — the engine, model adapters and per-task scripts.

From Python::

    import submodular_attribution as smdl
    exp = smdl.explain(model, "cat.jpg", target=281, mean=smdl.IMAGENET_MEAN, std=smdl.IMAGENET_STD)
    exp.plot("cat_smdl.png"); print(exp.insertion_auc, exp.deletion_auc)

The names below are imported on first use, so importing a part of the package
(``submodular_attribution.common``, a task script's ``--help``) never loads the API, torch or
matplotlib through this file.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Explanation", "ExplanationFigure", "IMAGENET_MEAN", "IMAGENET_STD", "explain", "explain_many"]

_LAZY = {
    "explain": ".apps.explain",
    "explain_many": ".apps.explain",
    "Explanation": ".apps.explain",
    "ExplanationFigure": ".apps.explain",
    "IMAGENET_MEAN": ".common.images",
    "IMAGENET_STD": ".common.images",
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time, __getattr__ below
    from .apps.explain import Explanation, ExplanationFigure, explain, explain_many  # noqa: F401
    from .common.images import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
