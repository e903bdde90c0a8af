"""Import time of each backend, and the speed of the Numba backend relative to
the Cython one, in one run.

    python benchmarks/backends.py

Import times: a fresh interpreter each, median of 5; "cold" first clears
Numba's on-disk cache of relu_ufunc's loops.  Speed: relu(x, out=y) on float32
randn data, medians of 15 repeats, both backends timed in this process.
"""
import glob
import os
import statistics
import subprocess
import sys
import timeit

import numpy as np

import relu_ufunc


def import_seconds(backend, clear_cache=False):
    pkg = os.path.dirname(relu_ufunc.__file__)
    if clear_cache:
        for f in glob.glob(os.path.join(pkg, "__pycache__", "_numba_*loops*.nb*")):
            os.remove(f)
    code = ("import time; t = time.perf_counter(); import relu_ufunc; "
            "print(time.perf_counter() - t)")
    env = {**os.environ, "RELU_UFUNC_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout)


def main():
    cold = import_seconds("numba", clear_cache=True)
    cached = statistics.median(import_seconds("numba") for _ in range(5))
    cython = statistics.median(import_seconds("cython") for _ in range(5))
    print(f"import relu_ufunc: cython {cython:.3f} s, numba cached {cached:.3f} s, "
          f"numba cold (compiling) {cold:.2f} s")

    from relu_ufunc import _numba_backend, _ufuncs
    rng = np.random.default_rng(0)
    print(f"{'n':>10} {'cython us':>10} {'numba us':>10} {'numba/cython':>13}")
    for n in (10, 10_000, 10_000_000):
        x = rng.standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        number = max(1, int(3e6 // max(n, 300)))
        t = {}
        for label, mod in (("cython", _ufuncs), ("numba", _numba_backend)):
            t[label] = np.median(timeit.repeat(lambda: mod.relu(x, out=y), number=number,
                                               repeat=15)) / number
        print(f"{n:>10.0e} {t['cython'] * 1e6:>10.3f} {t['numba'] * 1e6:>10.3f} "
              f"{t['numba'] / t['cython']:>13.2f}")


if __name__ == "__main__":
    main()
