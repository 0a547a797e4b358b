#!/usr/bin/env bash
# Run manygrad's whole test suite on the GPU and the benchmarks, from the source tree.
# Usage (on a machine with an NVIDIA GPU, CuPy and PyTorch installed):
#   bash scripts/gpu-check.sh [OUT_DIR]
# Results go to OUT_DIR (default: $OUT, else ./gpu-check-out): pytest log, benchmark
# tables and JSON; copy the figures into benchmarks/RESULTS.md with the GPU's name.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check-out}}"
mkdir -p "$out"
export PYTHONPATH=src
{
  echo "# gpu-check $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  python -c "import manygrad as mg; print('cuda available:', mg.cuda.is_available(), mg.cuda.why_unavailable())"
} | tee "$out/machine.txt"
if ! python -c "import manygrad as mg, sys; sys.exit(0 if mg.cuda.is_available() else 1)"; then
  echo "no usable GPU: nothing to check" | tee -a "$out/machine.txt"
  exit 1
fi
status=0
MANYGRAD_TEST_DEVICES=cuda timeout 420 python -m pytest -q tests \
  -p no:cacheprovider 2>&1 | tail -n 60 | tee "$out/pytest-cuda.txt" || status=1
# training steps against PyTorch on the GPU (same models, interleaved steps)
timeout 150 python benchmarks/train.py --device cuda --quick 2>&1 | tee "$out/bench-train.txt" || status=1
# CPU against GPU, with PyTorch beside: GEMM fp32/fp16/bf16, bandwidth, conv2d, training
# steps over batch sizes, host<->device copies; JSON, Markdown and charts in $out/bench
timeout 240 python -m manygrad bench --quick --compare torch --out "$out/bench" 2>&1 \
  | tee "$out/manygrad-bench.txt" || status=1
exit $status
