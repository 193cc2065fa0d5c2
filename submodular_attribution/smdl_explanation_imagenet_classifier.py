"""ImageNet with a single-modal classifier (any torchvision name, or timm:<name> for ViT/Swin).

    python -m submodular_attribution.smdl_explanation_imagenet_classifier --arch resnet101 \
        --checkpoint ckpt/resnet101-imagenet.pth --eval-list datasets/imagenet_samples.txt

Published λ for single-modal classifiers (conf, eff, cons, colla): 0.01, 0, 20, 5.
"""
from .cli import task_entry

TASK, main = task_entry("imagenet_classifier")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
