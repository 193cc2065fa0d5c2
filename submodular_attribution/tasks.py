"""Registry of per-task scripts by name (``--model`` of the baseline generator uses it)."""
from __future__ import annotations

import importlib

from .cli import TaskConfig

TASK_NAMES = ("shapes", "imagenet_clip", "imagenet_classifier", "cub", "quilt", "celeba", "vggface2")


def get_task(name: str) -> TaskConfig:
    if name not in TASK_NAMES:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    return importlib.import_module(f".smdl_explanation_{name}", __package__).TASK
