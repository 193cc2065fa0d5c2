"""CelebA identities with an IR-ResNet face model on 112×112 aligned faces.

    python -m submodular_attribution.smdl_explanation_celeba --eval-list datasets/face_samples.txt

Published λ (conf, eff, cons, colla): 1, 1, 1, 1. Pass --uncertainty-head for the EDL
confidence term; without it confidence is the entropy form.
"""
import sys

from .cli import FACE_REGIONS, SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("celeba"), weights=Weights(1.0, 1.0, 1.0, 1.0), save_dir="celeba-iresnet100",
                **FACE_REGIONS)


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
