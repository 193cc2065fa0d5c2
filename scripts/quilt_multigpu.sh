#!/usr/bin/env bash
# quilt on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/quilt_multigpu.sh --search bidirectional
exec "$(dirname "$0")/torchrun_task.sh" quilt "$@"
