"""One call on a team: relu(x, out=y) with threads(2) against threads(1).

    python benchmarks/threads.py [--rounds 15]

For each n, float32 randn data, the time per call of relu(x, out=y) on the
calling thread alone and on a team of 2 (relu_ufunc.threads(2)), as medians
of interleaved rounds (each round times both, in turn, on the same arrays),
and their ratio: the speedup a team gives.  The store plan is fixed by the
caller (RELU_UFUNC_STREAM_FROM; the default here is "never", plain stores),
so that only the threads differ from one build to another.  Prints the CPU
and the build line of the extension (which says how its threads are made).
"""
import argparse
import sys
import os
import statistics
import time

os.environ.setdefault("RELU_UFUNC_STREAM_FROM", "never")

import numpy as np  # noqa: E402

import relu_ufunc as ru  # noqa: E402
if __package__ in (None, ""):      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cpu import cpu_name  # noqa: E402



def per_call(f, number):
    t = time.perf_counter()
    for _ in range(number):
        f()
    return (time.perf_counter() - t) / number


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sizes", type=float, nargs="*", default=[1e5, 3e5, 1e6, 1e7, 1e8])
    args = ap.parse_args()
    from relu_ufunc import _ufuncs
    print(f"CPU: {cpu_name()}; {os.cpu_count()} CPUs; NumPy {np.__version__}")
    print(getattr(_ufuncs, "BUILD_INFO", "relu_ufunc build: (no build line: an older build)"))
    print(f"stores: RELU_UFUNC_STREAM_FROM={os.environ['RELU_UFUNC_STREAM_FROM']}")
    print(f"{'n':>8} | {'1 thread':>12} {'2 threads':>12} | speedup")
    for n in map(int, args.sizes):
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        number = max(1, int(3e7 // n))

        def one():
            ru.relu(x, out=y)

        def two():
            with ru.threads(2):
                ru.relu(x, out=y)
        one(), two()
        t1, t2 = [], []
        for _ in range(args.rounds):
            t1.append(per_call(one, number))
            t2.append(per_call(two, number))
        m1, m2 = statistics.median(t1), statistics.median(t2)
        print(f"{n:8.0e} | {m1 * 1e6:9.1f} us {m2 * 1e6:9.1f} us | {m1 / m2:5.2f}x")


if __name__ == "__main__":
    main()
