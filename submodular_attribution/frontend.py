"""The flags every front end shares, and turning them into a checked run.

:func:`base_parser` holds the data, model and run flags common to the SMDL scripts, the
baseline map generator, the method benchmark and the error-analysis tools, with each task's
true defaults in ``--help``. Method flags (SMDL's regions, weights and search; a baseline's
``--method``) are added only by the front ends that use them. :func:`plan_run` reads and checks
the list and takes this rank's share, once; :func:`build_scorer` then builds the model
(:func:`prepare` does both).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .common.checks import check_int, flag_errors
from .common.distributed import Worker, current_worker, shard, worker_device
from .common.errors import InputError
from .common.lists import ListItem, check_items, read_eval_list, select_range, skip_repeated_lines
from .models import Scorer, resolve_device
from .tasks import ALIASES, TASK_NAMES, ModelTask, get_model_task


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except ``None`` ones (whose help says what happens instead)."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_data_arguments(parser: argparse.ArgumentParser, eval_list: str | None = None, target: bool = True,
                       list_aliases: tuple[str, ...] = (), root_aliases: tuple[str, ...] = ()) -> None:
    """The data group: the list, its image root, the ``--begin/--end`` slice, the target rule.
    ``--Datasets`` (and ``*_aliases``) are the original code's names of the same flags."""
    data = parser.add_argument_group("data")
    data.add_argument("--eval-list", *list_aliases, dest="eval_list", default=eval_list,
                      help="lines '<relative path> <class index>'")
    data.add_argument("--datasets", "--Datasets", *root_aliases, dest="datasets", default=None, help="image root the list's paths are relative to "
                      "(default: the list's folder)")
    data.add_argument("--begin", type=int, default=0, help="first list item (0-based)")
    data.add_argument("--end", type=int, default=-1, help="stop before this item; -1 = through the last line")
    if target:
        data.add_argument("--target", choices=("label", "prediction"), default="label",
                          help="explain the list's class, or the model's prediction on the full image")


def add_output_arguments(group: argparse._ArgumentGroup, save_dir_help: str) -> None:
    """``--save-dir`` and ``--strict``, for front ends that write one output per list item."""
    group.add_argument("--save-dir", default=None, help=save_dir_help)
    group.add_argument("--strict", action="store_true", help="stop at the first item that fails, instead of "
                       "recording it in failures.jsonl and going on")


def base_parser(task: ModelTask, prog: str, description: str,
                save_dir_help: str | None = None) -> argparse.ArgumentParser:
    """A parser with the data, model and run groups for ``task``; returns it for the caller's
    own groups. Front ends that write per-item outputs pass ``save_dir_help`` (what
    ``--save-dir`` defaults to) and get ``--save-dir`` and ``--strict``."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    add_data_arguments(parser, task.default_eval_list())

    model = parser.add_argument_group("model")
    model.add_argument("--checkpoint", default=task.default_checkpoint(), help="model weights")
    model.add_argument("--input-size", type=int, nargs="+", metavar="SIZE", default=list(task.input_size),
                       help="model input resolution, H W or one side for a square; images are resized to it")
    if task.add_arguments is not None:
        task.add_arguments(model)

    run = parser.add_argument_group("run")
    if save_dir_help is not None:
        add_output_arguments(run, save_dir_help)
    run.add_argument("--device", default="auto", help="auto (one GPU per torchrun rank), cpu, cuda, cuda:1, ...")
    run.add_argument("--batch-size", type=int, default=task.batch_size, help="images per forward pass")
    run.add_argument("--seed", type=int, default=0, help="seeds torch and every random choice")
    return parser


def chosen_task(argv: Sequence[str] | None, choices: Sequence[str] = TASK_NAMES) -> ModelTask:
    """The task named by ``--model`` in ``argv`` (the first choice when absent or unknown, so that
    ``--help`` still works and argparse reports the bad name)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default=choices[0])
    name = pre.parse_known_args(argv)[0].model
    known = (*choices, *ALIASES)
    return get_model_task(name if name in known else choices[0])


def model_parser(argv: Sequence[str] | None, prog: str, description: str, save_dir_help: str | None = None,
                 choices: Sequence[str] = TASK_NAMES) -> argparse.ArgumentParser:
    """:func:`base_parser` for the task picked by ``--model TASK`` (its model flags accepted too)."""
    task = chosen_task(argv, choices)
    parser = base_parser(task, prog, description, save_dir_help)
    parser.add_argument("--model", default=choices[0], choices=(*ALIASES, *choices),
                        help="model configuration (a task name; 'default' is the embedded shapes task)")
    return parser


def input_size(values: Sequence[int]) -> tuple[int, int]:
    """``--input-size`` as (H, W): two sides, or one for a square."""
    values = list(values)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise InputError(f"--input-size takes H W or one positive side, got {' '.join(map(str, values))}")
    return values[0], values[1]


def check_common(args: argparse.Namespace) -> argparse.Namespace:
    """Validate the shared flags once; ``--input-size`` becomes [H, W]."""
    if args.eval_list is None:
        raise InputError("--eval-list is required for this task")
    args.input_size = list(input_size(args.input_size))
    with flag_errors():
        check_int("--batch-size", args.batch_size, 1)
    return args


@dataclass
class Plan:
    """What a run needs before its model: this worker's list items, their image root, the worker
    and its device (:func:`plan_run`, made once)."""

    items: list[ListItem]
    root: Path
    worker: Worker
    device: torch.device


@dataclass
class Prepared(Plan):
    """A :class:`Plan` with its model built."""

    scorer: Scorer | None = None


def read_items(args: argparse.Namespace, show: bool = True) -> tuple[list[ListItem], Path]:
    """The ``--begin/--end`` slice of the list, its repeated lines skipped (with a note when
    ``show``), and the image root; list errors stop here."""
    items = skip_repeated_lines(select_range(read_eval_list(args.eval_list), args.begin, args.end),
                                args.eval_list, show=show)
    check_items(items, args.eval_list)
    root = Path(args.datasets) if args.datasets else Path(args.eval_list).parent
    return items, root


def run_device(args: argparse.Namespace, worker: Worker) -> torch.device:
    return resolve_device(worker_device(args.device, worker))


def plan_run(task: ModelTask, args: argparse.Namespace) -> Plan:
    """The cheap part of a run, once: check the flags, let the task prepare (e.g. write its default
    set), read and check the list, take this rank's share, choose the device."""
    check_common(args)
    if task.prepare is not None:
        task.prepare(args)
    torch.manual_seed(args.seed)
    worker = current_worker()
    items, root = read_items(args, show=worker.is_main)
    items = shard(items, worker)  # by position, before skipping finished ones: disjoint across ranks
    return Plan(items, root, worker, run_device(args, worker))


def build_scorer(task: ModelTask, args: argparse.Namespace, plan: Plan, embeddings: bool = False) -> Scorer:
    """The task's scorer on the plan's device; list labels beyond its classes stop here."""
    scorer = task.build_scorer(args, plan.device, embeddings)
    check_items(plan.items, args.eval_list, scorer.num_classes)
    return scorer


def prepare(task: ModelTask, args: argparse.Namespace, embeddings: bool = False) -> Prepared:
    """:func:`plan_run` then :func:`build_scorer`, for front ends with nothing to check in between."""
    planned = plan_run(task, args)
    return Prepared(planned.items, planned.root, planned.worker, planned.device,
                    build_scorer(task, args, planned, embeddings))
