"""SMDL on the embedded default: synthetic shapes over real photos, explained with a small CNN.

    python -m submodular_attribution.smdl_explanation_shapes --search bidirectional

With no ``--eval-list`` it generates the default evaluation set under ``datasets/shapes/``;
with no ``--checkpoint`` it trains the CNN once (about a minute on CPU) into ``ckpt/``.
λ defaults are the published single-modal classifier setting (conf 0.01, eff 0, cons 20,
colla 5); 112×112 inputs with SLICO region size 16 give about 49 regions.
"""
from __future__ import annotations

import argparse
import sys

import torch

from .cli import TaskConfig, main as cli_main
from .data import InputError
from .distributed import file_lock
from .objective import Weights
from .results import REPO_ROOT
from .shapes import DEFAULT_CKPT, IMAGE_SIZE, build_scorer, load_or_train_default, write_eval_set

DEFAULT_LIST = REPO_ROOT / "datasets" / "shapes" / "eval_list.txt"


def _scorer(args: argparse.Namespace, device: torch.device):
    try:
        with file_lock(args.checkpoint):  # under torchrun, one rank trains and the others reuse it
            net, _ = load_or_train_default(args.checkpoint, device=device, seed=0)
    except RuntimeError as err:
        raise InputError(str(err)) from None
    return build_scorer(net, device)


def _prepare(args: argparse.Namespace) -> None:
    if str(args.eval_list) == str(DEFAULT_LIST):
        with file_lock(DEFAULT_LIST):
            write_eval_set(DEFAULT_LIST.parent)


TASK = TaskConfig(
    name="shapes",
    description=__doc__.split("\n\n")[0],
    build_scorer=_scorer,
    input_size=(IMAGE_SIZE, IMAGE_SIZE),
    region_size=16,
    weights=Weights(confidence=0.01, effectiveness=0.0, consistency=20.0, collaboration=5.0),
    save_dir=str(REPO_ROOT / "submodular_results" / "shapes-cnn"),
    eval_list=str(DEFAULT_LIST),
    checkpoint=str(DEFAULT_CKPT),
    prepare=_prepare,
)


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
