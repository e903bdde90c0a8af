"""GPU benchmark of relu_ufunc.cuda (needs CuPy and an NVIDIA GPU).

    python -m benchmarks.gpu              # bandwidth at n = 1e3 .. 1e9, as memory allows
    python -m benchmarks.gpu --check      # n = 1e6 .. 1e8 and fewer repeats (about a minute)
    python -m benchmarks.gpu --from-json gpu-<name>.json   # table and plot again, no GPU

Three parts, each written to the JSON and table as soon as it is done:

1. Host time per call, the cost at small n.  cupyx.profiler.benchmark's CPU
   times (time.perf_counter around each call, the GPU idle before it), median
   of several rounds, float32, n = 1 .. 1e4: relu, relu_grad and
   relu_backward, with out= and without, against cp.maximum(x, 0, out=y) and
   cp.maximum(x, 0); and what is under them: the general path
   (ElementwiseKernel, as every call went before the fast path), the
   ElementwiseKernel call alone, and the bare RawKernel launch.  With torch,
   the same calls on torch tensors against torch's own.
2. Fused bias + relu: a user's ElementwiseKernel that includes relu_ufunc.h
   and computes relu_f32(x + b) in one pass, against rc.relu(x + b) (two
   passes and a temporary), by CUDA events.
3. Bandwidth at large n: relu, relu_grad, relu_backward and leaky_relu at
   float16, float32 and float64 against a device-to-device copy of the same
   bytes (the limit), CuPy and PyTorch, by CUDA events around back-to-back
   calls (median of repeats), as GB/s and a fraction of copy bandwidth.

Writes gpu-<device>.json, gpu-<device>-table.txt (with the docs' markdown
tables at its end) and gpu-<device>.png to --out (gpu-<device>-check.* with
--check, -quick with --quick).  benchmarks/gpu_check.sh
runs the GPU tests and then this, on a GPU machine.
"""
import argparse
import json
import os
import re
import time

import numpy as np

from benchmarks.run import RESULTS, by_size, optional

# Arrays each function moves per element: inputs read plus output written.
GPU_OPS = {"relu": 2, "relu_grad": 2, "relu_backward": 3, "leaky_relu": 2}
HOST_OPS = ("relu", "relu_grad", "relu_backward")
HOST_SIZES = [1, 10, 100, 10**3, 10**4]
ALPHA = 0.01
FUSED_HEADER = '#include "relu_ufunc.h"'


# ---- 1. host time per call -----------------------------------------------------

def host_impls(cp, rc, torch, op, x, dy, y):
    """(label, kind, fn): kind "ours-out"/"ours-new" are the calls the issue
    times, "ref-out"/"ref-new" cp.maximum, the rest what is under them."""
    nin = 2 if op == "relu_backward" else 1
    args = (dy, x) if nin == 2 else (x,)
    shown = "dy, x" if nin == 2 else "x"
    f = getattr(rc, op)
    f32 = np.dtype(np.float32)
    raw = rc._raw_kernel(op, f32, "a" * nin)
    kernels = rc._cuda_kernels
    grid, block = kernels.grid(x.size, kernels.per_block(f32)), (kernels.BLOCK,)
    element = rc._kernel(op, f32, False)
    impls = [
        (f"rc.{op}({shown}, out=y)", "ours-out", lambda: f(*args, out=y)),
        (f"rc.{op}({shown})", "ours-new", lambda: f(*args)),
        ("cp.maximum(x, 0, out=y)", "ref-out", lambda: cp.maximum(x, 0, out=y)),
        ("cp.maximum(x, 0)", "ref-new", lambda: cp.maximum(x, 0)),
        ("general path (as before the fast path), out=y", "general",
         lambda: rc._call(op, args, y, True, None)),
        ("ElementwiseKernel call alone, out=y", "elementwise", lambda: element(*args, y)),
        ("RawKernel launch alone", "raw", lambda: raw(grid, block, (*args, y, x.size))),
    ]
    if nin == 2:
        impls.append(("cp.add(dy, x, out=y)", "other", lambda: cp.add(dy, x, out=y)))
    if torch is not None:
        t, tdy, o = (torch.as_tensor(a, device="cuda") for a in (x, dy, y))
        targs = (tdy, t) if nin == 2 else (t,)
        impls += [(f"torch: rc.{op}(t, out=o)", "torch-ours-out", lambda: f(*targs, out=o)),
                  (f"torch: rc.{op}(t)", "torch-ours-new", lambda: f(*targs))]
        theirs = {"relu": ("torch.relu(t)", lambda: torch.relu(t)),
                  "relu_grad": ("(t > 0).to(t.dtype)", lambda: (t > 0).to(t.dtype)),
                  "relu_backward": ("torch threshold_backward(dy, t, 0)",
                                    lambda: torch.ops.aten.threshold_backward(tdy, t, 0))}[op]
        impls.append((f"torch: {theirs[0]}", "torch-ref-new", theirs[1]))
        impls.append(("torch: torch.clamp_min(t, 0, out=o)", "torch-ref-out",
                      lambda: torch.clamp_min(t, 0, out=o)))
    return impls


