"""A strided output: relu(x[::2], out=y[::2]) against np.abs on the same
views (the target: at or below 1.1x), and relu_backward(dy[::2], x[::2],
out=y[::2]) against np.add on the same views.

    python benchmarks/strided_output.py [--dtypes float32 float64] [--rounds 11]
                                        [--level avx2]

Time per call, the median of interleaved rounds (benchmarks/interleaved.py)
on the same arrays, n the size of the arrays the views take every other
element of.  On the AVX-512 and AVX2 builds these calls run the windows
kernels (relu_f_windows_avx512: a 64-byte window of y per masked store;
relu_f_windows_avx2: 32 bytes, a store per element); on the baseline, the
strided kernel into L1 blocks, then copied out.

--level avx2 runs relu_ufunc's AVX2 build on an AVX-512 CPU (the private
_ufuncs._set_cpu_level), and NumPy's AVX2 loops: the script starts again
with NPY_DISABLE_CPU_FEATURES naming the AVX-512 features NumPy found.
That gives an AVX2 CPU's paths and ratios, on this CPU's timings (not an
AVX2 CPU's).
"""
import argparse
import os
import sys

import numpy as np

import relu_ufunc as ru
if __package__ in (None, ""):      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cpu import cpu_name  # noqa: E402
from benchmarks.interleaved import medians  # noqa: E402

SIZES = (10**3, 10**4, 10**5, 10**6, 10**7)


def measure(n, dtype, rounds, rng):
    x = rng.standard_normal(n).astype(dtype)
    dy = rng.standard_normal(n).astype(dtype)
    y = np.zeros(n, dtype)
    xs, dys, ys = x[::2], dy[::2], y[::2]
    calls = {"np.abs": lambda: np.abs(xs, out=ys),
             "relu": lambda: ru.relu(xs, out=ys),
             "np.add": lambda: np.add(dys, xs, out=ys),
             "relu_backward": lambda: ru.relu_backward(dys, xs, out=ys)}
    return medians(calls, "np.abs", rounds, rng)


def numpy_at_avx2():
    """Start this script again with NumPy's AVX-512 loops disabled, once."""
    from numpy._core._multiarray_umath import __cpu_features__ as features
    avx512 = sorted(f for f, on in features.items() if on and f.startswith("AVX512"))
    if avx512 and "NPY_DISABLE_CPU_FEATURES" not in os.environ:
        env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(avx512))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--max-n", type=float, default=1e7)
    parser.add_argument("--level", choices=["avx2"],
                        help="relu_ufunc's and NumPy's AVX2 loops on an AVX-512 CPU")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    build = ""
    if ru.backend == "cython":
        from relu_ufunc import _ufuncs
        if args.level == "avx2":
            numpy_at_avx2()
            _ufuncs._set_cpu_level(_ufuncs.CPU_LEVELS.index("AVX2"))
        build = f", kernel build {_ufuncs.CPU_LEVELS[_ufuncs._cpu_level()]}"
    disabled = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    numpy_note = f" (NumPy's {disabled} disabled)" if disabled else ""
    print(f"CPU: {cpu_name()}; NumPy {np.__version__}{numpy_note}, "
          f"relu_ufunc backend {ru.backend}{build}")
    print(f"time per call, median of {args.rounds} interleaved rounds; x[::2] into y[::2]")
    worst = 0.0
    for dtype in args.dtypes:
        print(f"{dtype:>9} | {'np.abs':>11} {'relu':>11} {'np.add':>11} {'backward':>11} | "
              f"{'relu/abs':>8} {'bwd/add':>8}")
        for n in SIZES:
            if n > args.max_n:
                break
            t = measure(n, dtype, args.rounds, rng)
            ratio = t["relu"] / t["np.abs"]
            worst = max(worst, ratio)
            print(f"{n:9.0e} | {t['np.abs'] * 1e6:9.2f}us {t['relu'] * 1e6:9.2f}us "
                  f"{t['np.add'] * 1e6:9.2f}us {t['relu_backward'] * 1e6:9.2f}us | "
                  f"{ratio:8.2f} {t['relu_backward'] / t['np.add']:8.2f}")
    print(f"worst relu / np.abs: {worst:.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
