#!/usr/bin/env bash
# Runs one task (python -m submodular_attribution <task>) with one worker per GPU through torchrun; each rank
# explains its share of the evaluation list into the same result folder.
#   scripts/torchrun_task.sh <task> [script flags...]
# Environment: NPROC (workers on this machine; default: number of GPUs, or 1 without GPUs, where
# NPROC CPU workers run instead), NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT for several machines.
set -euo pipefail
task="$1"; shift
gpus=$(nvidia-smi -L 2>/dev/null | wc -l || true)
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="${NPROC:-$(( gpus > 0 ? gpus : 1 ))}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    -m submodular_attribution "$task" "$@"
