"""SMDL for object detectors: which regions make the model find this box.

    python -m submodular_attribution.smdl_explanation_detection            # the embedded default
    python -m submodular_attribution.smdl_explanation_detection --model fasterrcnn_resnet50_fpn \\
        --checkpoint ckpt/my-detector.pth --num-classes 3 --eval-list my_boxes.txt

List lines: ``<relative image path> <x1> <y1> <x2> <y2> <class index or name>`` (box corners in
the image's pixels). With the default ``--eval-list`` the shapes detection set is generated
under ``datasets/detection/`` and the default detector trained once into ``ckpt/`` (CPU, a few
minutes). λ: consistency 1, collaboration 1 (confidence and effectiveness do not apply).
"""
import sys

from .detection_cli import DETECTION, main as cli_main


def main(argv=None) -> int:
    return cli_main(DETECTION, argv)


if __name__ == "__main__":
    sys.exit(main())
