"""The command line of ``smdl_explanation_detection`` and ``smdl_explanation_grounding``.

One target per list line (an image, a box, a class or phrase; :mod:`.detection.targets`).
The model is wrapped by :class:`~submodular_attribution.detection.scorer.DetectionScorer`,
bound, for each group of ``--images-at-once`` targets, to their boxes (rescaled from the image
file's pixels to ``--input-size``) and classes or phrases; target t of the group is column t,
the best IoU × score match of the model's detections. The engine, every search, the result
files and the evaluations are those of the classification scripts (``cli.py``), and the same
region, weight, search and speed flags apply.

Results: ``<save-dir>/<division>-<λ…>[search suffix]/json/<class or phrase>/<image stem>_<x1>_<y1>_<x2>_<y2>.json``
(+ ``npy/``), each record with ``target_box`` (the image file's pixels), ``target_box_input``
(``--input-size`` pixels), ``target_class`` and ``target_name`` (or ``target_phrase``);
``org_score`` and ``baseline_score`` are the detection scores of the full and the black image.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from .cli import SMDLTask, add_smdl_arguments, check_speed, grid_fallback_warning, item_seed, smdl_settings
from .common import paths
from .common.atomic import ensure_dir
from .common.distributed import current_worker, file_lock, finish_rank, shard
from .common.errors import InputError, run_reporting_input_errors
from .common.images import image_tensor, load_image_rgb
from .common.lists import select_range, skip_repeated_lines
from .common.prefetch import prefetched
from .common.progress import ItemReport, run_groups
from .common.provenance import check_resumable, write_provenance
from .common.results import is_finished, save_result
from .detection.scorer import DetectionScorer
from .detection.targets import (DetectionItem, check_boxes, read_detection_list, read_grounding_list, resolve_class,
                                scale_box)
from .families import ModelTask, add_weights_and_names_arguments, read_class_names
from .frontend import HelpFormatter, add_data_arguments, add_output_arguments, check_common, run_device
from .objective import Weights
from .records import build_record, run_folder_name
from .regions import RegionDivider
from .search import explain_many

SHAPES_LIST = "datasets/detection/eval_list.txt"
WEIGHTS = Weights(confidence=0.0, effectiveness=0.0, consistency=1.0, collaboration=1.0)


@dataclass(frozen=True)
class Kind:
    """A script: how its list reads, which models it takes, its defaults."""

    name: str
    description: str
    read_list: Callable[[str | Path], list[DetectionItem]]
    default_model: str
    save_dir: str
    eval_list: str | None
    batch_size: int


DETECTION = Kind("detection", "SMDL for a detector's box: which regions make the model find this box "
                 "(the embedded shapes detector, or a torchvision detection architecture)",
                 read_detection_list, "shapes", "detection", SHAPES_LIST, 64)
GROUNDING = Kind("grounding", "SMDL for a grounding model's box: which regions make the model find this phrase "
                 "here (Grounding DINO through transformers, from a local folder)",
                 read_grounding_list, "grounding-dino", "grounding", None, 8)


def _model_name(argv: Sequence[str] | None, kind: Kind) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default=kind.default_model)
    name = pre.parse_known_args(argv)[0].model
    return "shapes" if name == "default" else name


def _input_size(kind: Kind, model: str) -> int:
    if kind is GROUNDING:
        return 800
    return 112 if model == "shapes" else 640


def add_detector_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The flags that choose the detector (read by :func:`build_detector`), except ``--checkpoint``."""
    group.add_argument("--model", default=DETECTION.default_model,
                       help="'shapes' (alias 'default': the embedded detector shipped as "
                            "ckpt/embedded/shapes_detector.pt) or a torchvision detection architecture "
                            "(fasterrcnn_resnet50_fpn, retinanet_resnet50_fpn, fcos_resnet50_fpn, ssd300_vgg16, ...)")
    add_weights_and_names_arguments(
        group, arch_flag="--model", weights="DEFAULT, COCO_V1",
        num_classes="torchvision models, counted as torchvision does: Faster R-CNN and SSD include the background",
        names="the shapes names, or the published weights' categories",
        names_use="for the results and figures, and so that list lines may name classes")
    group.add_argument("--min-size", type=int, default=None,
                       help="torchvision models: the shorter side their own transform resizes to "
                            "(default: the architecture's, e.g. 800 for Faster R-CNN)")


def _add_model_arguments(group: argparse._ArgumentGroup, kind: Kind) -> None:
    if kind is DETECTION:
        add_detector_arguments(group)
    else:
        group.add_argument("--model", default=kind.default_model, choices=("grounding-dino",),
                           help="the model family (any AutoModelForZeroShotObjectDetection with Grounding DINO's "
                                "inputs)")


