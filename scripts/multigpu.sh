#!/usr/bin/env bash
# Any registered task on every GPU of this machine: scripts/multigpu.sh <task> [flags...]
# (python -m submodular_attribution --help lists the tasks). Environment as for torchrun_task.sh.
exec "$(dirname "$0")/torchrun_task.sh" "$@"
