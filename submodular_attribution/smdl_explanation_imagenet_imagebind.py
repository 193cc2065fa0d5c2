"""ImageNet with zero-shot ImageBind (``imagebind_huge``, vision), SLICO superpixels.

    python -m submodular_attribution.smdl_explanation_imagenet_imagebind --eval-list datasets/imagenet_samples.txt

Needs the ``imagebind`` package installed from its repository and ``ckpt/imagebind_huge.pth``
(see :mod:`submodular_attribution.adapters.imagebind`). Published λ (conf, eff, cons, colla):
0.01, 0.05, 20, 10 for exact greedy; 0, 1, 1, 10 for the bidirectional search.
"""
from .cli import task_entry

TASK, main = task_entry("imagenet_imagebind")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
