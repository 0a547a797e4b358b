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
MANYGRAD_TEST_DEVICES=cuda timeout 420 python -m pytest -q -x tests \
  -p no:cacheprovider 2>&1 | tail -n 60 | tee "$out/pytest-cuda.txt" || status=1
for b in ops train; do
  if [ -f "benchmarks/$b.py" ]; then
    timeout 120 python "benchmarks/$b.py" --device cuda --quick 2>&1 | tee "$out/bench-$b.txt" || status=1
  fi
done
if python -c "import manygrad.cli.bench" 2>/dev/null; then
  timeout 180 python -m manygrad bench --quick --out "$out/bench" 2>&1 | tee "$out/manygrad-bench.txt" || status=1
fi
exit $status
