"""Area-based insertion / deletion AUC of one result folder (spec §7).

    python -m evals.eval_AUC_faithfulness --explanation-dir <save-dir>/<config> [--json [--per-image]] [--strict]

stdout holds the original tool's two lines (``Insertion AUC Score: 0.xxxx`` and
``Deletion AUC Score: 0.xxxx``), then, with ``--json``, one JSON line of the summary
(see :func:`evals.auc.summarize_run`). An unreadable or incomplete result JSON is skipped
with one warning line naming it and counted (``skipped``); ``--strict`` makes it an error.
The image count and the progress go to stderr. Bad input prints one ``error: ...`` line on
stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from evals.auc import summarize_run
from submodular_attribution.common.errors import run_reporting_input_errors


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Insertion / deletion AUC (area axis) of an SMDL result folder.")
    parser.add_argument(
        "--explanation-dir", required=True, help="run folder holding json/<class>/*.json and npy/<class>/*.npy"
    )
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    parser.add_argument("--per-image", action="store_true", help="include per-image AUCs in the JSON line (implies --json)")
    parser.add_argument("--strict", action="store_true",
                        help="an unreadable or incomplete result file is an error instead of a skipped warning")
    return parser


def run(args: argparse.Namespace) -> int:
    summary = summarize_run(args.explanation_dir, progress=True, strict=args.strict)
    skipped = f", {summary['skipped']} skipped" if summary["skipped"] else ""
    print(f"{args.explanation_dir}: {summary['num_images']} images{skipped}", file=sys.stderr)
    print(f"Insertion AUC Score: {summary['insertion_auc']:.4f}")
    print(f"Deletion AUC Score: {summary['deletion_auc']:.4f}")
    if args.json or args.per_image:
        if not args.per_image:
            summary = {k: v for k, v in summary.items() if k != "per_image"}
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
