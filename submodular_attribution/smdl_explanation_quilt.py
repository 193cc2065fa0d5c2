"""LC25000 lung histopathology with QuiltNet (open_clip ViT-B-32, zero-shot).

    python -m submodular_attribution.smdl_explanation_quilt --eval-list datasets/lc25000_samples.txt

λ (conf, eff, cons, colla): 0, 0.05, 1, 1, the CLIP setting.
"""
from .cli import task_entry

TASK, main = task_entry("quilt")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
