"""CelebA identities with an IR-ResNet face model on 112×112 aligned faces.

    python -m submodular_attribution.smdl_explanation_celeba --eval-list datasets/face_samples.txt

Published λ (conf, eff, cons, colla): 1, 1, 1, 1. Pass --uncertainty-head for the EDL
confidence term; without it confidence is the entropy form.
"""
from .cli import task_entry

TASK, main = task_entry("celeba")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
