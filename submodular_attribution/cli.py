"""The command-line front end shared by every ``smdl_explanation_<task>`` script.

A task is a :class:`TaskConfig`: its defaults (input size, region size, λ, result
folder) and how to build its scorer. Flags default to ``None`` so the task config
stays the single source of truth; ``resolve_defaults`` fills them in.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .data import InputError, ListItem, load_image_rgb, read_eval_list, run_reporting_input_errors, select_range
from .distributed import Worker, current_worker, shard, worker_device
from .divisions import DIVISIONS, RegionDivider
from .models import Scorer, resolve_device
from .objective import POSITIONAL_ORDER, Weights
from .results import build_record, is_finished, run_folder_name, save_result, write_provenance
from .search import SEARCHES, explain


@dataclass(frozen=True)
class TaskConfig:
    """Defaults of one experiment and how to build its model."""

    name: str
    description: str
    build_scorer: Callable[[argparse.Namespace, torch.device], Scorer]
    input_size: tuple[int, int]
    region_size: int
    weights: Weights
    save_dir: str
    eval_list: str | None = None
    division: str = "slico"
    division_options: dict = field(default_factory=dict)  # per division, e.g. {"slico": {"ruler": 40.0}}
    # Published λ per search where they differ from ``weights`` (e.g. CLIP bidirectional).
    weights_by_search: dict = field(default_factory=dict)
    # Adds the task's own flags (model name, class set, heads) to the parser.
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    batch_size: int = 64
    checkpoint: str | None = None
    # Called before the list is read, e.g. to generate the default benchmark's images.
    prepare: Callable[[argparse.Namespace], None] | None = None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except ``None`` ones (filled from the task config and named in the help)."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def get_args_parser(task: TaskConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m submodular_attribution.smdl_explanation_{task.name}",
        description=task.description,
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--eval-list", default=None,
                      help=f"lines '<relative path> <class index>' (default: {task.eval_list})")
    data.add_argument("--datasets", default=None, help="image root the list's paths are relative to "
                      "(default: the list's folder)")
    data.add_argument("--begin", type=int, default=0, help="first list item (0-based)")
    data.add_argument("--end", type=int, default=-1, help="stop before this item; -1 = through the last line")
    data.add_argument("--target", choices=("label", "prediction"), default="label",
                      help="explain the list's class, or the model's prediction on the full image")

    regions = parser.add_argument_group("regions")
    regions.add_argument("--division", "--superpixel-algorithm", dest="division", choices=DIVISIONS, default=None,
                         help=f"how the image is split into regions (default: {task.division})")
    regions.add_argument("--region-size", type=int, default=None,
                         help=f"superpixel/grid cell size in pixels at the model's input resolution "
                              f"(default: {task.region_size})")
    regions.add_argument("--sam-masks", default=None,
                         help="--division sam: folder of label maps made by SAM_mask_generate.py")
    regions.add_argument("--sam-checkpoint", default=None,
                         help="--division sam: run SAM inline with these weights instead")
    regions.add_argument("--sam-model-type", default="vit_h", help="SAM architecture of --sam-checkpoint")
    regions.add_argument("--prior-dir", default=None,
                         help="--division prior: saliency maps made by baseline_attribution.generate_explanation_maps")
    regions.add_argument("--grid", type=int, default=10, help="--division prior: g×g cells (CUB 10, CelebA 14 or 28)")
    regions.add_argument("--per-region", type=int, default=4, help="--division prior: cells per region (4, or 8 at 28×28)")

    objective = parser.add_argument_group(
        "objective weights", "named, or positional as in the original CLI: "
        "λ1 confidence, λ2 effectiveness, λ3 consistency, λ4 collaboration")
    defaults = task.weights.positional()
    for i, name in enumerate(POSITIONAL_ORDER):
        objective.add_argument(f"--{name}-weight", f"--lambda{i + 1}", dest=f"lambda{i + 1}", type=float,
                               default=None, metavar="W", help=f"default: {defaults[i]}")

    search = parser.add_argument_group("search")
    search.add_argument("--search", choices=SEARCHES, default="greedy",
                        help="greedy: exact; bidirectional: LIMA (≈1.5× fewer forwards); random: control ordering")
    search.add_argument("--pending-samples", type=int, default=8,
                        help="bidirectional search: candidates re-scored exactly in each backward step")

    run = parser.add_argument_group("run")
    run.add_argument("--save-dir", default=None, help=f"results root (default: {task.save_dir})")
    run.add_argument("--checkpoint", default=None, help=f"model weights (default: {task.checkpoint})")
    run.add_argument("--input-size", type=int, nargs="+", metavar="SIZE", default=None,
                     help=f"model input resolution, H W or one side for square; images are resized to it and divided there "
                          f"(default: {task.input_size[0]} {task.input_size[1]})")
    run.add_argument("--device", default="auto", help="auto (one GPU per torchrun rank), cpu, cuda, cuda:1, ...")
    run.add_argument("--batch-size", type=int, default=None,
                     help=f"images per forward pass (default: {task.batch_size})")
    run.add_argument("--seed", type=int, default=0, help="seeds torch and the random-ordering control")
    if task.add_arguments is not None:
        task.add_arguments(parser.add_argument_group("model"))
    return parser


def resolve_defaults(task: TaskConfig, args: argparse.Namespace) -> argparse.Namespace:
    """Fill ``None`` flags from the task config and validate the numbers."""
    weights = task.weights_by_search.get(args.search, task.weights)
    defaults = {"eval_list": task.eval_list, "division": task.division,
                "region_size": task.region_size, "save_dir": task.save_dir, "checkpoint": task.checkpoint,
                "batch_size": task.batch_size, "input_size": list(task.input_size),
                **{f"lambda{i + 1}": value for i, value in enumerate(weights.positional())}}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.eval_list is None:
        raise InputError("--eval-list is required for this task")
    if len(args.input_size) == 1:
        args.input_size = args.input_size * 2
    if len(args.input_size) != 2 or min(args.input_size) < 1:
        raise InputError(f"--input-size takes H W or one positive side, got {' '.join(map(str, args.input_size))}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    if args.region_size < 1:
        raise InputError(f"--region-size must be ≥ 1, got {args.region_size}")
    if args.pending_samples < 1:
        raise InputError(f"--pending-samples must be ≥ 1, got {args.pending_samples}")
    return args


def _check_items(items: list[ListItem], root: Path, list_path: str, num_classes: int | None = None) -> None:
    seen: dict[tuple[int, str], int] = {}
    for item in items:
        if not (root / item.path).is_file():
            raise InputError(f"{root / item.path}: image not found (line {item.line} of {list_path})")
        if num_classes is not None and not 0 <= item.label < num_classes:
            raise InputError(f"{list_path}:{item.line}: class index {item.label} is outside 0..{num_classes - 1}")
        key = (item.label, item.stem)
        if key in seen:  # both would write json/<class>/<stem>.json
            raise InputError(f"{list_path}:{item.line}: same class and file name as line {seen[key]} "
                             f"({item.label}/{item.stem}); results would collide")
        seen[key] = item.line


@dataclass
class Prepared:
    """A validated run: this worker's list items, their image root, the model."""

    items: list[ListItem]
    root: Path
    scorer: Scorer
    worker: Worker


