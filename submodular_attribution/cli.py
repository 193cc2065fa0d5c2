"""The command line shared by every ``smdl_explanation_<task>`` script.

A script is an :class:`SMDLTask`: a model task (``tasks.py``) plus the published SMDL
defaults for it (regions, λ, result folder). The shared data/model/run flags come from
:func:`submodular_attribution.frontend.base_parser`; this module adds the SMDL-only ones.
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

from .common import paths
from .common.atomic import ensure_dir
from .common.checks import check_int, flag_errors
from .common.distributed import current_worker, finish_rank
from .common.errors import InputError, run_reporting_input_errors
from .common.images import image_tensor
from .common.lists import ListItem
from .common.prefetch import prefetched
from .common.progress import ItemReport, run_stream
from .common.provenance import check_resumable, write_provenance
from .common.results import is_finished, save_result
from .frontend import base_parser, build_scorer, plan_run
from .objective import POSITIONAL_ORDER, Weights
from .records import build_record, run_folder_name
from .regions import DIVISIONS, DivisionConfig, RegionDivider
from .engine import PRECISIONS
from .models import TunableScorer
from .search import explain_stream
from .search_methods import OPTIONS, SEARCHES
from .tasks import ModelTask, get_model_task


@dataclass(frozen=True)
class SMDLTask:
    """A model task with SMDL's published defaults for it.

    weights_by_search: published λ per search where they differ from ``weights`` (e.g. CLIP's
    bidirectional search); division_options: per division, e.g. ``{"slico": {"ruler": 40.0}}``.
    save_dir: the result folder's name under ``submodular_results/``. search, search_options:
    the published search and option values (e.g. ``{"pending_samples": 12}``), used where the
    flags are not given.
    """

    model: ModelTask
    weights: Weights
    save_dir: str
    region_size: int = 30
    division: str = "slico"
    division_options: dict = field(default_factory=dict)
    weights_by_search: dict = field(default_factory=dict)
    search: str = "greedy"
    search_options: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.name

    def default_save_dir(self) -> str:
        return str(paths.results_dir() / self.save_dir)


def get_smdl_task(name: str) -> SMDLTask:
    """The SMDL configuration of a registered task (``tasks.py``): its model and published defaults."""
    model = get_model_task(name)  # resolves aliases, rejects unknown names
    if model.smdl is None:
        raise KeyError(f"task {model.name!r} has no SMDL defaults")
    d = model.smdl
    return SMDLTask(model=model, weights=Weights(*d.weights), save_dir=d.save_dir, region_size=d.region_size,
                    division=d.division, division_options={k: dict(v) for k, v in d.division_options.items()},
                    weights_by_search={k: Weights(*v) for k, v in d.weights_by_search.items()}, search=d.search,
                    search_options=dict(d.search_options))


def task_entry(name: str) -> tuple[SMDLTask, Callable[..., int]]:
    """``(TASK, main)`` of the ``smdl_explanation_<name>`` shims: the task and its command line."""
    task = get_smdl_task(name)
    return task, lambda argv=None: main(task, argv)


def add_smdl_arguments(parser: argparse.ArgumentParser, task: SMDLTask) -> None:
    """The region, objective-weight and search groups, with ``task``'s defaults."""
    regions = parser.add_argument_group("regions")
    regions.add_argument("--division", "--superpixel-algorithm", dest="division", choices=DIVISIONS,
                         default=task.division, help="how the image is split into regions")
    regions.add_argument("--region-size", type=int, default=task.region_size,
                         help="superpixel/grid cell side in pixels at the model's input resolution")
    regions.add_argument("--num-regions", type=int, default=None, metavar="K",
                         help="about K regions instead: the region size (or SEEDS count, or the prior's cells "
                              "per region) is chosen for the input resolution")
    regions.add_argument("--sam-masks", "--sam-mask-dir", dest="sam_masks", default=None,
                         help="--division sam: folder made by SAM_mask_generate.py (our label maps, or the "
                              "original's element images)")
    regions.add_argument("--sam-checkpoint", default=None,
                         help="--division sam: run SAM inline with these weights instead")
    regions.add_argument("--sam-model-type", default="vit_h", help="SAM architecture of --sam-checkpoint")
    regions.add_argument("--prior-dir", "--explanation-method", dest="prior_dir", default=None,
                         help="--division prior: saliency maps made by baseline_attribution.generate_explanation_maps")
    regions.add_argument("--grid", "--grad-partition-size", dest="grid", type=int, default=10,
                         help="--division prior: g×g cells (CUB 10, CelebA 14 or 28)")
    regions.add_argument("--per-region", "--grad-number-per-set", dest="per_region", type=int, default=4,
                         help="--division prior: cells per region (4, or 8 at 28×28)")

    objective = parser.add_argument_group(
        "objective weights", "named, or positional as in the original CLI: "
        "λ1 confidence, λ2 effectiveness, λ3 consistency, λ4 collaboration")
    defaults = task.weights.positional()
    by_search = {s: w.positional() for s, w in task.weights_by_search.items()}
    for i, name in enumerate(POSITIONAL_ORDER):
        extra = "".join(f"; {v[i]} with --search {s}" for s, v in by_search.items() if v[i] != defaults[i])
        objective.add_argument(f"--{name}-weight", f"--lambda{i + 1}", dest=f"lambda{i + 1}", type=float,
                               default=None, metavar="W", help=f"default: {defaults[i]}{extra}")

    search = parser.add_argument_group("search")
    search.add_argument("--search", choices=tuple(SEARCHES), default=task.search,
                        help="; ".join(f"{name}: {spec.summary}" for name, spec in SEARCHES.items()))
    for name, option in OPTIONS.items():
        users = {s: spec.defaults[name] for s, spec in SEARCHES.items() if name in spec.defaults}
        defaults = ", ".join(f"{value} ({s})" for s, value in users.items())
        if name in task.search_options:
            defaults = f"{task.search_options[name]} for this task; otherwise {defaults}"
        search.add_argument(option.flag(name), dest=name, type=option.type, default=None,
                            help=f"{option.help} (default: {defaults})")

    amortised = parser.add_argument_group("the amortised search's ranker")
    amortised.add_argument("--train-ranker", metavar="FILE", default=None,
                           help="instead of a run: record exact greedy on the first --ranker-images images of the "
                                "list with this task's model, division and λ, fit the ranker of --search amortised "
                                "and save it to FILE")
    amortised.add_argument("--ranker-images", type=int, default=8, metavar="K",
                           help="images --train-ranker runs exact greedy on (use images you will not report on)")

    parser.add_argument("--save-vis", action="store_true",
                        help="after the run, draw each image's figure into <run>/vis/ beside json/ and npy/ (as the "
                             "original did; the same as python -m visualization --explanation-dir RUN --out RUN/vis)")

    speed = parser.add_argument_group("speed")
    speed.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                       help="autocast the model to bf16/fp16 (scores stay float64); measured in docs/benchmarks.md")
    speed.add_argument("--channels-last", action="store_true", help="channels-last memory format for CNNs")
    speed.add_argument("--compile", action="store_true", help="torch.compile the model (slow first batches)")
    speed.add_argument("--images-at-once", type=int, default=8, metavar="K",
                       help="keep K images' searches in flight, filling each forward batch across them; the next "
                            "image starts as soon as one finishes (same results; keeps a GPU busy on late steps "
                            "and small models)")
    speed.add_argument("--workers", type=int, default=0,
                       help="processes that read and divide images ahead of the device (not with inline SAM)")


