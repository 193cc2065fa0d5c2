"""VGGFace2 identities with an IR-ResNet face model on 112×112 aligned faces.

    python -m submodular_attribution.smdl_explanation_vggface2 --eval-list datasets/face_samples.txt

Published λ (conf, eff, cons, colla): 1, 200, 10, 1.
"""
import sys

from .cli import FACE_REGIONS, SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("vggface2"), weights=Weights(1.0, 200.0, 10.0, 1.0),
                save_dir="vggface2-iresnet100", **FACE_REGIONS)


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
