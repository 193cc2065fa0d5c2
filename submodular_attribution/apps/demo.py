"""``make demo``: the whole pipeline on the embedded default, end to end on CPU.

Loads the shipped shapes CNN, explains the default evaluation images with exact greedy,
the bidirectional search, the staged and fast searches and a random ordering of the same
regions, evaluates each result folder, prints one table, and writes figures; then compares SMDL with a few
baseline methods on every metric (``evals.benchmark``). Reruns reuse finished results.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from evals import benchmark
from evals.auc import summarize_run
from evals.localization import first_regions_hit
from visualization.overlay import save_curves_figure, save_explanation_figure
from visualization.report import build_report

from ..cli import get_args_parser, run
from ..common import paths
from ..common.curves import deletion_curve, insertion_curve
from ..common.images import load_image_rgb
from ..common.results import iter_results
from ..families import SHAPES_LIST
from ..shapes import CLASS_NAMES, load_mask, write_eval_set
from ..smdl_explanation_shapes import TASK

SEARCH_LABELS = {"greedy": "SMDL exact greedy", "bidirectional": "SMDL bidirectional (p=8)",
                 "staged": "SMDL staged", "fast": "SMDL fast", "random": "random order (control)"}


def get_demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=20, help="images in the default evaluation set")
    parser.add_argument("--save-dir", default=str(paths.results_dir() / "shapes-demo"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--figures", type=int, default=3, help="images to draw explanation figures for")
    parser.add_argument("--benchmark-methods", default="smdl,gradcam,ig,rise",
                        help="methods compared by evals.benchmark at the end")
    return parser


def _pointing(run_dir: Path, list_root: Path) -> float:
    hits = [first_regions_hit(r.npy, load_mask(list_root / r.record["image"])) for r in iter_results(run_dir)]
    return float(np.mean(hits))


def main(argv=None) -> int:
    opts = get_demo_parser().parse_args(argv)
    list_path = write_eval_set((paths.home() / SHAPES_LIST).parent, n=opts.num_images)
    save_dir = Path(opts.save_dir)
    rows, curves = [], {}
    for search in SEARCH_LABELS:
        args = get_args_parser(TASK).parse_args(
            ["--eval-list", str(list_path), "--search", search, "--save-dir", str(save_dir), "--device", opts.device])
        run_dir = run(TASK, args).run_dir
        summary = summarize_run(run_dir)
        results = list(iter_results(run_dir))
        curves[search] = {"insertion": [insertion_curve(r) for r in results],
                          "deletion": [deletion_curve(r) for r in results]}
        rows.append((SEARCH_LABELS[search], summary, _pointing(run_dir, list_path.parent), run_dir))

    print(f"\nShapes benchmark: {rows[0][1]['num_images']} images, classes {', '.join(CLASS_NAMES)}")
    header = f"{'ordering':<26} {'Insertion AUC ↑':>15} {'Deletion AUC ↓':>15} {'forwards/img':>13} " \
             f"{'s/img':>7} {'1st region on object':>21}"
    print(header)
    print("-" * len(header))
    for label, s, pointing, _ in rows:
        print(f"{label:<26} {s['insertion_auc']:>15.4f} {s['deletion_auc']:>15.4f} "
              f"{s['forward_passes']:>13.0f} {s['seconds']:>7.2f} {pointing:>21.0%}")

    figures = save_dir / "figures"
    for kind in ("insertion", "deletion"):
        save_curves_figure({SEARCH_LABELS[k]: v[kind] for k, v in curves.items()},
                           figures / f"mean_{kind}_curves.png", kind=kind)
    greedy_dir = rows[0][3]
    for result in list(iter_results(greedy_dir))[: opts.figures]:
        image = load_image_rgb(list_path.parent / result.record["image"])
        name = Path(result.record["image"]).stem
        save_explanation_figure(image, result, figures / f"{name}.png",
                                title=f"{name}: exact greedy, target {CLASS_NAMES[result.record['target']]}")
    print("\nSMDL beside baseline methods on the same images (every metric, mean ± standard error):")
    benchmark.main(["--model", "default", "--methods", opts.benchmark_methods, "--eval-list", str(list_path),
                    "--search", "bidirectional", "--device", opts.device,
                    "--output-dir", str(save_dir / "benchmark")])
    build_report([r[3] for r in rows], save_dir / "report", datasets=list_path.parent)
    print(f"\nResult folders: {', '.join(str(r[3]) for r in rows)}")
    print(f"Figures: {figures}/  (mean curves and per-image explanations)")
    print(f"Report: {save_dir / 'report' / 'index.html'}  (every image of every ordering, offline; open it in a browser)")
    print(f"Evaluate any folder: python -m evals.eval_AUC_faithfulness --explanation-dir {greedy_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
