"""VGGFace2 identities with an IR-ResNet face model on 112×112 aligned faces.

    python -m submodular_attribution.smdl_explanation_vggface2 --eval-list datasets/face_samples.txt

Published λ (conf, eff, cons, colla): 1, 200, 10, 1.
"""
from .cli import task_entry

TASK, main = task_entry("vggface2")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
