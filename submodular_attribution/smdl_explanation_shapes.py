"""SMDL on the embedded default: synthetic shapes over real photos, explained with a small CNN.

    python -m submodular_attribution.smdl_explanation_shapes --search bidirectional

With the default ``--eval-list`` it generates the evaluation set under ``datasets/shapes/``;
with the default ``--checkpoint`` it loads the shipped CNN (``ckpt/embedded/shapes_cnn.pt``).
λ defaults are the published single-modal classifier setting (conf 0.01, eff 0, cons 20,
colla 5); 112×112 inputs with SLICO region size 16 give about 49 regions.
"""
from .cli import task_entry

TASK, main = task_entry("shapes")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
