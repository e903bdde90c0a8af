"""relu(x, out=y) against np.maximum(x, 0, out=y) at a few sizes, in one run.

    python benchmarks/relu_vs_maximum.py [n ...]

Prints medians of 15 repeats and the ratio ours/NumPy (below 1: faster).
"""
import sys
import timeit

import numpy as np

import relu_ufunc as ru


def main(sizes):
    rng = np.random.default_rng(0)
    print(f"{'dtype':>8} {'n':>10} {'relu us':>10} {'maximum us':>11} {'ratio':>6}")
    for dtype in (np.float32, np.float64):
        for n in sizes:
            x = rng.standard_normal(n).astype(dtype)   # half negative: honest branches
            y = np.empty_like(x)
            number = max(1, int(3e6 // max(n, 300)))
            ours = np.median(timeit.repeat(lambda: ru.relu(x, out=y), number=number, repeat=15))
            ref = np.median(timeit.repeat(lambda: np.maximum(x, 0, out=y), number=number,
                                          repeat=15))
            print(f"{np.dtype(dtype).name:>8} {n:>10.0e} {ours / number * 1e6:>10.3f} "
                  f"{ref / number * 1e6:>11.3f} {ours / ref:>6.2f}")


if __name__ == "__main__":
    main([int(float(a)) for a in sys.argv[1:]] or [10, 10_000, 10_000_000])
