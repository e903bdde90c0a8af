"""relu_ufunc inside @njit code: its speed against np.maximum(x, 0.0) jitted
by Numba, and against the same ufunc called from Python.

    python benchmarks/njit.py [--dtype float64] [--rounds 15]

For each n, float64 randn data (half negative), time per call of
- relu(x) in @njit code, against np.maximum(x, 0.0) in @njit code (both make
  a new array);
- relu(x, out=y) in @njit code, against np.maximum(x, 0.0, y);
- relu(x) and relu(x, out=y) called from Python, which run the same C loop.
Each timing is a jitted loop of `reps` calls (so Numba's dispatch from
Python is not counted), divided by reps; the figure is the median of
interleaved rounds (every implementation once per round, in a new random
order each round), so drift on a shared machine hits all alike.  With
--dtype float32 the zero of np.maximum is np.float32(0): Numba's
np.maximum(x32, 0.0) gives float64.  The target: relu in @njit within 1.2x
of np.maximum from n = 1e3 up.
"""
import argparse
import os
import platform
import sys
import time

import numba
import numpy as np
from numba import njit

import relu_ufunc as ru
if __package__ in (None, ""):      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cpu import cpu_name  # noqa: E402


SIZES = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)


@njit
def relu_new(x, zero, reps):
    s = 0.0
    for _ in range(reps):
        y = ru.relu(x)
        s += y[-1]
    return s


@njit
def maximum_new(x, zero, reps):
    s = 0.0
    for _ in range(reps):
        y = np.maximum(x, zero)
        s += y[-1]
    return s


@njit
def relu_out(x, y, zero, reps):
    for _ in range(reps):
        ru.relu(x, out=y)
    return y[-1]


@njit
def maximum_out(x, y, zero, reps):
    for _ in range(reps):
        np.maximum(x, zero, y)
    return y[-1]


def python_new(x, zero, reps):
    relu = ru.relu
    for _ in range(reps):
        relu(x)


def python_out(x, y, zero, reps):
    relu = ru.relu
    for _ in range(reps):
        relu(x, out=y)


def medians(calls, rounds, seed=0):
    """Median seconds per call of each (fn, args, reps), interleaved."""
    for fn, args, reps in calls:
        fn(*args, 1)                                   # compile
    samples = [[] for _ in calls]
    order = np.random.default_rng(seed)
    for _ in range(rounds):
        for k in order.permutation(len(calls)):
            fn, args, reps = calls[k]
            t = time.perf_counter()
            fn(*args, reps)
            samples[k].append((time.perf_counter() - t) / reps)
    return [float(np.median(s)) for s in samples]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    zero = 0.0 if dtype == np.float64 else dtype.type(0)
    print(f"CPU: {cpu_name()} ({platform.machine()}); Python {sys.version.split()[0]}, "
          f"NumPy {np.__version__}, Numba {numba.__version__}, relu_ufunc backend "
          f"{ru.backend}")
    print(f"{dtype.name}, time per call, median of {args.rounds} interleaved rounds; "
          f"'max' is np.maximum(x, {'0.0' if dtype == np.float64 else 'np.float32(0)'})")
    head = (f"{'n':>9} | {'relu(x) njit':>12} {'max njit':>10} {'ratio':>6} | "
            f"{'out= njit':>10} {'max out=':>10} {'ratio':>6} | "
            f"{'relu(x) Py':>10} {'out= Py':>10} | {'njit/Py':>7} {'out njit/Py':>11}")
    print(head)
    rows = []
    rng = np.random.default_rng(0)
    for n in args.sizes:
        x = rng.standard_normal(n).astype(dtype)
        y = np.empty_like(x)
        reps = max(1, int(2e6 // max(n, 100)))
        t = medians([(relu_new, (x, zero), reps), (maximum_new, (x, zero), reps),
                     (relu_out, (x, y, zero), reps), (maximum_out, (x, y, zero), reps),
                     (python_new, (x, zero), reps), (python_out, (x, y, zero), reps)],
                    args.rounds)
        rows.append((n, t))
        us = [v * 1e6 for v in t]
        print(f"{n:>9.0e} | {us[0]:>10.3f}us {us[1]:>8.3f}us {t[0] / t[1]:>6.2f} | "
              f"{us[2]:>8.3f}us {us[3]:>8.3f}us {t[2] / t[3]:>6.2f} | "
              f"{us[4]:>8.3f}us {us[5]:>8.3f}us | {t[0] / t[4]:>7.2f} {t[2] / t[5]:>11.2f}")
    worst = max((t[0] / t[1] for n, t in rows if n >= 1000), default=float("nan"))
    worst_out = max((t[2] / t[3] for n, t in rows if n >= 1000), default=float("nan"))
    print(f"worst ratio from n = 1e3 up (target <= 1.2): relu(x) {worst:.2f}, "
          f"relu(x, out=y) {worst_out:.2f}")
    return rows


if __name__ == "__main__":
    main()
