"""ImageNet with the zero-shot LanguageBind image tower, SLICO superpixels.

    python -m submodular_attribution.smdl_explanation_imagenet_languagebind --eval-list datasets/imagenet_samples.txt

Needs the ``languagebind`` package (core dependencies only: requirements-languagebind.txt) and the
LanguageBind_Image release in ``ckpt/LanguageBind_Image/`` (see
:mod:`submodular_attribution.adapters.languagebind`). Published λ (conf, eff, cons, colla): 1, 1, 1, 1
for the greedy and the bidirectional search alike.
"""
from .cli import task_entry

TASK, main = task_entry("imagenet_languagebind")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
