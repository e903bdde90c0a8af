"""relu, relu_grad and relu_backward on an ml_dtypes format (bfloat16 by
default), against a copy of the same bytes and against ml_dtypes' own
np.maximum(x, 0) on the same array.

    python benchmarks/ml_formats.py [--dtype bfloat16] [--rounds 15]

Every call writes into a preallocated y (out=).  The anchors: np.copyto(y,
x) for the unary functions (the same bytes read and written), and for
relu_backward, which reads two arrays, np.add on the uint views of dy and x
(the same three streams, at NumPy's integer SIMD speed).  Time per call,
the median of interleaved rounds (every implementation once per round, in a
new random order each round), on the same arrays; each timing repeats the
call until it lasts about 2 ms.  The target: at or below 1.05x the anchor,
from 1e3 to 1e8.
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


def implementations(x, dy, y, zero):
    u = f"u{x.itemsize}"
    xu, dyu, yu = x.view(u), dy.view(u), y.view(u)
    return {
        "np.copyto": lambda: np.copyto(y, x),
        "relu": lambda: ru.relu(x, out=y),
        "relu_grad": lambda: ru.relu_grad(x, out=y),
        "np.maximum": lambda: np.maximum(x, zero, out=y),
        "add (uint)": lambda: np.add(dyu, xu, out=yu),
        "relu_backward": lambda: ru.relu_backward(dy, x, out=y),
    }


def measure(n, dtype, rounds, rng):
    x = rng.standard_normal(n).astype(np.float32).astype(dtype)
    dy = rng.standard_normal(n).astype(np.float32).astype(dtype)
    y = np.empty_like(x)
    return medians(implementations(x, dy, y, np.zeros((), dtype)), "np.copyto", rounds, rng)


def main(argv=None):
    import ml_dtypes
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--max-n", type=float, default=1e8)
    args = parser.parse_args(argv)
    # an ml_dtypes name, or a NumPy one (float16) for comparison
    dtype = np.dtype(getattr(ml_dtypes, args.dtype, None) or args.dtype)
    rng = np.random.default_rng(0)
    print(f"CPU: {cpu_name()}; NumPy {np.__version__}, ml_dtypes {ml_dtypes.__version__}, "
          f"relu_ufunc backend {ru.backend}, threads {ru.get_num_threads()}")
    print(f"{args.dtype}, out=y; time per call, median of {args.rounds} interleaved rounds; "
          f"ratios to the anchor (np.copyto; relu_backward: np.add on the uint views)")
    print(f"{'n':>9} | {'copyto':>9} {'relu':>9} {'grad':>9} {'maximum':>9} {'add':>9} "
          f"{'backward':>9} | {'relu':>5} {'grad':>5} {'back':>5} {'max':>5}")
    worst = 0.0
    for n in SIZES:
        if n > args.max_n:
            break
        t = measure(n, dtype, args.rounds, rng)
        r = (t["relu"] / t["np.copyto"], t["relu_grad"] / t["np.copyto"],
             t["relu_backward"] / t["add (uint)"], t["np.maximum"] / t["np.copyto"])
        worst = max(worst, *r[:3])
        us = [t[k] * 1e6 for k in ("np.copyto", "relu", "relu_grad", "np.maximum",
                                    "add (uint)", "relu_backward")]
        print(f"{n:9.0e} | " + " ".join(f"{v:7.2f}us" for v in us) + " | "
              + " ".join(f"{v:5.2f}" for v in r))
    print(f"worst ratio to the anchor: {worst:.2f} (target <= 1.05); the last column is "
          f"ml_dtypes' np.maximum(x, 0) / np.copyto")


if __name__ == "__main__":
    main()
