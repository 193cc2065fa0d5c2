"""SMDL on the embedded default: synthetic shapes over real photos, explained with a small CNN.

    python -m submodular_attribution.smdl_explanation_shapes --search bidirectional

With the default ``--eval-list`` it generates the evaluation set under ``datasets/shapes/``;
with the default ``--checkpoint`` it trains the CNN once (about a minute on CPU) into ``ckpt/``.
λ defaults are the published single-modal classifier setting (conf 0.01, eff 0, cons 20,
colla 5); 112×112 inputs with SLICO region size 16 give about 49 regions.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("shapes"), region_size=16, save_dir="shapes-cnn",
                weights=Weights(confidence=0.01, effectiveness=0.0, consistency=20.0, collaboration=5.0))


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