def get_args_parser(task: SMDLTask) -> argparse.ArgumentParser:
    parser = base_parser(task.model, f"python -m submodular_attribution {task.name}",
                         task.model.description, save_dir_help=f"results root (default: {task.default_save_dir()})")
    add_smdl_arguments(parser, task)
    return parser


@dataclass(frozen=True)
class SMDLSettings:
    """The SMDL flags of a command line, typed and checked."""

    division: DivisionConfig
    weights: Weights
    search: str
    options: dict
    precision: str = "fp32"


def smdl_settings(task: SMDLTask, args: argparse.Namespace) -> SMDLSettings:
    """Typed settings from the parsed flags; λ not given take the task's published values."""
    with flag_errors():
        for name, option in OPTIONS.items():
            if getattr(args, name) is not None:
                option.check(option.flag(name), getattr(args, name))
    published = task.weights_by_search.get(args.search, task.weights).positional()
    lambdas = [published[i] if getattr(args, f"lambda{i + 1}") is None else getattr(args, f"lambda{i + 1}")
               for i in range(4)]
    for i, value in enumerate(lambdas):  # recorded in the provenance as used
        setattr(args, f"lambda{i + 1}", value)
    division = DivisionConfig(
        name=args.division, region_size=args.region_size, num_regions=args.num_regions,
        options=task.division_options.get(args.division, {}), sam_masks=args.sam_masks,
        sam_checkpoint=args.sam_checkpoint, sam_model_type=args.sam_model_type, prior_dir=args.prior_dir,
        grid=args.grid, per_region=args.per_region)
    given = {name: getattr(args, name) for name in OPTIONS}
    options = SEARCHES[args.search].options({**task.search_options, **{k: v for k, v in given.items() if v is not None}})
    if not args.train_ranker:
        with flag_errors():
            SEARCHES[args.search].check(options)
    return SMDLSettings(division, Weights.from_positional(*lambdas), args.search, options, args.precision)


