#!/usr/bin/env bash
# One pass on a GPU machine with no network (CuPy, Cython, pytest and
# pytest-timeout already installed), from the repository root:
#
#   bash benchmarks/gpu_check.sh OUTDIR        (default OUTDIR: benchmarks/results)
#
# 1. build the package in place (pip, no network)            at most 200 s
# 2. every GPU, header and host-side test of relu_ufunc.cuda  at most 200 s
#    (120 s per test, no -x: one failure does not hide the others)
# 3. python -m benchmarks.gpu --check: host time per call, the fused
#    bias + relu kernel, bandwidth at n = 1e6 .. 1e8          at most 150 s
# Expected about 4 minutes in all, at most 9.5 (13.5 with CPU_SUITE).  Each
# stage runs under `timeout`, so a hang costs only that stage; the benchmark
# writes its JSON and table after each of its parts.  Everything lands
# directly in OUTDIR (6 files):
#   gpu-check.log            this script's output (a summary at its end)
#   gpu-tests.log            pytest's output
#   gpu-bench.log            the benchmark's output
#   gpu-<gpu>-check.json, gpu-<gpu>-check-table.txt, gpu-<gpu>-check.png
#                            the benchmark's results (no PNG without matplotlib:
#                            then python -m benchmarks.gpu --from-json
#                            gpu-<gpu>-check.json draws it elsewhere)
# With CPU_SUITE=1 the CPU suite also runs, under this machine's NumPy
# (cpu-suite-on-gpu-machine.log).  Exit status: that of the first stage that
# failed (3: CuPy cannot be imported; 4: no usable GPU), else 0.
out=${1:-benchmarks/results}
mkdir -p "$out" || exit 1
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

status=0
stage() {   # stage NAME SECONDS LOG COMMAND...: run it under timeout (output to LOG,
            # or here for -), say how it ended, keep the first failure
    local name=$1 limit=$2 log=$3 start=$SECONDS rc
    shift 3
    echo "==== $name (at most ${limit}s)"
    if [ "$log" = - ]; then
        timeout -k 10 "$limit" "$@"
    else
        timeout -k 10 "$limit" "$@" > "$log" 2>&1
    fi
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "==== $name: TIMED OUT after ${limit}s"
    fi
    echo "==== $name: exit $rc after $((SECONDS - start))s"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
    return "$rc"
}

main() {
    date -u
    if command -v nvidia-smi > /dev/null; then
        timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
            --format=csv
    fi
    if ! timeout 60 "$py" -c "import sys, numpy, cupy; print(sys.version.split()[0], \
'numpy', numpy.__version__, 'cupy', cupy.__version__)"; then
        echo "CuPy cannot be imported by $py: nothing to check on a GPU (exit 3)"
        return 3
    fi
    timeout 60 "$py" -c "import Cython; print('cython', Cython.__version__)" || true
    timeout 60 "$py" -c "import torch; print('torch', torch.__version__, 'cuda', \
torch.version.cuda, 'available', torch.cuda.is_available())" || echo "no torch"

    stage build 200 - "$py" -m pip install -q --no-build-isolation --no-deps --no-index -e . \
        || { echo "the build failed: stopping"; return "$status"; }
    timeout 60 "$py" -m relu_ufunc 2>&1 | tail -n 4

    local gpu=0 per_test=()
    timeout 60 "$py" -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0" \
        2> /dev/null && gpu=1
    [ "$gpu" -eq 1 ] || echo "no usable GPU: the GPU tests will skip, and no benchmark"
    timeout 60 "$py" -c "import pytest_timeout" 2> /dev/null && per_test=(--timeout=120)

    stage tests 200 "$out/gpu-tests.log" "$py" -m pytest -q -rs -p no:cacheprovider \
        "${per_test[@]}" tests/test_cuda.py tests/test_cuda_host.py tests/test_cuda_header.py \
        tests/test_gpu_benchmark.py

    if [ "$gpu" -eq 1 ]; then
        stage benchmark 150 "$out/gpu-bench.log" "$py" -m benchmarks.gpu --check --out "$out"
    elif [ "$status" -eq 0 ]; then
        status=4
    fi

    if [ -n "$CPU_SUITE" ]; then
        stage cpu-suite 240 "$out/cpu-suite-on-gpu-machine.log" "$py" -m pytest -q \
            -p no:cacheprovider
        tail -n 8 "$out/cpu-suite-on-gpu-machine.log"
    fi

    echo
    echo "==== summary: tests (the rest is in gpu-tests.log)"
    grep -E "^(FAILED|ERROR)|Timeout|passed|failed|skipped" "$out/gpu-tests.log" | tail -n 40
    if [ "$gpu" -eq 1 ]; then
        echo "==== summary: benchmark (the rest is in gpu-bench.log and gpu-*-table.txt)"
        grep -E "Error|Traceback|no plot|wrote" "$out/gpu-bench.log" | tail -n 8
        local table
        table=$(ls "$out"/gpu-*-table.txt 2> /dev/null | head -n 1)
        if [ -n "$table" ]; then
            sed -n '1,/^bandwidth/p' "$table"
            sed -n '/^bandwidth/,/^---- markdown/p' "$table" | grep -E "^(relu|leaky)|n=1e8"
        fi
    fi
    echo "==== files in $out:"
    ls -l "$out"
    echo "==== gpu_check.sh: exit $status"
    return "$status"
}

main 2>&1 | tee "$out/gpu-check.log"
exit "${PIPESTATUS[0]}"
