#!/usr/bin/env bash
# imagenet_imagebind on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/imagenet_imagebind_multigpu.sh --search bidirectional
exec "$(dirname "$0")/torchrun_task.sh" imagenet_imagebind "$@"
