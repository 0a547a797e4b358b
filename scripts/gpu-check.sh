#!/usr/bin/env bash
# Run manygrad's whole test suite on the GPU and the benchmarks, from the source tree.
# Usage (on a machine with an NVIDIA GPU, CuPy and PyTorch installed):
#   bash scripts/gpu-check.sh [OUT_DIR]
# Results go to OUT_DIR (default: $OUT, else ./gpu-check-out): full pytest log, benchmark
# tables and JSON; copy the figures into benchmarks/RESULTS.md with the GPU's name.
# Time limits (op tables 170 s, doctor 30 s, fused kernels 130 s, fused wiring 60 s, training
# bench 60 s, manygrad bench 90 s, CUDA graphs 40 s: 580 s at most) keep the whole run under
# about 10 minutes; every step writes its log as it goes, so a step cut short by its limit
# still leaves what it had done. A relative OUT_DIR is taken from the current folder. PYTHON picks
# the interpreter (default: python3). Wheels in .whl/ (nvmath-python, cudnn-frontend) are
# installed into /tmp/site first when present (a machine with no package index).
set -uo pipefail
out="${1:-${OUT:-gpu-check-out}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.."
py="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH=src PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if ls .whl/*.whl >/dev/null 2>&1; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=src:/tmp/site
fi
export MPLCONFIGDIR="$out/.cache/matplotlib" CUPY_CACHE_DIR="$out/.cache/cupy"
trap 'rm -rf "$out/.cache"' EXIT  # the caches are no result, also when the run stops early
{
  echo "# gpu-check $(date -u +%FT%TZ) with $py"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$py" -c "import manygrad as mg; print('cuda available:', mg.cuda.is_available(), mg.cuda.why_unavailable())"
} 2>&1 | tee "$out/machine.txt"
if ! "$py" -c "import manygrad as mg, sys; sys.exit(0 if mg.cuda.is_available() else 1)"; then
  echo "no usable GPU: nothing to check" | tee -a "$out/machine.txt"
  exit 1
fi
status=0
# STEPS picks the steps (default: all of tests kernels wiring train bench graphs)
steps=" ${STEPS:-tests kernels wiring train bench graphs} "
has() { [[ "$steps" == *" $1 "* ]]; }
# the op tables compare the GPU with PyTorch and finite differences (pytest-xdist's workers
# share the GPU when it is installed); -x stops nothing
xdist=$("$py" -c "import xdist" 2>/dev/null && echo "-n 8" || true)
if has tests; then
  MANYGRAD_TEST_DEVICES=cuda timeout 170 "$py" -m pytest -q -rfEs -p no:cacheprovider $xdist \
    tests/ops tests/autograd tests/kernels tests/cuda tests/nn tests/test_devices.py \
    > "$out/pytest-cuda.txt" 2>&1 || status=1
  tail -n 30 "$out/pytest-cuda.txt"
  # the whole-sequence LSTM/GRU op (off on cuda until this passes) against PyTorch
  MANYGRAD_FAST_PATHS=rnn.sequence MANYGRAD_TEST_DEVICES=cuda timeout 60 "$py" -m pytest -q \
    -rfEs -p no:cacheprovider tests/nn/test_rnn_fused.py > "$out/pytest-cuda-rnn.txt" 2>&1 || status=1
  tail -n 5 "$out/pytest-cuda-rnn.txt"
fi
# the NVRTC compile check, then every fused kernel (manygrad.kernels) against its NumPy twin,
# timed against the unfused CuPy path: the log and Markdown table in kernels.txt, kernels.json
if has kernels; then
  {
    timeout 30 "$py" -m manygrad doctor --kernels || status=1
    timeout 130 "$py" -m manygrad.kernels.gpucheck --out "$out" || status=1
  } > "$out/kernels.txt" 2>&1
  cat "$out/kernels.txt"
fi
# each op and optimizer wired to a fused kernel against the plain CuPy code (fused-wiring.txt)
if has wiring; then
  timeout 60 "$py" scripts/fused_wiring_check.py > "$out/fused-wiring.txt" 2>&1 || status=1
  cat "$out/fused-wiring.txt"
fi
# training steps against PyTorch on the GPU (same models, interleaved steps)
if has train; then
  timeout 60 "$py" benchmarks/train.py --device cuda --quick > "$out/bench-train.txt" 2>&1 \
    || status=1
  cat "$out/bench-train.txt"
fi
# CPU against GPU, with PyTorch beside: GEMM fp32/fp16/bf16, bandwidth, conv2d, training
# steps over batch sizes, host<->device copies; JSON, Markdown and charts in $out/bench
if has bench; then
  timeout 90 "$py" -m manygrad bench --quick --device cpu,cuda:0 --compare torch \
    --out "$out/bench" > "$out/manygrad-bench.txt" 2>&1 || status=1
  tail -n 40 "$out/manygrad-bench.txt"
fi
# CUDA graphs on the GPU: capture, replay, eager vs replayed step times (docs/cuda-graphs.md)
if has graphs; then
  MANYGRAD_CUDA_GRAPHS=1 timeout 40 "$py" scripts/cuda_graphs_check.py \
    > "$out/cuda-graphs.txt" 2>&1 || status=1
  cat "$out/cuda-graphs.txt"
fi
exit $status
