"""ImageNet with zero-shot ImageBind (``imagebind_huge``, vision), SLICO superpixels.

    python -m submodular_attribution.smdl_explanation_imagenet_imagebind --eval-list datasets/imagenet_samples.txt

Needs the ``imagebind`` package installed from its repository and ``ckpt/imagebind_huge.pth``
(see :mod:`submodular_attribution.adapters.imagebind`). Published λ (conf, eff, cons, colla):
0.01, 0.05, 20, 10 for exact greedy; 0, 1, 1, 10 for the bidirectional search.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("imagenet_imagebind"), weights=Weights(0.01, 0.05, 20.0, 10.0),
                weights_by_search={"bidirectional": Weights(0.0, 1.0, 1.0, 10.0)}, save_dir="imagenet-imagebind")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
