"""ImageNet with a zero-shot CLIP model (default ViT-L/14); superpixel or SAM regions.

    python -m submodular_attribution.smdl_explanation_imagenet_clip --eval-list datasets/imagenet_samples.txt
    python -m submodular_attribution.smdl_explanation_imagenet_clip --division sam --sam-masks datasets/sam_masks/imagenet_samples

Published λ (conf, eff, cons, colla): 0, 0.05, 1, 1 for exact greedy; 0, 0.05, 20, 1 for the
bidirectional search.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("imagenet_clip"), weights=Weights(0.0, 0.05, 1.0, 1.0),
                weights_by_search={"bidirectional": Weights(0.0, 0.05, 20.0, 1.0)}, save_dir="imagenet-clip-vitl")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
