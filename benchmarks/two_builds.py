"""Two builds of the extension against each other, in one process: a change
to the loop template that should not change speed (one that saves compile
time, say) is checked here.

    git stash && python setup.py build_ext --inplace && cp relu_ufunc/_ufuncs*.so /tmp/a.so
    git stash pop && python setup.py build_ext --inplace && cp relu_ufunc/_ufuncs*.so /tmp/b.so
    python benchmarks/two_builds.py /tmp/a.so /tmp/b.so

Each build is loaded as a module of its own, and its ufuncs are timed on the
same arrays, interleaved (benchmarks/interleaved.py), against np.copyto(y, x)
of the same bytes: relu(x, out=y), relu_backward(dy, x, out=y) and, for the
float types, leaky_relu(x, 0.1, out=y) (the kernels with a scalar input),
both builds under the store plan that the first measures.
The ml_dtypes formats are left out: their loops are registered on the
package's own module when ml_dtypes is imported, not on these.
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

if __package__ in (None, ""):      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import relu_ufunc  # noqa: E402,F401  (first: each build's init imports the package)
from benchmarks.cpu import cpu_name  # noqa: E402
from benchmarks.interleaved import medians  # noqa: E402


def load(path):
    spec = importlib.util.spec_from_file_location("relu_ufunc._ufuncs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the first build's _ufuncs*.so")
    parser.add_argument("b", help="the second build's _ufuncs*.so")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64", "int8"])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    builds = {"a": load(args.a), "b": load(args.b)}
    # Each module measures its own store plan, and two measurements can
    # disagree on where streaming starts: both take the first's, so that
    # plain stores are compared with plain and streaming with streaming.
    stream_from = builds["a"]._store_plan()[0]
    builds["b"]._set_stream_from(stream_from)
    rng = np.random.default_rng(0)
    print(f"{cpu_name()}; time / np.copyto(y, x), medians of {args.rounds} interleaved rounds; "
          f"a = {args.a}, b = {args.b}; both stream from {stream_from} bytes (a's plan)")
    for dtype in map(np.dtype, args.dtypes):
        for n in map(int, args.sizes):
            if dtype.kind == "f":
                x = rng.standard_normal(n).astype(dtype)
            else:
                x = rng.integers(-100, 100, n).astype(dtype)
            dy, y = x[::-1].copy(), np.empty_like(x)
            calls = {"copyto": lambda: np.copyto(y, x)}
            for label, m in builds.items():
                calls[f"relu {label}"] = lambda m=m: m.relu(x, out=y)
                calls[f"relu_backward {label}"] = lambda m=m: m.relu_backward(dy, x, out=y)
                if dtype.kind == "f":
                    calls[f"leaky_relu {label}"] = lambda m=m: m.leaky_relu(x, 0.1, out=y)
            t = medians(calls, "copyto", args.rounds, rng)
            cells = [f"{name} a {t[name + ' a'] / t['copyto']:.2f} b {t[name + ' b'] / t['copyto']:.2f}"
                     for name in ("relu", "relu_backward", "leaky_relu") if name + " a" in t]
            print(f"{dtype.name:8} n={n:<9,} " + " | ".join(cells)
                  + f"   (copyto {t['copyto'] * 1e6:.2f} us)", flush=True)


if __name__ == "__main__":
    main()
