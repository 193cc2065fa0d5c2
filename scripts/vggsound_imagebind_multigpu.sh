#!/usr/bin/env bash
# vggsound_imagebind on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/vggsound_imagebind_multigpu.sh --search bidirectional --pending-samples 12
exec "$(dirname "$0")/torchrun_task.sh" vggsound_imagebind "$@"
