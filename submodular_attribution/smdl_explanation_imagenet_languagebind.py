"""ImageNet with the zero-shot LanguageBind image tower, SLICO superpixels.

    python -m submodular_attribution.smdl_explanation_imagenet_languagebind --eval-list datasets/imagenet_samples.txt

Needs the ``languagebind`` package (core dependencies only: requirements-languagebind.txt) and the
LanguageBind_Image release in ``ckpt/LanguageBind_Image/`` (see
:mod:`submodular_attribution.adapters.languagebind`). Published λ (conf, eff, cons, colla): 1, 1, 1, 1
for the greedy and the bidirectional search alike.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("imagenet_languagebind"), weights=Weights(1.0, 1.0, 1.0, 1.0), save_dir="imagenet-languagebind")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
