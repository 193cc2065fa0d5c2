#!/usr/bin/env bash
# The GPU check of the README's "Every forward at device speed": CLIP ViT-L/14's architecture
# (random init: the cost does not depend on the weights) at N = 49, greedy / bidirectional /
# fast, fp32 vs bf16, one and eight images at once; then the search benchmark on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" -m submodular_attribution.benchmark_engine --device cuda --model open_clip:ViT-L-14 --regions 49 \
    --searches greedy bidirectional fast --precision fp32 bf16 --images-at-once 1 8 --batch-size 128
"$PY" -m submodular_attribution.benchmark_engine --device cuda --regions 49 100 --precision fp32 bf16 \
    --images-at-once 1 8 --channels-last
# the engine's own cost per search step on the GPU (launches and host syncs): a model that costs nothing
"$PY" -m submodular_attribution.benchmark_engine --device cuda --model null --regions 49 \
    --searches greedy staged fast --images-at-once 8
"$PY" -m evals.benchmark_search --device cuda --models cnn --batch-size 128
