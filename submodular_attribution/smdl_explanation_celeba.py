"""CelebA identities with an IR-ResNet face model on 112×112 aligned faces.

    python -m submodular_attribution.smdl_explanation_celeba --eval-list datasets/face_samples.txt

Published λ (conf, eff, cons, colla): 1, 1, 1, 1. Pass --uncertainty-head for the EDL
confidence term; without it confidence is the entropy form.
"""
import sys

from .cli import main as cli_main
from .families import face_task
from .objective import Weights

TASK = face_task(
    name="celeba", description=__doc__.split("\n\n")[0], checkpoint="celeba-iresnet100.pth",
    prototypes="celeba-prototypes.pt", weights=Weights(1.0, 1.0, 1.0, 1.0), save_dir="celeba-iresnet100")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
