"""ImageNet with a zero-shot CLIP model (default ViT-L/14); superpixel or SAM regions.

    python -m submodular_attribution.smdl_explanation_imagenet_clip --eval-list datasets/imagenet_samples.txt
    python -m submodular_attribution.smdl_explanation_imagenet_clip --division sam --sam-masks datasets/sam_masks/imagenet_samples

Published λ (conf, eff, cons, colla): 0, 0.05, 1, 1 for exact greedy; 0, 0.05, 20, 1 for the
bidirectional search.
"""
from .cli import task_entry

TASK, main = task_entry("imagenet_clip")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