def item_seed(seed: int, item: ListItem) -> int:
    """Per image, independent of sharding."""
    return zlib.crc32(f"{seed}:{item.path}".encode())


def near_chance_warning(target_probs: Sequence[float], num_classes: int) -> str | None:
    """A warning when the model is no better than chance on the full images (mean p_t ≤ 2/C)."""
    if not target_probs or num_classes < 2:
        return None
    mean = float(np.mean(target_probs))
    if mean > 2.0 / num_classes:
        return None
    return (f"warning: the mean target probability on the full images is {mean:.4f}, near chance "
            f"(1/{num_classes} = {1 / num_classes:.4f}): the explanations describe a model that does not "
            "recognise these images. Likely causes: a wrong --input-size for these weights, the wrong "
            "normalisation or checkpoint, or class indices in the list that do not match the model's.")


def grid_fallback_warning(divider: RegionDivider) -> str | None:
    """One line for the run when slico/seeds cannot divide inputs of its size and grid cells are
    used instead (every image is resized to that size, so it holds for all of them)."""
    if divider.fallback is None:
        return None
    height, width = divider.input_size
    return (f"warning: --division {divider.config.name} falls back to a grid on {height}×{width} inputs "
            f"({divider.fallback}; OpenCV cannot divide them), recorded as division.fallback in each result; "
            "use a larger --input-size for superpixels")


@dataclass
class RunOutcome:
    run_dir: Path
    report: ItemReport


def check_speed(args: argparse.Namespace, division: DivisionConfig) -> int:
    """The number of loader processes to use; bad speed flags are input errors."""
    with flag_errors():
        check_int("--images-at-once", args.images_at_once, 1)
        check_int("--workers", args.workers, 0)
    if args.workers and division.name == "sam" and not division.sam_masks:
        return 0  # SAM runs on the device in the main process
    return args.workers


def tune_scorer(scorer, args: argparse.Namespace):
    """Apply ``--channels-last`` / ``--compile`` to a scorer that supports them."""
    if not (args.channels_last or args.compile):
        return scorer
    if not isinstance(scorer, TunableScorer):
        raise InputError(f"--channels-last/--compile: {type(scorer).__name__} does not support them")
    scorer.tune(channels_last=args.channels_last, compile=args.compile)
    return scorer


def run(task: SMDLTask, args: argparse.Namespace) -> RunOutcome:
    """Explain every selected list item; skip those already finished; record failures."""
    # 1. the plan: every check, the list, this rank's share, the device and the result folder
    settings = smdl_settings(task, args)
    planned = plan_run(task.model, args)
    input_size, worker = tuple(args.input_size), planned.worker
    divider = RegionDivider(settings.division, input_size, device=planned.device)
    workers = check_speed(args, divider.config)
    run_dir = Path(args.save_dir or task.default_save_dir()) / run_folder_name(
        divider.config.name, settings.weights, settings.search, settings.options, args.seed)
    ensure_dir(run_dir)  # an uncreatable --save-dir fails before the model loads
    check_resumable(run_dir, divider.describe(), input_size)
    todo = [item for item in planned.items if not is_finished(run_dir, str(item.label), item.stem)]

    # 2. the model
    scorer = tune_scorer(build_scorer(task.model, args, planned, embeddings=settings.weights.effectiveness != 0),
                         args)
    class_names = task.model.class_names_for(args, scorer.num_classes)
    write_provenance(run_dir, {**vars(args), "task": task.name, "division_resolved": divider.describe(),
                               "search_options": settings.options, "rank": worker.rank,
                               "world_size": worker.world_size})
    where = f" (rank {worker.rank} of {worker.world_size})" if worker.world_size > 1 else ""
    print(f"{run_dir}{where}: {len(planned.items) - len(todo)} of {len(planned.items)} images already done",
          file=sys.stderr)
    fallback = grid_fallback_warning(divider)
    if fallback and worker.is_main:
        print(fallback, file=sys.stderr)

    def load(item: ListItem) -> tuple[np.ndarray, np.ndarray]:
        image = task.model.read_input(planned.root / item.path, input_size)
        return image, divider(image, item)

    # 3. the stream
    def explain_all(ready):
        """Images through one stream, ``--images-at-once`` in flight; each result saved as it finishes."""
        labels_of = {}

        def jobs():
            for item, (image, labels) in ready:
                labels_of[item] = labels
                target = None if args.target == "prediction" else item.label
                yield item, (image_tensor(image), torch.from_numpy(labels), target, item_seed(args.seed, item))

        for item, trace in explain_stream(scorer, jobs(), settings.weights, search=settings.search,
                                          options=settings.options, batch_size=args.batch_size,
                                          precision=settings.precision, at_once=args.images_at_once):
            labels = labels_of.pop(item)
            if isinstance(trace, Exception):
                yield item, trace
                continue
            try:
                record, ranks = build_record(trace, labels, settings.weights, image=item.path,
                                             class_name=str(item.label), division=divider.describe(),
                                             search=settings.search, options=settings.options,
                                             class_names=class_names)
                save_result(run_dir, str(item.label), item.stem, record, ranks)
            except Exception as err:  # noqa: BLE001 - this item fails, the run goes on (a full disk: run_stream stops)
                yield item, err
                continue
            yield item, (trace.forward_passes, trace.org_score)

    report = run_stream(prefetched(todo, load, workers), len(todo), explain_all, run_dir=run_dir,
                        desc=f"{task.name} {settings.search}", strict=args.strict, show=worker.is_main)
    if report.results:
        forwards, probs = zip(*report.results.values())
        print(f"{run_dir}: explained {len(forwards)} images, {np.mean(forwards):.0f} forward passes per image",
              file=sys.stderr)
        warning = near_chance_warning(probs, scorer.num_classes)
        if warning:
            print(warning, file=sys.stderr)
    return RunOutcome(run_dir, report)


