"""ImageNet with a single-modal classifier (any torchvision name, or timm:<name> for ViT/Swin).

    python -m submodular_attribution.smdl_explanation_imagenet_classifier --arch resnet101 \
        --checkpoint ckpt/resnet101-imagenet.pth --eval-list datasets/imagenet_samples.txt

Published λ for single-modal classifiers (conf, eff, cons, colla): 0.01, 0, 20, 5.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("imagenet_classifier"), weights=Weights(0.01, 0.0, 20.0, 5.0),
                save_dir="imagenet-classifier")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
