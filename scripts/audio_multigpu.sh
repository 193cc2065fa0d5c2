#!/usr/bin/env bash
# The embedded audio default on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=2 scripts/audio_multigpu.sh --search fast
exec "$(dirname "$0")/torchrun_task.sh" audio "$@"