def train_ranker_run(task: SMDLTask, args: argparse.Namespace) -> int:
    """``--train-ranker FILE``: the amortised search's ranker from exact greedy on the list's first
    ``--ranker-images`` images (:mod:`.ranker_training`)."""
    from .ranker_training import train_ranker

    with flag_errors():
        check_int("--ranker-images", args.ranker_images, 1)
    settings = smdl_settings(task, args)
    planned = plan_run(task.model, args)
    divider = RegionDivider(settings.division, tuple(args.input_size), device=planned.device)
    scorer = tune_scorer(build_scorer(task.model, args, planned, embeddings=settings.weights.effectiveness != 0),
                         args)
    images = []
    for item in planned.items[: args.ranker_images]:
        image = task.model.read_input(planned.root / item.path, tuple(args.input_size))
        target = None if args.target == "prediction" else item.label
        images.append((image_tensor(image), torch.from_numpy(divider(image, item)), target))
    ranker = train_ranker(scorer, images, settings.weights, top=SEARCHES["amortised"].options(settings.options)[
        "ranker_top"], batch_size=args.batch_size, precision=settings.precision, at_once=args.images_at_once)
    ranker.save(Path(args.train_ranker))
    print(f"{args.train_ranker}: ranker from exact greedy on {ranker.meta['images']} images "
          f"({ranker.meta['forwards']:,} forwards); use it with --search amortised --ranker {args.train_ranker}",
          file=sys.stderr)
    return 0


def save_vis(run_dir: Path, args: argparse.Namespace) -> int:
    """``--save-vis``: the figures command on the finished run (a separate command: figures sit a
    layer above the engine). Under torchrun the ranks end at different times, so it is left to
    the user, with the command printed."""
    import subprocess

    command = [sys.executable, "-m", "visualization", "--explanation-dir", str(run_dir), "--out", str(run_dir / "vis")]
    if args.datasets:
        command += ["--datasets", args.datasets]
    if current_worker().world_size > 1:
        if current_worker().is_main:
            print(f"--save-vis: run after every rank has finished: {' '.join(command[1:])}", file=sys.stderr)
        return 0
    return subprocess.run(command).returncode


def main(task: SMDLTask, argv: Sequence[str] | None = None) -> int:
    args = get_args_parser(task).parse_args(argv)

    def run_and_draw() -> int:
        if args.train_ranker:
            return train_ranker_run(task, args)
        outcome = run(task, args)
        if args.save_vis and save_vis(outcome.run_dir, args):
            raise InputError(f"--save-vis: drawing the figures of {outcome.run_dir} failed (see above)")
        return finish_rank(outcome.report.exit_status)

    return run_reporting_input_errors(run_and_draw)


# Published face division: SLICO region size 15, ruler 40 at 112×112 (≈49 regions).
