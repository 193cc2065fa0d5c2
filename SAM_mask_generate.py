"""Precompute Segment Anything divisions for an evaluation list.

For every ``<relative path> <class index>`` line, the image is loaded as RGB at the model's
input resolution (``--input-size``), SAM's automatic mask generator runs on it, and the
masks become a division (``submodular_attribution.sam_regions.masks_to_label_map``: overlaps
go to the smaller mask, masks under the area floor are dropped, uncovered pixels form one
residual region). Each division is saved as an H×W int16 label map at
``<save-dir>/<class>/<stem>.npy``, atomically; existing files are skipped, so a rerun resumes.

    python SAM_mask_generate.py --eval-list datasets/imagenet/val_clip_vitl_5k_true.txt \\
        --datasets datasets/imagenet/ILSVRC2012_img_val --model-type vit_h \\
        --checkpoint ckpt/sam_vit_h_4b8939.pth --device auto
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from submodular_attribution.data import (
    InputError, ListItem, load_image_rgb, read_eval_list, run_reporting_input_errors, select_range)
from submodular_attribution.sam_regions import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_MIN_AREA_FRACTION,
    SAM_MODEL_TYPES,
    label_map_path,
)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python SAM_mask_generate.py",
        description="Divide each image of an evaluation list into regions with Segment Anything "
                    "and save the label maps (H×W int16, <save-dir>/<class>/<stem>.npy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--eval-list", required=True, help="lines '<relative path> <class index>'")
    data.add_argument("--datasets", default=None,
                      help="image root the list's paths are relative to (default: the list's folder)")
    data.add_argument("--begin", type=int, default=0, help="first list item (0-based)")
    data.add_argument("--end", type=int, default=-1, help="stop before this item; -1 = through the last line")
    data.add_argument("--input-size", type=int, nargs=2, default=[224, 224], metavar=("H", "W"),
                      help="the explained model's input resolution; images are resized to it and the "
                           "division matches it")

    sam = parser.add_argument_group("SAM")
    sam.add_argument("--model-type", choices=tuple(SAM_MODEL_TYPES), default="vit_h",
                     help="vit_tiny: a small random-architecture SAM for smoke runs")
    sam.add_argument("--checkpoint", default=None,
                     help=f"SAM weights (default: {DEFAULT_CHECKPOINTS['vit_h']} for vit_h, "
                          f"{DEFAULT_CHECKPOINTS['vit_l']}, {DEFAULT_CHECKPOINTS['vit_b']} for vit_l, vit_b)")
    sam.add_argument("--points-per-side", type=int, default=32, help="point-prompt grid of the mask generator")
    sam.add_argument("--stability-score-thresh", type=float, default=0.8,
                     help="mask generator's stability threshold")
    sam.add_argument("--min-area-fraction", type=float, default=DEFAULT_MIN_AREA_FRACTION,
                     help="drop masks smaller than this fraction of the image (after overlap resolution)")

    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--save-dir", default=None, help="output root (default: datasets/sam_masks/<list stem>)")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    h, w = args.input_size
    if h < 1 or w < 1:
        raise InputError(f"--input-size must be two positive integers, got {h} {w}")
    if args.points_per_side < 1:
        raise InputError(f"--points-per-side must be ≥ 1, got {args.points_per_side}")
    if not 0.0 <= args.stability_score_thresh <= 1.0:
        raise InputError(f"--stability-score-thresh must be in [0, 1], got {args.stability_score_thresh}")
    if not 0.0 <= args.min_area_fraction <= 1.0:
        raise InputError(f"--min-area-fraction must be in [0, 1], got {args.min_area_fraction}")
    if args.checkpoint is None:
        if args.model_type not in DEFAULT_CHECKPOINTS:
            raise InputError(f"--model-type {args.model_type} has no default checkpoint; pass --checkpoint")
        args.checkpoint = DEFAULT_CHECKPOINTS[args.model_type]


def _check_items(items: list[ListItem], root: Path, list_path: str) -> None:
    """Every image exists and no two lines would write the same file."""
    seen: dict[tuple[int, str], int] = {}
    for item in items:
        if not (root / item.path).is_file():
            raise InputError(f"{root / item.path}: image not found (line {item.line} of {list_path})")
        key = (item.label, item.stem)
        if key in seen:
            raise InputError(f"{list_path}:{item.line}: same class and file name as line {seen[key]} "
                             f"({item.label}/{item.stem}); label maps would collide")
        seen[key] = item.line


def run(args: argparse.Namespace) -> dict:
    """Generate the missing label maps; returns a summary dict."""
    _check_args(args)
    items = select_range(read_eval_list(args.eval_list), args.begin, args.end)
    root = Path(args.datasets) if args.datasets else Path(args.eval_list).parent
    _check_items(items, root, args.eval_list)
    save_dir = Path(args.save_dir) if args.save_dir else Path("datasets/sam_masks") / Path(args.eval_list).stem
    size = tuple(args.input_size)

    todo = [item for item in items if not label_map_path(save_dir, str(item.label), item.stem).is_file()]
    summary = {"save_dir": str(save_dir), "done": 0, "skipped": len(items) - len(todo), "regions": []}
    print(f"{save_dir}: {summary['skipped']} of {len(items)} label maps already exist", file=sys.stderr)
    if todo:
        import numpy as np
        from tqdm import tqdm

        from submodular_attribution.models import resolve_device
        from submodular_attribution.results import atomic_save_npy
        from submodular_attribution.sam_regions import build_mask_generator, load_sam, sam_label_map

        try:
            device = resolve_device(args.device)
        except (ValueError, RuntimeError) as err:  # resolve_device's message names the flag
            raise InputError(str(err) if "--device" in str(err) else f"--device {args.device}: {err}") from None
        sam = load_sam(args.model_type, args.checkpoint, device)
        generator = build_mask_generator(sam, args.points_per_side, args.stability_score_thresh)
        for item in tqdm(todo, desc=f"SAM {args.model_type}", unit="img", disable=None):
            image = load_image_rgb(root / item.path, size)
            labels = sam_label_map(image, generator, args.min_area_fraction)
            n = int(labels.max()) + 1
            dtype = np.int16 if n <= np.iinfo(np.int16).max + 1 else np.int32
            atomic_save_npy(label_map_path(save_dir, str(item.label), item.stem), labels.astype(dtype))
            summary["done"] += 1
            summary["regions"].append(n)
    regions = summary["regions"]
    mean = f", {sum(regions) / len(regions):.1f} regions per image (min {min(regions)}, max {max(regions)})" \
        if regions else ""
    print(f"{save_dir}: {summary['done']} label maps written, {summary['skipped']} skipped{mean}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