def get_args_parser(kind: Kind, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    model = _model_name(argv, kind)
    prog = f"python -m submodular_attribution {kind.name}"
    parser = argparse.ArgumentParser(prog=prog, description=kind.description, formatter_class=HelpFormatter)
    add_data_arguments(parser, None if kind.eval_list is None else str(paths.home() / kind.eval_list), target=False)
    group = parser.add_argument_group("model")
    default_ckpt = (str(paths.weights_file("shapes_detector.pt")) if kind is DETECTION and model == "shapes" else
                    str(paths.ckpt_dir() / "grounding-dino-tiny") if kind is GROUNDING else None)
    group.add_argument("--checkpoint", default=default_ckpt,
                       help="weights: a state dict (torchvision models), or the folder written by save_pretrained "
                            "(grounding)" + ("" if default_ckpt else "; required unless --weights"))
    size = _input_size(kind, model)
    group.add_argument("--input-size", type=int, nargs="+", metavar="SIZE", default=[size, size],
                       help="images are resized to H W (or one side, square) and boxes scaled with them")
    _add_model_arguments(group, kind)
    run = parser.add_argument_group("run")
    add_output_arguments(run, f"results root (default: {paths.results_dir() / kind.save_dir})")
    run.add_argument("--device", default="auto", help="auto (one GPU per torchrun rank), cpu, cuda, cuda:1, ...")
    run.add_argument("--batch-size", type=int, default=kind.batch_size, help="images per forward pass")
    run.add_argument("--seed", type=int, default=0, help="seeds torch and every random choice")
    add_smdl_arguments(parser, _smdl_task(kind, size))
    return parser


def _smdl_task(kind: Kind, size: int) -> SMDLTask:
    task = ModelTask(name=kind.name, description=kind.description, build_scorer=lambda *a: None,
                     input_size=(size, size))
    return SMDLTask(model=task, weights=WEIGHTS, save_dir=kind.save_dir, region_size=max(4, round(size / 7)))


def build_detector(kind: Kind, args: argparse.Namespace, device: torch.device):
    """(detector, class names or None, number of classes or None) for the parsed flags."""
    if kind is GROUNDING:
        from .detection.grounding import GroundingDinoDetector

        return GroundingDinoDetector(args.checkpoint, device), None, None
    names = read_class_names(args.class_names) if args.class_names else None
    if args.model in ("shapes", "default"):
        from .detection.shapes_model import ShapesDetectorAdapter, load_or_train_detector
        from .shapes import CLASS_NAMES

        try:
            with file_lock(args.checkpoint):  # under torchrun, one rank trains and the others reuse it
                net, _ = load_or_train_detector(args.checkpoint, device=device)
        except RuntimeError as err:
            raise InputError(str(err)) from None
        detector = ShapesDetectorAdapter(net, device)
        return detector, names or list(CLASS_NAMES), detector.num_classes
    from .detection.torchvision_detector import load_torchvision_detector

    options = {} if args.min_size is None else {"min_size": args.min_size, "max_size": max(args.min_size, 1333)}
    detector = load_torchvision_detector(args.model, None if args.weights else args.checkpoint, args.num_classes,
                                         device, weights=args.weights, allow_download=args.allow_download, **options)
    if names is not None and len(names) != detector.num_classes:
        raise InputError(f"--class-names {args.class_names}: {len(names)} names, but the model has "
                         f"{detector.num_classes} classes")
    return detector, names or detector.class_names, detector.num_classes


@dataclass
class RunOutcome:
    run_dir: Path
    report: ItemReport


def run(kind: Kind, args: argparse.Namespace) -> RunOutcome:
    """Explain every selected target; skip finished ones; record failures."""
    settings = smdl_settings(_smdl_task(kind, args.input_size[0]), args)
    if settings.weights.confidence or settings.weights.effectiveness:
        raise InputError("--lambda1/--lambda2 (confidence, effectiveness) must be 0 for detection targets: "
                         "detection scores are not a class distribution and carry no embeddings")
    check_common(args)
    if args.channels_last or args.compile:
        raise InputError("--channels-last/--compile: not supported by the detection scorers")
    h, w = args.input_size
    worker = current_worker()
    device = run_device(args, worker)
    divider = RegionDivider(settings.division, (h, w), device=device)
    workers = check_speed(args, divider.config)
    run_dir = Path(args.save_dir or paths.results_dir() / kind.save_dir) / run_folder_name(
        divider.config.name, settings.weights, settings.search, settings.options, args.seed)
    ensure_dir(run_dir)
    check_resumable(run_dir, divider.describe(), (h, w))

    if kind is DETECTION and args.eval_list and Path(args.eval_list).resolve() == (paths.home() / SHAPES_LIST).resolve():
        from .detection.shapes_data import write_detection_eval_set

        with file_lock(paths.home() / SHAPES_LIST):
            write_detection_eval_set(Path(args.eval_list).parent)
    items = skip_repeated_lines(select_range(kind.read_list(args.eval_list), args.begin, args.end), args.eval_list,
                                key=lambda item: (item.path, item.box, item.query), show=worker.is_main)
    root = Path(args.datasets) if args.datasets else Path(args.eval_list).parent
    check_boxes(items, root, args.eval_list)
    items = shard(items, worker)
    torch.manual_seed(args.seed)
    detector, class_names, num_classes = build_detector(kind, args, device)
    queries = {item: item.query if item.grounding else resolve_class(item, class_names, num_classes, args.eval_list)
               for item in items}
    scorer = DetectionScorer(detector, class_names)
    write_provenance(run_dir, {**vars(args), "task": kind.name, "division_resolved": divider.describe(),
                               "search_options": settings.options, "rank": worker.rank,
                               "world_size": worker.world_size})
    todo = [item for item in items if not is_finished(run_dir, item.folder, item.stem)]
    where = f" (rank {worker.rank} of {worker.world_size})" if worker.world_size > 1 else ""
    print(f"{run_dir}{where}: {len(items) - len(todo)} of {len(items)} targets already done", file=sys.stderr)
    fallback = grid_fallback_warning(divider)
    if fallback and worker.is_main:
        print(fallback, file=sys.stderr)

    def load(item: DetectionItem):
        original = load_image_rgb(root / item.path)
        size = (original.shape[1], original.shape[0])
        image = original if size == (w, h) else cv2.resize(original, (w, h), interpolation=cv2.INTER_LINEAR)
        return image, divider(image, item), scale_box(item.box, size, (w, h)), size

    def explain_group(group):
        scorer.bind([(box, queries[item]) for item, (_, _, box, _) in group])
        traces = explain_many(scorer, [(image_tensor(image), torch.from_numpy(labels), j, item_seed(args.seed, item))
                                       for j, (item, (image, labels, _, _)) in enumerate(group)],
                              settings.weights, search=settings.search, options=settings.options,
                              batch_size=args.batch_size, precision=settings.precision)
        for (item, (_, labels, box, size)), trace in zip(group, traces):
            record, ranks = build_record(trace, labels, settings.weights, image=item.path, class_name=item.folder,
                                         division=divider.describe(), search=settings.search, options=settings.options)
            query = queries[item]
            record.update({
                "task": kind.name,
                "target": query,
                "target_box": [float(v) for v in item.box],
                "target_box_input": [round(float(v), 3) for v in box],
                "image_size_original": [size[1], size[0]],
                "score": "max over detections of IoU(box, target box) x score for the target's "
                         + ("phrase" if item.grounding else "class"),
            })
            if item.grounding:
                record["target_phrase"] = query
                record["target_name"] = query
            else:
                record["target_class"] = query
                if class_names is not None and 0 <= query < len(class_names):
                    record["target_name"] = str(class_names[query])
            save_result(run_dir, item.folder, item.stem, record, ranks)
        return [(trace.forward_passes, trace.org_score) for trace in traces]

    report = run_groups(prefetched(todo, load, workers), len(todo), explain_group, run_dir=run_dir,
                        desc=f"{kind.name} {settings.search}", group=args.images_at_once, strict=args.strict,
                        show=worker.is_main)
    if report.results:
        forwards, scores = zip(*report.results.values())
        print(f"{run_dir}: explained {len(forwards)} targets, {np.mean(forwards):.0f} forward passes per target, "
              f"mean detection score of the full images {np.mean(scores):.3f}", file=sys.stderr)
        if np.mean(scores) < 0.05:
            print("warning: the model barely finds these boxes on the full images (mean IoU × score < 0.05): check "
                  "--input-size, the weights, and that the list's boxes are x1 y1 x2 y2 in the image's pixels "
                  "and its classes the model's label ids", file=sys.stderr)
    return RunOutcome(run_dir, report)


def main(kind: Kind, argv: Sequence[str] | None = None) -> int:
    args = get_args_parser(kind, argv).parse_args(argv)
    return run_reporting_input_errors(lambda: finish_rank(run(kind, args).report.exit_status))
