"""How far ahead the stream kernels prefetch their inputs: each distance the
store plan tries (0: no prefetch), forced in turn, on streamed calls out of
cache, against the same anchors as the targets (`np.copyto(y, x)` for the
unary functions, `np.add(dy, x, out=y)` for relu_backward), float32.

    python benchmarks/stream_ahead.py [--sizes 1e7 1e8] [--rounds 7]

Time per call, the median of interleaved rounds (benchmarks/interleaved.py)
on the same arrays; each call sets its distance first (the private
_ufuncs._set_stream_ahead), then the plan's own choice is put back.  The
first lines give what this process's plan measured and chose
(_ufuncs._stream_ahead: the relu float32 stream kernel at 64 MiB, on one
thread), so the table shows whether that choice holds at these sizes.
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


def at(_ufuncs, ahead, f):
    """f, called with the stream kernels prefetching `ahead` bytes ahead."""
    def call():
        _ufuncs._set_stream_ahead(ahead)
        f()
    return call


def measure(_ufuncs, n, distances, rounds, rng):
    x = rng.standard_normal(n).astype(np.float32)
    dy = rng.standard_normal(n).astype(np.float32)
    y = np.zeros(n, np.float32)
    calls = {"np.copyto": lambda: np.copyto(y, x),
             "np.add": lambda: np.add(dy, x, out=y)}
    for name, f in [("relu", lambda: ru.relu(x, out=y)),
                    ("relu_grad", lambda: ru.relu_grad(x, out=y)),
                    ("relu_backward", lambda: ru.relu_backward(dy, x, out=y))]:
        for d in distances:
            calls[f"{name} {d}"] = at(_ufuncs, d, f)
    return medians(calls, "np.copyto", rounds, rng)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e7, 1e8])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if ru.backend != "cython":
        sys.exit("the stream kernels are the Cython backend's")
    from relu_ufunc import _ufuncs
    if not _ufuncs.HAVE_STREAM:
        sys.exit("this build has no streaming stores")
    rng = np.random.default_rng(0)
    chosen, tried = _ufuncs._stream_ahead()
    distances = [d for d, _ in tried]
    print(f"CPU: {cpu_name()}; NumPy {np.__version__}; kernel build "
          f"{_ufuncs.CPU_LEVELS[_ufuncs._cpu_level()]}")
    print("the plan, relu float32 streamed at 64 MiB on one thread: "
          + ", ".join(f"{d} B ahead {s * 1e3:.2f} ms" for d, s in tried)
          + f"; chosen: {chosen} B")
    print(f"time per call, median of {args.rounds} interleaved rounds, float32; "
          "ratio to np.copyto (relu_backward: to np.add)")
    try:
        for n in (int(s) for s in args.sizes):
            streams = _ufuncs._stream_from() is not None and 4 * n >= _ufuncs._stream_from()
            m = measure(_ufuncs, n, distances, args.rounds, rng)
            print(f"n={n:.0e} ({'streamed' if streams else 'plain stores: not streamed'}): "
                  f"np.copyto {m['np.copyto'] * 1e3:.2f} ms, np.add {m['np.add'] * 1e3:.2f} ms")
            for name in ("relu", "relu_grad", "relu_backward"):
                anchor = m["np.add" if name == "relu_backward" else "np.copyto"]
                cells = "  ".join(f"{d:>4} B {m[f'{name} {d}'] * 1e3:7.2f} ms "
                                  f"({m[f'{name} {d}'] / anchor:.2f}x)" for d in distances)
                print(f"  {name:<14} {cells}")
    finally:
        _ufuncs._set_stream_ahead(chosen)


if __name__ == "__main__":
    main()
