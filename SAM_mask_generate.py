"""Precompute Segment Anything divisions for an evaluation list.

For every ``<relative path> <class index>`` line, the image is loaded as RGB at the model's
input resolution (``--input-size``), SAM's automatic mask generator runs on it, and the
masks become a division (``submodular_attribution.regions.sam.masks_to_label_map``: overlaps
go to the smaller mask, masks under the area floor are dropped, uncovered pixels form one
residual region). Each division is saved as an H×W int16 label map at
``<save-dir>/<class>/<stem>.npy``, atomically; existing files are skipped, so a rerun resumes.

``--format original`` writes the original SMDL-Attribution layout instead, for its scripts:
``<save-dir>/<relative path>.npy``, an N×H×W×3 uint8 array of BGR element images at the image's
own resolution (one per region, the last the remainder). The SMDL scripts here read both
(``--sam-masks``/``--sam-mask-dir``). ``--image-dir`` and ``--image-file`` are the original's
names of ``--datasets`` and ``--eval-list``.

    python SAM_mask_generate.py --eval-list datasets/imagenet/val_clip_vitl_5k_true.txt \\
        --datasets datasets/imagenet/ILSVRC2012_img_val --sam-model-type vit_h \\
        --sam-checkpoint ckpt/sam_vit_h_4b8939.pth --device auto

An image that cannot be read or divided is reported, recorded in ``failures.jsonl`` and
skipped (``--strict`` stops instead); the exit status is then 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import load_image_rgb
from submodular_attribution.common.lists import ListItem
from submodular_attribution.common.progress import run_items
from submodular_attribution.frontend import HelpFormatter, add_data_arguments, add_output_arguments, input_size, read_items
from submodular_attribution.regions.sam import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_MIN_AREA_FRACTION,
    SAM_MODEL_TYPES,
    label_map_path,
)
from submodular_attribution.regions.sam_original import original_mask_path


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python SAM_mask_generate.py",
        description="Divide each image of an evaluation list into regions with Segment Anything "
                    "and save the label maps (H×W int16, <save-dir>/<class>/<stem>.npy).",
        formatter_class=HelpFormatter,
    )
    add_data_arguments(parser, target=False, list_aliases=("--image-file",), root_aliases=("--image-dir",))
    parser.add_argument("--format", choices=("labels", "original"), default="labels",
                        help="labels: H×W int16 label maps at --input-size under <class>/<stem>.npy; original: the "
                             "original code's N×H×W×3 BGR element images at the image's resolution under "
                             "<relative path>.npy")
    parser.add_argument("--input-size", type=int, nargs="+", default=[224, 224], metavar="SIZE",
                        help="the explained model's input resolution (H W, or one side); images are resized "
                             "to it and the division matches it")

    # The same names as the SMDL scripts' --division sam flags (the short forms are the old ones).
    sam = parser.add_argument_group("SAM")
    sam.add_argument("--sam-model-type", "--model-type", dest="sam_model_type", choices=tuple(SAM_MODEL_TYPES),
                     default="vit_h", help="vit_tiny: a small random-architecture SAM for smoke runs")
    sam.add_argument("--sam-checkpoint", "--checkpoint", dest="sam_checkpoint", default=None,
                     help=f"SAM weights (default: {DEFAULT_CHECKPOINTS['vit_h']} for vit_h, "
                          f"{DEFAULT_CHECKPOINTS['vit_l']}, {DEFAULT_CHECKPOINTS['vit_b']} for vit_l, vit_b)")
    sam.add_argument("--points-per-side", type=int, default=32, help="point-prompt grid of the mask generator")
    sam.add_argument("--stability-score-thresh", type=float, default=0.8,
                     help="mask generator's stability threshold")
    sam.add_argument("--min-area-fraction", type=float, default=DEFAULT_MIN_AREA_FRACTION,
                     help="drop masks smaller than this fraction of the image (after overlap resolution)")

    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    add_output_arguments(run, "output root, what the SMDL scripts take as --sam-masks "
                              "(default: datasets/sam_masks/<list stem>)")
    run.add_argument("--sam-masks", dest="save_dir", default=None, help="the same as --save-dir")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if args.eval_list is None:
        raise InputError("--eval-list is required")
    args.input_size = list(input_size(args.input_size))
    if args.points_per_side < 1:
        raise InputError(f"--points-per-side must be ≥ 1, got {args.points_per_side}")
    if not 0.0 <= args.stability_score_thresh <= 1.0:
        raise InputError(f"--stability-score-thresh must be in [0, 1], got {args.stability_score_thresh}")
    if not 0.0 <= args.min_area_fraction <= 1.0:
        raise InputError(f"--min-area-fraction must be in [0, 1], got {args.min_area_fraction}")
    if args.sam_checkpoint is None:
        if args.sam_model_type not in DEFAULT_CHECKPOINTS:
            raise InputError(f"--sam-model-type {args.sam_model_type} has no default checkpoint; pass --sam-checkpoint")
        args.sam_checkpoint = DEFAULT_CHECKPOINTS[args.sam_model_type]


def run(args: argparse.Namespace) -> dict:
    """Generate the missing label maps; returns a summary dict (``failed``: items that failed)."""
    _check_args(args)
    items, root = read_items(args)
    save_dir = Path(args.save_dir) if args.save_dir else Path("datasets/sam_masks") / Path(args.eval_list).stem
    size = tuple(args.input_size)

    original = args.format == "original"

    def output(item: ListItem) -> Path:
        return original_mask_path(save_dir, item.path) if original else \
            label_map_path(save_dir, str(item.label), item.stem)

    todo = [item for item in items if not output(item).is_file()]
    summary = {"save_dir": str(save_dir), "done": 0, "skipped": len(items) - len(todo), "failed": 0, "regions": []}
    print(f"{save_dir}: {summary['skipped']} of {len(items)} label maps already exist", file=sys.stderr)
    if todo:
        import numpy as np

        from submodular_attribution.common.atomic import atomic_save_npy, ensure_dir
        from submodular_attribution.models import resolve_device
        from submodular_attribution.regions.sam import build_mask_generator, load_sam, sam_label_map
        from submodular_attribution.regions.sam_original import label_map_to_elements

        ensure_dir(save_dir)
        device = resolve_device(args.device)
        sam = load_sam(args.sam_model_type, args.sam_checkpoint, device)
        generator = build_mask_generator(sam, args.points_per_side, args.stability_score_thresh)

        def divide(item: ListItem) -> int:
            image = load_image_rgb(root / item.path, None if original else size)
            labels = sam_label_map(image, generator, args.min_area_fraction)
            n = int(labels.max()) + 1
            if original:
                ensure_dir(output(item).parent)
                atomic_save_npy(output(item), label_map_to_elements(np.ascontiguousarray(image[..., ::-1]), labels))
            else:
                dtype = np.int16 if n <= np.iinfo(np.int16).max + 1 else np.int32
                atomic_save_npy(output(item), labels.astype(dtype))
            return n

        report = run_items(todo, divide, run_dir=save_dir, desc=f"SAM {args.sam_model_type}", strict=args.strict)
        summary["regions"] = list(report.results.values())
        summary["done"], summary["failed"] = len(report.results), len(report.failures)
    regions = summary["regions"]
    mean = f", {sum(regions) / len(regions):.1f} regions per image (min {min(regions)}, max {max(regions)})" \
        if regions else ""
    failed = f", {summary['failed']} failed (failures.jsonl)" if summary["failed"] else ""
    print(f"{save_dir}: {summary['done']} label maps written, {summary['skipped']} skipped{failed}{mean}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: 1 if run(args)["failed"] else 0)


if __name__ == "__main__":
    sys.exit(main())
