"""GPU benchmark of relu_ufunc.cuda (needs CuPy and an NVIDIA GPU).

    python -m benchmarks.gpu            # n = 1e3 .. 1e9, as device memory allows
    python -m benchmarks.gpu --quick    # n = 1e3 .. 1e7

relu, relu_grad, relu_backward and leaky_relu at float16, float32 and
float64, against: a device-to-device copy of the same bytes (the limit,
cudaMemcpyAsync; for relu_backward a copy of 1.5 arrays), cp.maximum(x, 0),
the seed's cp.maximum(cp.zeros(x.shape, cp.float32), x) and
cp.greater(x, 0).astype(cp.float32), and PyTorch's own kernels when torch
has CUDA.  "ElementwiseKernel alone" calls our compiled
kernel with no Python wrapper around it, which shows what the wrapper costs.

Times come from CUDA events around back-to-back calls (median of repeats),
after a warm-up and a synchronize.  Each call is timed as the user makes it,
so at small n the time is the launch-bound floor: the host's cost to issue
the call.  Reports GB/s (bytes read + written) and the fraction of copy
bandwidth, writes gpu-<device>.json and one PNG per function.
benchmarks/gpu_check.sh runs the GPU tests and this, on a GPU machine.
"""
import argparse
import json
import os
import re
import time

import numpy as np

from benchmarks.run import RESULTS, by_size, optional, plot

# Arrays each function moves per element: inputs read plus output written.
GPU_OPS = {"relu": 2, "relu_grad": 2, "relu_backward": 3, "leaky_relu": 2}
ALPHA = 0.01


