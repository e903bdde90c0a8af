#!/usr/bin/env bash
# One pass on a GPU machine with no network (CuPy, Cython, pytest already
# installed): build, the GPU tests, the GPU benchmark, then the CPU suite
# under that machine's NumPy when CPU_SUITE is set.  Logs and results go to $1 (default
# benchmarks/results).  Usage: bash benchmarks/gpu_check.sh [OUTDIR]
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
$py -c "import sys, numpy, cupy, Cython; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'cython', Cython.__version__)"
$py -m pip install -q --no-build-isolation --no-deps --no-index -e . || exit 1
$py -m relu_ufunc 2>&1 | tail -n 12
set -o pipefail
timeout 300 $py -m pytest -q -rs tests/test_cuda.py tests/test_cuda_header.py 2>&1 | tee "$out/gpu-tests.log" | tail -n 30
timeout 420 $py -m benchmarks.gpu --out "$out" 2>&1 | tee "$out/gpu-bench.log" | grep -v " done$"
if [ -n "$CPU_SUITE" ]; then
  timeout 240 $py -m pytest -q -p no:cacheprovider > "$out/cpu-suite-on-gpu-machine.log" 2>&1
  tail -n 8 "$out/cpu-suite-on-gpu-machine.log"
fi
