#!/usr/bin/env bash
# Run on a machine with pip access, before a GPU session whose Python (3.12, torch, timm,
# scikit-learn and scipy already installed, nothing downloadable) lacks what
# scripts/device_benchmark.sh imports: puts those wheels in .whl/ (ignored by git here), to be
# carried to the GPU machine, where device_benchmark.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl open_clip_torch ftfy wcwidth
ls -l .whl
