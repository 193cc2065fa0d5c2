"""LC25000 lung histopathology with QuiltNet (open_clip ViT-B-32, zero-shot).

    python -m submodular_attribution.smdl_explanation_quilt --eval-list datasets/lc25000_samples.txt

λ (conf, eff, cons, colla): 0, 0.05, 1, 1, the CLIP setting.
"""
import sys

from .cli import SMDLTask, main as cli_main
from .objective import Weights
from .tasks import get_model_task

TASK = SMDLTask(model=get_model_task("quilt"), weights=Weights(0.0, 0.05, 1.0, 1.0), save_dir="lc25000-quiltnet")


def main(argv=None) -> int:
    return cli_main(TASK, argv)


if __name__ == "__main__":
    sys.exit(main())
