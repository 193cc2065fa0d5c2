"""VGGSound (309 classes) with zero-shot ImageBind (``imagebind_huge``, audio), on a time × frequency grid.

    python -m submodular_attribution.smdl_explanation_vggsound_imagebind --eval-list my_vggsound_list.txt \\
        --datasets /data/vggsound/test

List lines are ``<sound file> <class index>`` (WAV; FLAC and others with the ``soundfile``
package). Each file becomes ImageBind's three 2-second clips, each a 128 × 204 log-mel filterbank
(:mod:`submodular_attribution.adapters.imagebind_audio`), stacked as the three channels of a
128 × 204 image (top row = highest mel bin); a region is the same time–frequency patch in all
three clips, as in the original, and a removed region is digital silence (the original filled it
with the dataset's mean level). Regions: a grid of 20-px cells, 6 × 10 = 60 patches (the original:
8 × 8 = 64; ``--region-size 16`` gives 8 × 13). Published λ (conf, eff, cons, colla): 0.01, 0.05,
20, 5, with the bidirectional search and 12 pending samples (the defaults here).
"""
from .cli import task_entry

TASK, main = task_entry("vggsound_imagebind")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
