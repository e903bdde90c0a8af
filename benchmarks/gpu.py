"""GPU benchmark of relu_ufunc.cuda (needs CuPy and an NVIDIA GPU).

    python -m benchmarks.gpu            # n = 1e3 .. 1e9, as device memory allows
    python -m benchmarks.gpu --quick    # n = 1e3 .. 1e7

relu, relu_grad and relu_backward at float16, float32 and float64, against:
a device-to-device copy of the same bytes (the limit; cp.add of two arrays
for the two-input relu_backward), cp.maximum(x, 0), the seed's
cp.maximum(cp.zeros(x.shape, cp.float32), x) and
cp.greater(x, 0).astype(cp.float32), and torch.relu / torch.relu_ when torch
has CUDA.  Times come from CUDA events around many launches (medians of
repeats), after a synchronize.  Reports GB/s, the fraction of copy
bandwidth, and the launch-bound floor (the time at the smallest n).  Writes
benchmarks/results/gpu-<device>.json and a PNG per function.

Not yet run: no session so far has had a GPU.  Its rows and plots use the
same format as the CPU suite (benchmarks/run.py).
"""
import argparse
import json
import os
import re

import numpy as np

from benchmarks.run import ARRAYS_PER_ELEMENT, RESULTS, optional, plot


def implementations(cp, rc, torch, op, x, dy, y):
    f32 = cp.float32
    impls = []
    if op == "relu":
        impls += [("rc.relu(x, out=y)", "ours", lambda: rc.relu(x, out=y)),
                  ("rc.relu(x)", "ours", lambda: rc.relu(x)),
                  ("copy y[...] = x", "limit", lambda: y.__setitem__(Ellipsis, x)),
                  ("cp.maximum(x, 0)", "other", lambda: cp.maximum(x, 0)),
                  ("cp.maximum(x, 0, out=y)", "other", lambda: cp.maximum(x, 0, out=y)),
                  ("seed: cp.maximum(cp.zeros(x.shape, f32), x)", "other",
                   lambda: cp.maximum(cp.zeros(x.shape, f32), x))]
    elif op == "relu_grad":
        impls += [("rc.relu_grad(x, out=y)", "ours", lambda: rc.relu_grad(x, out=y)),
                  ("copy y[...] = x", "limit", lambda: y.__setitem__(Ellipsis, x)),
                  ("seed: cp.greater(x, 0).astype(f32)", "other",
                   lambda: cp.greater(x, 0).astype(f32))]
    else:
        impls += [("rc.relu_backward(dy, x, out=y)", "ours",
                   lambda: rc.relu_backward(dy, x, out=y)),
                  ("cp.add(dy, x, out=y)", "limit", lambda: cp.add(dy, x, out=y)),
                  ("dy * (x > 0)", "other", lambda: dy * (x > 0))]
    if torch is not None and op == "relu":
        t, o = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")
        impls += [("torch.relu(t)", "other", lambda: torch.relu(t)),
                  ("torch.relu_(o)", "other", lambda: torch.relu_(o))]
    return impls


def event_seconds(cp, fn, repeat=9, min_ms=2.0):
    """Median seconds per call, timed with CUDA events over many launches."""
    start, end = cp.cuda.Event(), cp.cuda.Event()
    fn()
    cp.cuda.Device().synchronize()
    number = 1
    while True:
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        ms = cp.cuda.get_elapsed_time(start, end)
        if ms >= min_ms or number >= 1 << 16:
            break
        number *= 4
    samples = []
    for _ in range(repeat):
        start.record()
        for _ in range(number):
            fn()
        end.record()
        end.synchronize()
        samples.append(cp.cuda.get_elapsed_time(start, end) / 1e3 / number)
    return float(np.median(samples)), samples


def main(argv=None):
    parser = argparse.ArgumentParser(description="relu_ufunc.cuda GPU benchmark")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import cupy as cp
    import relu_ufunc.cuda as rc
    torch = optional("torch")
    if torch is not None and not torch.cuda.is_available():
        torch = None
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    info = {"gpu": name, "cupy": cp.__version__, "numpy": np.__version__,
            "torch": getattr(torch, "__version__", None), "relu_ufunc": "cuda",
            "backend": "cupy ElementwiseKernel", "cpu": name, "cores": "",
            "date": __import__("time").strftime("%Y-%m-%d")}
    sizes = [10**k for k in range(3, 8 if args.quick else 10)]
    rows = []
    for op in ARRAYS_PER_ELEMENT:
        for dt in (cp.float16, cp.float32, cp.float64):
            for n in sizes:
                itemsize = np.dtype(dt).itemsize
                free = cp.cuda.runtime.memGetInfo()[0]
                if 6 * n * itemsize > free:    # x, dy, y and temporaries
                    print(f"skip {op} {np.dtype(dt).name} n={n:.0e}: not enough memory")
                    continue
                x = cp.random.standard_normal(n, dtype=cp.float32).astype(dt)
                dy = cp.random.standard_normal(n, dtype=cp.float32).astype(dt)
                y = cp.empty_like(x)
                for label, kind, fn in implementations(cp, rc, torch, op, x, dy, y):
                    med, samples = event_seconds(cp, fn)
                    nbytes = ARRAYS_PER_ELEMENT[op] * n * itemsize
                    rows.append({"op": op, "dtype": np.dtype(dt).name, "n": n, "impl": label,
                                 "kind": kind, "seconds": med, "samples": samples,
                                 "gb_per_s": nbytes / med / 1e9})
                del x, dy, y
                cp.get_default_memory_pool().free_all_blocks()
    tag = "gpu-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, tag + ".json"), "w") as f:
        json.dump({"machine": info, "results": rows}, f, indent=1)
    plot(rows, info, lambda op: os.path.join(RESULTS, f"{tag}-{op}.png"))
    for op in ARRAYS_PER_ELEMENT:
        for dt in ("float16", "float32", "float64"):
            sel = [r for r in rows if r["op"] == op and r["dtype"] == dt]
            if not sel:
                continue
            floor = min(r["seconds"] for r in sel if r["kind"] == "ours")
            print(f"\n{op} {dt}: launch-bound floor {floor * 1e6:.1f} us")
            for n in sorted({r["n"] for r in sel}):
                at = {r["impl"]: r for r in sel if r["n"] == n}
                ours = next(r for r in at.values() if r["kind"] == "ours")
                limit = next(r for r in at.values() if r["kind"] == "limit")
                others = "  ".join(f"{k}: {ours['seconds'] / r['seconds']:.2f}x"
                                   for k, r in at.items() if r["kind"] == "other")
                print(f"  n={n:.0e} {ours['gb_per_s']:8.1f} GB/s "
                      f"({ours['gb_per_s'] / limit['gb_per_s']:.0%} of copy)  {others}")


if __name__ == "__main__":
    main()