def host_times(cp, rc, torch, sizes, n_repeat, rounds, log=print):
    from cupyx.profiler import benchmark
    rows = []
    for op in HOST_OPS:
        for n in sizes:
            rng = cp.random.default_rng(n)
            x = rng.standard_normal(n, dtype=cp.float32)
            dy = rng.standard_normal(n, dtype=cp.float32)
            y = cp.empty_like(x)
            impls = host_impls(cp, rc, torch, op, x, dy, y)
            cpu = {label: [] for label, _, _ in impls}
            gpu = {label: [] for label, _, _ in impls}
            for r in range(rounds):             # a rotating order: drift falls on all
                for label, _, fn in impls[r % len(impls):] + impls[:r % len(impls)]:
                    res = benchmark(fn, n_repeat=n_repeat, n_warmup=20, name=label)
                    cpu[label] += res.cpu_times.tolist()
                    gpu[label] += res.gpu_times[0].tolist()
            for label, kind, _ in impls:
                c = np.asarray(cpu[label]) * 1e6
                rows.append({"op": op, "dtype": "float32", "n": n, "impl": label, "kind": kind,
                             "cpu_us": float(np.median(c)),
                             "cpu_us_p10": float(np.percentile(c, 10)),
                             "cpu_us_p90": float(np.percentile(c, 90)),
                             "gpu_us": float(np.median(gpu[label]) * 1e6),
                             "calls": int(c.size)})
            log(f"host {op} n={n} done")
    return rows


def _pick(rows, op, n, kind):
    return next((r for r in rows if r["op"] == op and r["n"] == n and r["kind"] == kind), None)


