#!/usr/bin/env bash
# The GPU check of docs/engine.md: CLIP ViT-L/14's architecture
# (random init: the cost does not depend on the weights) at N = 49, greedy / bidirectional /
# fast, fp32 vs bf16, one and eight images at once; the default CNN; the engine's own cost per
# step (a model that costs nothing); then the search benchmark, where SLICO is available.
# Wheels from scripts/device_wheels.sh in .whl/ are installed first (open_clip).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
DEVICE=${DEVICE:-cuda}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" -m submodular_attribution.benchmark_engine --device "$DEVICE" --model open_clip:ViT-L-14 --regions 49 \
    --searches greedy bidirectional fast --precision fp32 bf16 --images-at-once 1 8 --batch-size 128
"$PY" -m submodular_attribution.benchmark_engine --device "$DEVICE" --regions 49 100 --precision fp32 bf16 \
    --images-at-once 1 8 --channels-last
# the engine's own cost per search step on the GPU (launches and host reads): a model that costs nothing
"$PY" -m submodular_attribution.benchmark_engine --device "$DEVICE" --model null --regions 49 \
    --searches greedy staged fast --images-at-once 8
if "$PY" -c "import cv2; cv2.ximgproc.createSuperpixelSLIC" 2>/dev/null; then
    "$PY" -m evals.benchmark_search --device "$DEVICE" --models cnn --batch-size 128
else
    echo "skipped evals.benchmark_search: its SLICO divisions need opencv-contrib-python (cv2.ximgproc)," \
         "whose wheel (~89 MB) is more than a device run can carry"
fi
