#!/usr/bin/env bash
# Download the GPU libraries' wheels that a machine without a package index lacks
# (nvmath-python for cuBLASLt, nvidia-cudnn-frontend for cuDNN graphs) into .whl/, for
# scripts/gpu-check.sh to install there. PY_VERSION is the GPU machine's Python (default 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python -m pip download -q --only-binary=:all: --no-deps \
  --python-version "${PY_VERSION:-3.12}" \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  -d .whl nvmath-python nvidia-cudnn-frontend
ls .whl
