#!/usr/bin/env bash
# vggface2 on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/vggface2_multigpu.sh --search bidirectional
exec "$(dirname "$0")/torchrun_task.sh" vggface2 "$@"