def prepare(task: TaskConfig, args: argparse.Namespace) -> Prepared:
    """Resolve defaults, read and check the list, take this rank's share, build the scorer."""
    args = resolve_defaults(task, args)
    if task.prepare is not None:
        task.prepare(args)
    torch.manual_seed(args.seed)
    items = select_range(read_eval_list(args.eval_list), args.begin, args.end)
    root = Path(args.datasets) if args.datasets else Path(args.eval_list).parent
    _check_items(items, root, args.eval_list)
    worker = current_worker()
    items = shard(items, worker)  # by position, before skipping finished ones: disjoint across ranks
    device = args.resolved_device = resolve_device(worker_device(args.device, worker))
    scorer = task.build_scorer(args, device)
    _check_items(items, root, args.eval_list, scorer.num_classes)
    return Prepared(items, root, scorer, worker)


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB → 3×H×W float in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255)


def run(task: TaskConfig, args: argparse.Namespace) -> Path:
    """Explain every selected list item; skip those already finished. Returns the run folder."""
    args = resolve_defaults(task, args)
    divider = RegionDivider(args, task.division_options.get(args.division, {}))  # flags checked before loading
    ready = prepare(task, args)
    items, root, scorer, worker = ready.items, ready.root, ready.scorer, ready.worker

    weights = Weights.from_positional(args.lambda1, args.lambda2, args.lambda3, args.lambda4)
    run_dir = Path(args.save_dir) / run_folder_name(args.division, weights, args.search, args.pending_samples, args.seed)
    write_provenance(run_dir, {**vars(args), "task": task.name, "rank": worker.rank, "world_size": worker.world_size})

    todo = [item for item in items if not is_finished(run_dir, str(item.label), item.stem)]
    where = f" (rank {worker.rank} of {worker.world_size})" if worker.world_size > 1 else ""
    print(f"{run_dir}{where}: {len(items) - len(todo)} of {len(items)} images already done", file=sys.stderr)
    forwards = []
    for item in tqdm(todo, desc=f"{task.name} {args.search}", unit="img", disable=None if worker.is_main else True):
        image = load_image_rgb(root / item.path, tuple(args.input_size))
        labels = divider(image, item)
        trace = explain(
            scorer, image_tensor(image), torch.from_numpy(labels), None if args.target == "prediction" else item.label,
            weights, search=args.search, pending_samples=args.pending_samples, batch_size=args.batch_size,
            seed=zlib.crc32(f"{args.seed}:{item.path}".encode()),  # per image, independent of sharding
        )
        record, ranks = build_record(
            trace, labels, weights, image=item.path, class_name=str(item.label), division=divider.describe(),
            search=args.search, pending_samples=args.pending_samples if args.search == "bidirectional" else None)
        save_result(run_dir, str(item.label), item.stem, record, ranks)
        forwards.append(trace.forward_passes)
    if forwards:
        print(f"{run_dir}: explained {len(forwards)} images, {np.mean(forwards):.0f} forward passes per image",
              file=sys.stderr)
    return run_dir


def main(task: TaskConfig, argv: Sequence[str] | None = None) -> int:
    args = get_args_parser(task).parse_args(argv)
    return run_reporting_input_errors(lambda: run(task, args))
