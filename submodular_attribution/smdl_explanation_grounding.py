"""SMDL for grounding models: which regions make the model find this phrase in this box.

    python -m submodular_attribution.smdl_explanation_grounding --checkpoint ckpt/grounding-dino-tiny \\
        --eval-list my_phrases.txt

List lines: ``<relative image path> <x1> <y1> <x2> <y2> <phrase>`` (or path, box and phrase
separated by tabs). The model folder holds a Grounding DINO model and its processor saved with
``save_pretrained`` (e.g. a local copy of IDEA-Research/grounding-dino-tiny); nothing is downloaded.
"""
import sys

from .detection_cli import GROUNDING, main as cli_main


def main(argv=None) -> int:
    return cli_main(GROUNDING, argv)


if __name__ == "__main__":
    sys.exit(main())
