"""add_relu(z, b, out=z): a layer's bias and relu in one pass, against
np.add(z, b, out=z) alone (the anchor: the relu should come free) and the
two passes it replaces (np.add in place, then relu in place).

    python benchmarks/add_relu.py [--dtype float32] [--rounds 15]

z is (n / 1000, 1000), b a row of 1000 (one bias per column), as after
x @ w.  Time per call, the median of interleaved rounds (every
implementation once per round, in a new random order each round), on the
same arrays; each timing repeats the call until it lasts about 2 ms.  The
target: add_relu at or below 1.05x np.add, from 1e3 to 1e8.
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

SIZES = (10**3, 10**4, 10**5, 10**6, 10**7, 10**8)
COLUMNS = 1000


def add(z, b):
    np.add(z, b, out=z)


def fused(z, b):
    ru.add_relu(z, b, out=z)


def two_passes(z, b):
    np.add(z, b, out=z)
    ru.relu(z, out=z)


IMPLEMENTATIONS = {"np.add": add, "add_relu": fused, "two passes": two_passes}


def measure(n, dtype, rounds, rng):
    z = rng.standard_normal((n // COLUMNS, COLUMNS)).astype(dtype)
    # mixed signs, small: z neither grows nor shrinks much over the calls
    b = (rng.standard_normal(COLUMNS) * 1e-3).astype(dtype)
    calls = {name: (lambda f=f: f(z, b)) for name, f in IMPLEMENTATIONS.items()}
    return medians(calls, "np.add", rounds, rng)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--max-n", type=float, default=1e8)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"CPU: {cpu_name()}; NumPy {np.__version__}, relu_ufunc backend {ru.backend}, "
          f"threads {ru.get_num_threads()}")
    print(f"{args.dtype}, z (n/{COLUMNS}, {COLUMNS}), b ({COLUMNS},), out=z; time per call, "
          f"median of {args.rounds} interleaved rounds")
    print(f"{'n':>9} | {'np.add':>11} {'add_relu':>11} {'two passes':>11} | "
          f"{'add_relu/add':>12} {'two/add':>8}")
    worst = 0.0
    for n in SIZES:
        if n > args.max_n:
            break
        t = measure(n, args.dtype, args.rounds, rng)
        ratio = t["add_relu"] / t["np.add"]
        worst = max(worst, ratio)
        print(f"{n:9.0e} | {t['np.add'] * 1e6:9.2f}us {t['add_relu'] * 1e6:9.2f}us "
              f"{t['two passes'] * 1e6:9.2f}us | {ratio:12.2f} "
              f"{t['two passes'] / t['np.add']:8.2f}")
    print(f"worst add_relu / np.add: {worst:.2f} (target <= 1.05)")


if __name__ == "__main__":
    main()
