#!/usr/bin/env bash
# Grounding targets (image, box, phrase) on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/grounding_multigpu.sh --checkpoint ckpt/grounding-dino-tiny --eval-list phrases.txt
exec "$(dirname "$0")/torchrun_task.sh" grounding "$@"
