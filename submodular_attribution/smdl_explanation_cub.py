"""CUB-200-2011 birds with a fine-tuned ResNet-101 classifier.

    python -m submodular_attribution.smdl_explanation_cub --eval-list my_cub_list.txt --datasets /data/CUB_200_2011/images

Published λ (conf, eff, cons, colla): 1, 1, 1, 1; the effectiveness term uses the pooled
penultimate features.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("cub"), weights=Weights(1.0, 1.0, 1.0, 1.0), save_dir="cub-resnet101")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
