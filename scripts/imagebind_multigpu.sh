#!/usr/bin/env bash
# The original SMDL-Attribution's launcher of this name: imagenet_imagebind on every GPU of this machine
# (NPROC etc. as for torchrun_task.sh; what differs from the original: docs/original_code.md).
echo "scripts/imagebind_multigpu.sh is the original's name of: scripts/multigpu.sh imagenet_imagebind" >&2
exec "$(dirname "$0")/torchrun_task.sh" imagenet_imagebind "$@"
