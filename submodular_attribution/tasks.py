"""Registry of per-task scripts by name (``--model`` of the baseline generator uses it)."""
from __future__ import annotations

import argparse
import importlib
from typing import Sequence

from .cli import TaskConfig

TASK_NAMES = ("shapes", "imagenet_clip", "imagenet_classifier", "cub", "quilt", "celeba", "vggface2")


def get_task(name: str) -> TaskConfig:
    if name not in TASK_NAMES:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    return importlib.import_module(f".smdl_explanation_{name}", __package__).TASK


def model_parser(argv: Sequence[str] | None, prog: str, description: str, group_title: str,
                 choices: Sequence[str] = TASK_NAMES, aliases: dict[str, str] | None = None):
    """A front end built on a task's command line: ``--model TASK`` picks the task whose model
    and data flags are accepted. Returns (parser, the group for the front end's own flags)."""
    from .cli import get_args_parser

    aliases = aliases or {}
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default=choices[0])
    chosen = pre.parse_known_args(argv)[0].model
    parser = get_args_parser(get_task(aliases.get(chosen, chosen) if chosen in (*choices, *aliases) else "shapes"))
    parser.prog = prog
    parser.description = description
    group = parser.add_argument_group(group_title)
    group.add_argument("--model", default=choices[0], choices=(*aliases, *choices),
                       help="model configuration (a task name)")
    return parser, group
