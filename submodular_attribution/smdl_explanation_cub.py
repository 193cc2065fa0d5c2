"""CUB-200-2011 birds with a fine-tuned ResNet-101 classifier.

    python -m submodular_attribution.smdl_explanation_cub --eval-list my_cub_list.txt --datasets /data/CUB_200_2011/images

Published λ (conf, eff, cons, colla): 1, 1, 1, 1; the effectiveness term uses the pooled
penultimate features.
"""
from .cli import task_entry

TASK, main = task_entry("cub")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
