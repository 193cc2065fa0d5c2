"""Figures for any result folder.

    python -m visualization --explanation-dir DIR [--out DIR] [--images all|N] [--gif] [--mp4]
        [--colormap NAME] [--alpha A] [--datasets ROOT] [--maps METHOD=DIR ...]
    python -m visualization --explanation-dir RUN [RUN2 ...] --html OUT

DIR is an SMDL run folder (json/ + npy/, our format or the original one) or an
``evals.benchmark`` folder (rows/). Prints where each kind of figure went; bad input is one
``error:`` line and exit status 2. ``--html`` writes an offline HTML report of one or more run
folders instead (see :mod:`visualization.report`); the PNG figures are then drawn only when a
figure flag (--out, --images, --gif, --mp4, --maps) asks for them too.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from submodular_attribution.common.errors import InputError, run_reporting_input_errors

from .defaults import DEFAULT_ALPHA, DEFAULT_COLORMAP, MAX_FRAMES


def _images(text: str) -> int | str:
    if text == "all":
        return text
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected 'all' or a count ≥ 0, got {text!r}")
    return int(text)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m visualization", description=__doc__.split("\n\n")[0])
    parser.add_argument("--explanation-dir", required=True, nargs="+", metavar="DIR",
                        help="an SMDL run folder (json/<class>/*.json + npy/) or a benchmark folder (rows/); with "
                             "--html, one or more run folders (several: compared image by image, the first is "
                             "the reference of the differences)")
    parser.add_argument("--out", default=None, help="figures' folder (default: <explanation-dir>/figures)")
    parser.add_argument("--html", default=None, metavar="OUT",
                        help="write an offline HTML report to OUT/index.html (summary, sortable paged table, "
                             "per-image slider and curves; opens from file://, no network); rebuilding redraws "
                             "only images whose results changed; --datasets, --colormap and --alpha apply. Alone it "
                             "writes only the report; add --out, --images, --gif, --mp4 or --maps to draw the PNG "
                             "figures too (one folder)")
    per_image = parser.add_argument_group("per-image figures")
    per_image.add_argument("--images", type=_images, default=None,
                           help="draw the first N images (sorted by class and name) or all; mean curves always use "
                                "every image (default: all)")
    per_image.add_argument("--datasets", default=None,
                           help="image root of the records' 'image' paths (default: the run's --datasets, else "
                                "its evaluation list's folder, from runs.jsonl)")
    per_image.add_argument("--gif", action="store_true", help="an animation per image: regions revealed in order "
                                                              "beside the growing insertion curve")
    per_image.add_argument("--mp4", action="store_true", help="the same as MP4 (needs imageio-ffmpeg or ffmpeg)")
    per_image.add_argument("--max-frames", type=int, default=MAX_FRAMES,
                           help=f"animation frames at most; several regions per frame beyond (default: {MAX_FRAMES})")
    per_image.add_argument("--maps", nargs="+", default=None, metavar="METHOD=DIR",
                           help="saliency-map folders (<dir>/<class>/<stem>.npy) to compare side by side, one grid "
                                "per image")
    style = parser.add_argument_group("style")
    style.add_argument("--colormap", default=DEFAULT_COLORMAP,
                       help=f"matplotlib colormap for heat-maps; keep it perceptually uniform (viridis, inferno, "
                            f"magma, cividis; default: {DEFAULT_COLORMAP})")
    style.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                       help=f"heat-map opacity over the photo's greyscale copy, 0..1 (default: {DEFAULT_ALPHA})")
    return parser


def parse_maps(entries: Sequence[str] | None) -> dict[str, str]:
    """``["gradcam=DIR", ...]`` → ``{"gradcam": "DIR"}``; a malformed or repeated entry is an InputError."""
    maps: dict[str, str] = {}
    for entry in entries or ():
        name, sep, folder = entry.partition("=")
        if not sep or not name or not folder:
            raise InputError(f"--maps {entry}: expected METHOD=DIR")
        if name in maps:
            raise InputError(f"--maps {entry}: {name} given twice")
        maps[name] = folder
    return maps


def _figure_flags(args: argparse.Namespace) -> list[str]:
    """The figure flags given on the command line (they ask for PNG figures beside an --html report)."""
    given = {"--out": args.out is not None, "--images": args.images is not None, "--gif": args.gif,
             "--mp4": args.mp4, "--maps": bool(args.maps)}
    return [flag for flag, on in given.items() if on]


def run(args: argparse.Namespace) -> int:
    if args.max_frames < 1:
        raise InputError(f"--max-frames {args.max_frames}: must be ≥ 1")
    folders = args.explanation_dir
    figures = args.html is None or bool(_figure_flags(args))
    if figures and len(folders) > 1:
        asked = "/".join(_figure_flags(args))
        raise InputError(f"--explanation-dir: {len(folders)} folders; the figures{f' ({asked})' if asked else ''} "
                         "are drawn for one folder (compare several with --html alone)")
    if args.html is not None:
        from .report import build_report  # matplotlib and friends load after the flags are parsed

        build_report(folders, args.html, datasets=args.datasets, colormap=args.colormap, alpha=args.alpha)
    if figures:
        from .draw import draw

        draw(folders[0], args.out, images="all" if args.images is None else args.images, gif=args.gif,
             mp4=args.mp4, colormap=args.colormap, alpha=args.alpha, datasets=args.datasets,
             maps=parse_maps(args.maps), max_frames=args.max_frames)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
