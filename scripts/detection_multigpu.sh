#!/usr/bin/env bash
# Detection targets on every GPU of this machine (NPROC to choose; NNODES/NODE_RANK/MASTER_ADDR for several).
# Example: NPROC=4 scripts/detection_multigpu.sh --model fasterrcnn_resnet50_fpn --weights COCO_V1 --eval-list boxes.txt
exec "$(dirname "$0")/torchrun_task.sh" detection "$@"
