"""SMDL on the embedded audio default: synthetic sound events over background noise, explained
on their log-mel spectrogram with a small CNN.

    python -m submodular_attribution.smdl_explanation_audio --search fast

Each list item is a 16 kHz WAV file (other formats need ``soundfile``); the task reads it as an 80 × 80 spectrogram image (mel
bands × 25-ms frames, low frequencies at the bottom, [0, 1] between -80 and 0 dBFS:
:mod:`submodular_attribution.audio.features`), so a removed region is silence. With the default
``--eval-list`` it writes the evaluation clips and their event masks under ``datasets/audio/``;
with the default ``--checkpoint`` it loads the shipped CNN (``ckpt/embedded/audio_cnn.pt``).

Regions: a time × frequency grid of 10-px cells, 8 × 8 = 64 patches (``--region-size 10`` or
``--num-regions 64``); the published 10 × 10 grid is ``--region-size 8`` (``--num-regions 100``);
superpixels of the spectrogram image with ``--division slico``. λ: the published single-modal
classifier setting (conf 0.01, eff 0, cons 20, colla 5).
"""
from .cli import task_entry

TASK, main = task_entry("audio")  # the task registry's entry (tasks.py), run by the shared command line

if __name__ == "__main__":
    raise SystemExit(main())
