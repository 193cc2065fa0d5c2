#!/usr/bin/env bash
# cub on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/cub_multigpu.sh --search bidirectional
exec "$(dirname "$0")/torchrun_task.sh" cub "$@"