def implementations(cp, rc, torch, op, x, dy, y):
    f32 = cp.float32
    storage = rc._cuda_plan.storage_dtype(x.dtype)
    width = rc._cuda_plan.vector_width(x.dtype)
    xs, dys, ys = (a.view(storage) for a in (x, dy, y))
    alpha = np.asarray(ALPHA, x.dtype).view(storage)[()]
    kernel_args = {"relu_backward": (dys, xs), "leaky_relu": (xs, alpha)}.get(op, (xs,))
    kernel = rc._vector_kernel(op, x.dtype, tuple(a is alpha for a in kernel_args))
    size = -(-x.size // width)
    alone = ("ElementwiseKernel alone", "kernel", lambda: kernel(*kernel_args, ys, size=size))
    copy = ("copy (cudaMemcpy D2D)", "limit",
            lambda: y.data.copy_from_device_async(x.data, x.nbytes))
    if op == "relu":
        impls = [("rc.relu(x, out=y)", "ours", lambda: rc.relu(x, out=y)),
                 ("rc.relu(x)", "ours-new", lambda: rc.relu(x)),
                 ("rc.relu(y, out=y) in place", "ours-inplace", lambda: rc.relu(y, out=y)),
                 alone, copy,
                 ("cp.maximum(x, 0, out=y)", "other", lambda: cp.maximum(x, 0, out=y)),
                 ("cp.maximum(x, 0)", "other", lambda: cp.maximum(x, 0)),
                 ("seed: cp.maximum(cp.zeros(x.shape, f32), x)", "other",
                  lambda: cp.maximum(cp.zeros(x.shape, f32), x))]
    elif op == "relu_grad":
        impls = [("rc.relu_grad(x, out=y)", "ours", lambda: rc.relu_grad(x, out=y)),
                 alone, copy,
                 ("seed: cp.greater(x, 0).astype(f32)", "other",
                  lambda: cp.greater(x, 0).astype(f32))]
    elif op == "relu_backward":
        # The same bytes as one copy of 1.5 arrays: 3 arrays read or written.
        big = cp.empty(3 * x.nbytes, cp.uint8)        # two halves of 1.5 arrays
        impls = [("rc.relu_backward(dy, x, out=y)", "ours",
                  lambda: rc.relu_backward(dy, x, out=y)),
                 alone,
                 ("copy of the same bytes (cudaMemcpy D2D)", "limit",
                  lambda: big[:big.size // 2].data.copy_from_device_async(
                      big[big.size // 2:].data, big.size // 2)),
                 ("cp.add(dy, x, out=y)", "other", lambda: cp.add(dy, x, out=y)),
                 ("dy * (x > 0)", "other", lambda: dy * (x > 0))]
    else:
        impls = [("rc.leaky_relu(x, 0.01, out=y)", "ours",
                  lambda: rc.leaky_relu(x, ALPHA, out=y)),
                 alone, copy,
                 ("cp.where(x > 0, x, 0.01 * x)", "other", lambda: cp.where(x > 0, x, ALPHA * x))]
    if torch is not None:
        t, tdy, o = (torch.as_tensor(a, device="cuda") for a in (x, dy, y))
        if op == "relu":
            impls += [("torch.relu(t)", "other", lambda: torch.relu(t)),
                      ("torch.clamp_min(t, 0, out=o)", "other",
                       lambda: torch.clamp_min(t, 0, out=o)),
                      ("torch.relu_(o) in place", "other", lambda: torch.relu_(o))]
        elif op == "relu_grad":
            impls += [("(t > 0).to(t.dtype)", "other", lambda: (t > 0).to(t.dtype))]
        elif op == "relu_backward":
            impls += [("torch threshold_backward (relu's backward)", "other",
                       lambda: torch.ops.aten.threshold_backward(tdy, t, 0))]
        else:
            impls += [("F.leaky_relu(t, 0.01)", "other",
                       lambda: torch.nn.functional.leaky_relu(t, ALPHA))]
    return impls


def event_seconds(cp, fn, repeat=9, min_ms=2.0):
    """Median seconds per call, timed with CUDA events over back-to-back calls."""
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
        if ms >= min_ms or number >= 1 << 14:
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


def measure(cp, rc, torch, op, dt, n):
    rng = cp.random.default_rng(n)
    x = rng.standard_normal(n, dtype=cp.float32).astype(dt)      # half negative
    dy = rng.standard_normal(n, dtype=cp.float32).astype(dt)
    y = cp.empty_like(x)
    rows = []
    nbytes = GPU_OPS[op] * n * x.itemsize
    for label, kind, fn in implementations(cp, rc, torch, op, x, dy, y):
        med, samples = event_seconds(cp, fn)
        rows.append({"op": op, "dtype": x.dtype.name, "n": n, "impl": label, "kind": kind,
                     "seconds": med, "samples": samples, "gb_per_s": nbytes / med / 1e9})
    return rows


def table(rows):
    lines = []
    for op in GPU_OPS:
        for dt in ("float16", "float32", "float64"):
            sizes = list(by_size(rows, op, dt))
            if not sizes:
                continue
            floor = min(ours["seconds"] for _, _, ours, _ in sizes)
            lines.append(f"\n{op} {dt} (launch-bound floor of ours {floor * 1e6:.1f} us;"
                         f" other columns: our time / theirs)")
            for n, at, ours, limit in sizes:
                others = "  ".join(f"{k}: {ours['seconds'] / r['seconds']:.2f}"
                                   for k, r in at.items() if r["kind"] not in ("ours", "limit"))
                frac = limit["seconds"] / ours["seconds"]
                lines.append(f"  n=1e{round(np.log10(n))} {ours['seconds'] * 1e6:9.1f} us "
                             f"{ours['gb_per_s']:7.0f} GB/s = {frac:.0%} of copy "
                             f"({limit['gb_per_s']:.0f} GB/s)  {others}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="relu_ufunc.cuda GPU benchmark")
    parser.add_argument("--quick", action="store_true", help="n up to 1e7")
    parser.add_argument("--max-exp", type=int, default=9, help="largest n as a power of ten")
    parser.add_argument("--out", default=RESULTS, help="folder for JSON and PNG results")
    args = parser.parse_args(argv)
    import cupy as cp
    import relu_ufunc.cuda as rc
    torch = optional("torch")
    if torch is not None and not torch.cuda.is_available():
        torch = None
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    info = {"gpu": name, "multiprocessors": props["multiProcessorCount"],
            "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
            "cupy": cp.__version__, "numpy": np.__version__,
            "torch": getattr(torch, "__version__", None), "relu_ufunc": "relu_ufunc.cuda",
            "date": time.strftime("%Y-%m-%d")}
    info["title"] = (f"relu_ufunc.cuda (CuPy {cp.__version__} ElementwiseKernel), {name}, "
                     f"torch {info['torch']}, {info['date']}")
    print(info)
    sizes = [10**k for k in range(3, (7 if args.quick else args.max_exp) + 1)]
    rows = []
    for op in GPU_OPS:
        for dt in (cp.float16, cp.float32, cp.float64):
            for n in sizes:
                need = (GPU_OPS[op] + 3) * n * np.dtype(dt).itemsize   # + temporaries
                if need > cp.cuda.runtime.memGetInfo()[0]:
                    print(f"skip {op} {np.dtype(dt).name} n={n:.0e}: not enough memory")
                    continue
                rows += measure(cp, rc, torch, op, dt, n)
                cp.get_default_memory_pool().free_all_blocks()
                if torch is not None:
                    torch.cuda.empty_cache()
                print(f"{op} {np.dtype(dt).name} n={n:.0e} done", flush=True)
    tag = "gpu-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    if args.quick:
        tag += "-quick"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, tag + ".json"), "w") as f:
        json.dump({"machine": info, "results": rows}, f, indent=1)
    plot(rows, info, lambda op: os.path.join(args.out, f"{tag}-{op}.png"))
    print(table(rows))


if __name__ == "__main__":
    main()