def host_table(rows, markdown=False):
    """Our host time per call against cp.maximum's, with and without out=;
    'ok' where ours is at or below."""
    lines = []
    if markdown:
        lines += ["| function | n | `rc.f(..., out=y)` | `cp.maximum(x, 0, out=y)` | ratio "
                  "| `rc.f(...)` | `cp.maximum(x, 0)` | ratio | general path | RawKernel alone |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    else:
        lines.append("host time per call, us (cupyx.profiler.benchmark CPU time, median; "
                     "float32; ratio = ours / cp.maximum's, ok where <= 1)")
        lines.append(f"{'function':<14} {'n':>6} {'out=y':>7} {'cp.max':>7} {'ratio':>9} "
                     f"{'new':>7} {'cp.max':>7} {'ratio':>9} {'general':>8} {'EK':>6} "
                     f"{'raw':>6}  torch: {'rc out':>6} {'rc new':>6} {'theirs':>6} {'out':>6}")
    for op in HOST_OPS:
        for n in sorted({r["n"] for r in rows if r["op"] == op}):
            get = {k: _pick(rows, op, n, k) for k in (
                "ours-out", "ref-out", "ours-new", "ref-new", "general", "elementwise", "raw",
                "torch-ours-out", "torch-ours-new", "torch-ref-new", "torch-ref-out")}
            us = {k: (r["cpu_us"] if r else float("nan")) for k, r in get.items()}
            r_out, r_new = us["ours-out"] / us["ref-out"], us["ours-new"] / us["ref-new"]

            def verdict(r):
                return "ok" if r <= 1.0 else "OVER"
            if markdown:
                lines.append(f"| {op} | {n:g} | {us['ours-out']:.1f} us | {us['ref-out']:.1f} us "
                             f"| {r_out:.2f} | {us['ours-new']:.1f} us | {us['ref-new']:.1f} us "
                             f"| {r_new:.2f} | {us['general']:.1f} us | {us['raw']:.1f} us |")
            else:
                lines.append(
                    f"{op:<14} {n:>6g} {us['ours-out']:>7.1f} {us['ref-out']:>7.1f} "
                    f"{r_out:>5.2f} {verdict(r_out):<3} {us['ours-new']:>7.1f} "
                    f"{us['ref-new']:>7.1f} {r_new:>5.2f} {verdict(r_new):<3} "
                    f"{us['general']:>8.1f} {us['elementwise']:>6.1f} {us['raw']:>6.1f}  "
                    f"       {us['torch-ours-out']:>6.1f} {us['torch-ours-new']:>6.1f} "
                    f"{us['torch-ref-new']:>6.1f} {us['torch-ref-out']:>6.1f}")
    return "\n".join(lines)


# ---- 2. fused bias + relu --------------------------------------------------------

FUSED_SHAPES = [(256, 1024), (1024, 4096), (4096, 4096), (8192, 8192)]


def fused_times(cp, rc, shapes, log=print):
    import relu_ufunc
    bias_relu = cp.ElementwiseKernel(
        "float32 x, float32 b", "float32 y", "y = relu_f32(x + b)", "bench_bias_relu",
        preamble=FUSED_HEADER, options=("-I" + relu_ufunc.get_include(),))
    rows = []
    for rows_, cols in shapes:
        rng = cp.random.default_rng(cols)
        x = rng.standard_normal((rows_, cols), dtype=cp.float32)
        b = rng.standard_normal(cols, dtype=cp.float32)
        y, t = cp.empty_like(x), cp.empty_like(x)
        n = x.size

        def unfused_out():
            cp.add(x, b, out=t)
            rc.relu(t, out=t)
        impls = [("fused: bias_relu(x, b, y)", "fused-out", lambda: bias_relu(x, b, y)),
                 ("fused: bias_relu(x, b)", "fused-new", lambda: bias_relu(x, b)),
                 ("rc.relu(x + b)", "unfused-new", lambda: rc.relu(x + b)),
                 ("cp.add(x, b, out=t); rc.relu(t, out=t)", "unfused-out", unfused_out),
                 ("copy of x (cudaMemcpy D2D)", "limit",
                  lambda: y.data.copy_from_device_async(x.data, x.nbytes))]
        for label, kind, fn in impls:
            med, samples = event_seconds(cp, fn)
            rows.append({"op": "bias+relu", "dtype": "float32", "n": n, "shape": [rows_, cols],
                         "impl": label, "kind": kind, "seconds": med, "samples": samples,
                         "gb_per_s": 2 * n * 4 / med / 1e9})
        cp.get_default_memory_pool().free_all_blocks()
        log(f"fused {rows_}x{cols} done")
    return rows


def fused_table(rows, markdown=False):
    lines = []
    if markdown:
        lines += ["| x (float32), bias per column | fused `bias_relu(x, b)` | `rc.relu(x + b)` "
                  "| speedup | fused, out=y | `cp.add(x, b, out=t)` + `rc.relu(t, out=t)` "
                  "| speedup |", "| --- | --- | --- | --- | --- | --- | --- |"]
    else:
        lines.append("fused bias + relu: a user's ElementwiseKernel with relu_ufunc.h, "
                     "relu_f32(x + b), against two passes (CUDA events, median; speedup = "
                     "unfused / fused)")
    for n in sorted({r["n"] for r in rows}):
        at = {r["kind"]: r for r in rows if r["n"] == n}
        shape = "x".join(map(str, at["fused-new"]["shape"]))
        s_new = at["unfused-new"]["seconds"] / at["fused-new"]["seconds"]
        s_out = at["unfused-out"]["seconds"] / at["fused-out"]["seconds"]
        us = {k: r["seconds"] * 1e6 for k, r in at.items()}
        if markdown:
            lines.append(f"| {shape} | {us['fused-new']:.1f} us | {us['unfused-new']:.1f} us "
                         f"| {s_new:.2f}x | {us['fused-out']:.1f} us "
                         f"| {us['unfused-out']:.1f} us | {s_out:.2f}x |")
        else:
            lines.append(f"  {shape:>10} ({n:.1e}): fused {us['fused-new']:8.1f} us, "
                         f"rc.relu(x + b) {us['unfused-new']:8.1f} us, speedup {s_new:.2f}x;  "
                         f"with out= {us['fused-out']:8.1f} vs {us['unfused-out']:8.1f} us, "
                         f"{s_out:.2f}x;  fused at {at['fused-out']['gb_per_s']:.0f} GB/s, "
                         f"copy {at['limit']['gb_per_s']:.0f} GB/s")
    return "\n".join(lines)


# ---- 3. bandwidth ------------------------------------------------------------------

def implementations(cp, rc, torch, op, x, dy, y):
    f32 = cp.float32
    storage = rc._cuda_kernels.storage_dtype(x.dtype)
    xs, dys, ys = (a.view(storage) for a in (x, dy, y))
    alpha = np.asarray(ALPHA, x.dtype).view(storage)[()]
    kernel_args = {"relu_backward": (dys, xs), "leaky_relu": (xs, alpha)}.get(op, (xs,))
    form = "".join("s" if a is alpha else "a" for a in kernel_args)
    kernel = rc._raw_kernel(op, x.dtype, form)
    kernels = rc._cuda_kernels
    grid, block = kernels.grid(x.size, kernels.per_block(x.dtype)), (kernels.BLOCK,)
    alone = ("RawKernel launch alone", "kernel",
             lambda: kernel(grid, block, (*kernel_args, ys, x.size)))
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


def measure(cp, rc, torch, op, dt, n, repeat=9):
    rng = cp.random.default_rng(n)
    x = rng.standard_normal(n, dtype=cp.float32).astype(dt)      # half negative
    dy = rng.standard_normal(n, dtype=cp.float32).astype(dt)
    y = cp.empty_like(x)
    rows = []
    nbytes = GPU_OPS[op] * n * x.itemsize
    for label, kind, fn in implementations(cp, rc, torch, op, x, dy, y):
        med, samples = event_seconds(cp, fn, repeat=repeat)
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
            lines.append(f"\n{op} {dt} (fastest of ours {floor * 1e6:.1f} us;"
                         f" other columns: our time / theirs)")
            for n, at, ours, limit in sizes:
                others = "  ".join(f"{k}: {ours['seconds'] / r['seconds']:.2f}"
                                   for k, r in at.items() if r["kind"] not in ("ours", "limit"))
                frac = limit["seconds"] / ours["seconds"]
                lines.append(f"  n=1e{round(np.log10(n))} {ours['seconds'] * 1e6:9.1f} us "
                             f"{ours['gb_per_s']:7.0f} GB/s = {frac:.0%} of copy "
                             f"({limit['gb_per_s']:.0f} GB/s)  {others}")
    return "\n".join(lines)


# ---- the plot ---------------------------------------------------------------------

def plot(data, path):
    """One figure: host time per call against n (top row), GB/s against n
    for relu and relu_backward and the fused kernel's time (bottom row)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(19, 10.5))
    styles = {"ours-out": dict(lw=2.5, color="C0"), "ours-new": dict(lw=2.5, ls="--", color="C0"),
              "ref-out": dict(lw=1.5, color="C3"), "ref-new": dict(lw=1.5, ls="--", color="C3"),
              "general": dict(lw=1, color="C2"), "elementwise": dict(lw=1, ls=":", color="C2"),
              "raw": dict(lw=1.5, ls=":", color="black"),
              "torch-ours-out": dict(lw=1.5, color="C1"),
              "torch-ours-new": dict(lw=1.5, ls="--", color="C1"),
              "torch-ref-new": dict(lw=1, ls="--", color="C4"),
              "torch-ref-out": dict(lw=1, color="C4"), "other": dict(lw=1, color="C5")}
    host = data.get("host", [])
    for ax, op in zip(axes[0], HOST_OPS):
        sel = [r for r in host if r["op"] == op]
        for impl in dict.fromkeys(r["impl"] for r in sel):
            pts = sorted((r["n"], r["cpu_us"], r["kind"]) for r in sel if r["impl"] == impl)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=impl,
                    **styles.get(pts[0][2], {}))
        ax.set(xscale="log", xlabel="n (float32)", ylabel="host time per call, us",
               title=f"{op}: host time per call (CPU time, median)")
        ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=6, loc="upper left")
    band = data.get("bandwidth", [])
    for ax, op in zip(axes[1][:2], ("relu", "relu_backward")):
        for k, dt in enumerate(("float16", "float32", "float64")):
            for kind, ls in (("ours", "-"), ("limit", ":")):
                pts = sorted((r["n"], r["gb_per_s"]) for r in band
                             if r["op"] == op and r["dtype"] == dt and r["kind"] == kind)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, marker=".",
                            color=f"C{k}", label=f"{dt}: {'ours, out=y' if kind == 'ours' else 'copy'}")
        ax.set(xscale="log", yscale="log", xlabel="n", ylabel="GB/s (bytes read + written)",
               title=f"{op}: bandwidth against a device copy")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fused = data.get("fused", [])
    ax = axes[1][2]
    for impl in dict.fromkeys(r["impl"] for r in fused):
        pts = sorted((r["n"], r["seconds"] * 1e6) for r in fused if r["impl"] == impl)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=impl)
    ax.set(xscale="log", yscale="log", xlabel="elements of x (float32)", ylabel="us per call",
           title="bias + relu: fused kernel against two passes")
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.suptitle(data["machine"].get("title", ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ---- run ------------------------------------------------------------------------------

def report(data):
    """The table .txt: every part done so far, then the docs' markdown."""
    parts = [str(data["machine"])]
    if data.get("host"):
        parts += ["", host_table(data["host"])]
    if data.get("fused"):
        parts += ["", fused_table(data["fused"])]
    if data.get("bandwidth"):
        parts += ["", "bandwidth (CUDA events, median of back-to-back calls)",
                  table(data["bandwidth"])]
    parts += ["", "---- markdown for the docs ----"]
    if data.get("host"):
        parts += ["", host_table(data["host"], markdown=True)]
    if data.get("fused"):
        parts += ["", fused_table(data["fused"], markdown=True)]
    return "\n".join(parts) + "\n"


def write(data, out, tag):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, tag + ".json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(out, tag + "-table.txt"), "w") as f:
        f.write(report(data))


def try_plot(data, out, tag):
    try:
        print("wrote", plot(data, os.path.join(out, tag + ".png")))
    except Exception as e:           # no matplotlib, say: the JSON and table are written
        print(f"no plot ({e!r}): python -m benchmarks.gpu --from-json {tag}.json draws it "
              f"from the JSON on a machine with matplotlib")


def main(argv=None):
    parser = argparse.ArgumentParser(description="relu_ufunc.cuda GPU benchmark")
    parser.add_argument("--quick", action="store_true", help="n up to 1e7")
    parser.add_argument("--check", action="store_true",
                        help="the GPU check: bandwidth n = 1e6 .. 1e8, fewer repeats")
    parser.add_argument("--max-exp", type=int, default=9, help="largest n as a power of ten")
    parser.add_argument("--out", default=RESULTS, help="folder for the JSON, table and PNG")
    parser.add_argument("--parts", nargs="+", default=["host", "fused", "bandwidth"],
                        choices=["host", "fused", "bandwidth"])
    parser.add_argument("--from-json", help="table and plot from a JSON this wrote (no GPU)")
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            data = json.load(f)
        out = os.path.dirname(os.path.abspath(args.from_json))
        tag = os.path.basename(args.from_json)[:-len(".json")]
        with open(os.path.join(out, tag + "-table.txt"), "w") as f:
            f.write(report(data))
        print(report(data))
        try_plot(data, out, tag)
        return

    import cupy as cp
    import relu_ufunc.cuda as rc
    torch = optional("torch")
    if torch is not None and not torch.cuda.is_available():
        torch = None
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    mode = "check" if args.check else "quick" if args.quick else "full"
    info = {"gpu": name, "multiprocessors": props["multiProcessorCount"],
            "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
            "cupy": cp.__version__, "numpy": np.__version__,
            "torch": getattr(torch, "__version__", None), "relu_ufunc": "relu_ufunc.cuda",
            "mode": mode, "date": time.strftime("%Y-%m-%d")}
    info["title"] = (f"relu_ufunc.cuda (CuPy {cp.__version__}), {name}, "
                     f"torch {info['torch']}, {info['date']}, {mode} run")
    print(info, flush=True)
    tag = "gpu-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    if args.quick or args.check:
        tag += "-" + mode
    data = {"machine": info}

    def log(msg):
        print(msg, flush=True)

    if "host" in args.parts:
        n_repeat, rounds = (400, 3) if args.check or args.quick else (1000, 5)
        data["host"] = host_times(cp, rc, torch, HOST_SIZES, n_repeat, rounds, log)
        write(data, args.out, tag)
        print(host_table(data["host"]), flush=True)
    if "fused" in args.parts:
        data["fused"] = fused_times(cp, rc, FUSED_SHAPES, log)
        write(data, args.out, tag)
        print(fused_table(data["fused"]), flush=True)
    if "bandwidth" in args.parts:
        top = 8 if args.check else 7 if args.quick else args.max_exp
        sizes = [10**k for k in range(6 if args.check else 3, top + 1)]
        repeat = 5 if args.check else 9
        rows = data["bandwidth"] = []
        for op in GPU_OPS:
            for dt in (cp.float16, cp.float32, cp.float64):
                for n in sizes:
                    need = (GPU_OPS[op] + 3) * n * np.dtype(dt).itemsize   # + temporaries
                    if need > cp.cuda.runtime.memGetInfo()[0]:
                        log(f"skip {op} {np.dtype(dt).name} n={n:.0e}: not enough memory")
                        continue
                    rows += measure(cp, rc, torch, op, dt, n, repeat)
                    cp.get_default_memory_pool().free_all_blocks()
                    if torch is not None:
                        torch.cuda.empty_cache()
                    log(f"{op} {np.dtype(dt).name} n={n:.0e} done")
            write(data, args.out, tag)
        print(table(rows), flush=True)
    write(data, args.out, tag)
    try_plot(data, args.out, tag)
    print(f"wrote {os.path.join(args.out, tag)}.json and -table.txt")


if __name__ == "__main__":
    main()
