"""The CPU benchmark suite.

    python -m benchmarks              # n = 1 .. 1e8, float32 and float64 (minutes)
    python -m benchmarks --quick      # n = 1 .. 1e6, under a minute

relu_ufunc's relu, relu_grad, relu_backward and leaky_relu against: the
anchors L(n) (np.copyto, np.abs and np.negative into out=, and from n = 1e7
a plain non-temporal copy loop in C, benchmarks/ntcopy.c) and L2(n) (np.add
and np.multiply of two arrays), x.copy() for a new output array, np.abs on
the same strided or in-place layout, NumPy spellings (np.maximum with and without out,
x * (x > 0), np.clip), the seed implementations, crysx_nn's Numba njit
versions, and PyTorch and numexpr when they are installed.  Inputs are randn,
so half of them are negative.  Each figure is the median of several
repeats, taken in rounds that time every implementation once, all in this
one run.

Writes benchmarks/results/cpu-<this CPU>.json, the printed tables as
cpu-<this CPU>-table.txt, and one PNG per function (time and GB/s
against n, log-log, one line per implementation), and prints how the
measured ratios compare with the targets of the speed issue.
"""
import argparse
import json
import os
import sys
import time
import timeit

import numpy as np

import relu_ufunc as ru

if __package__ in (None, ""):      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.cpu import cpu_info, cpu_slug  # noqa: E402,F401  (cpu_slug: the tests' tag)

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
FULL_SIZES = [1, 10, 100, 10**3, 10**4, 10**5, 10**6, 10**7, 10**8]
QUICK_SIZES = FULL_SIZES[:7]

# Bytes each function moves per element: inputs read plus output written.
ARRAYS_PER_ELEMENT = {"relu": 2, "relu_grad": 2, "relu_backward": 3, "leaky_relu": 2}


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def crysx_nn_kernels():
    """crysx_nn's activation functions (its activation.py): Numba njit with
    fastmath, as it ships them."""
    numba = optional("numba")
    if numba is None:
        return None
    relu = numba.njit(cache=True, fastmath=True)(lambda x: x * (x > 0))
    relu_grad = numba.njit(cache=True, fastmath=True)(
        lambda x: np.greater(x, 0.).astype(np.float32))
    return relu, relu_grad


def threaded(f, *args, **kwargs):
    """A call of f to be timed on 2 threads.  The setting is made once
    around each sample (see `timed`), as a user sets it once for many calls,
    so that the time is the ufunc's own (the line is drawn from n = 1e5 on,
    where a second thread can apply at all)."""
    def call():
        return f(*args, **kwargs)
    call.threads = 2
    return call


def anchors(x, y, nt_copy):
    """The one-input anchors of L(n): NumPy's cheapest loops on the same
    arrays, and from n = 1e7 a plain non-temporal copy loop in C."""
    impls = [("np.copyto(y, x)", "limit", lambda: np.copyto(y, x)),
             ("np.abs(x, out=y)", "anchor", lambda: np.abs(x, out=y)),
             ("np.negative(x, out=y)", "anchor", lambda: np.negative(x, out=y)),
             ("np.positive(x, out=y)", "floor", lambda: np.positive(x, out=y))]
    if nt_copy is not None and x.size >= 10**7:
        impls.append((NT_COPY, "anchor", lambda: nt_copy(x, y)))
    return impls


def implementations(op, x, dy, y, scratch, nt_copy=None):
    """(label, kind, callable) for one function on these arrays.  kind is
    'ours', 'limit' (the copy each plot draws as its limit), 'anchor' (the
    others of L(n)), 'floor' or 'other'; the first 'ours' is the headline
    (out=)."""
    f32 = np.float32
    impls = []
    if op in ("relu", "relu_grad", "leaky_relu"):
        impls += anchors(x, y, nt_copy)
    if op == "relu":
        xs, ys = x[::2], y[:(x.size + 1) // 2]          # a strided input
        ys2 = y[::2]                                     # and a strided output
        impls += [
            ("relu(x, out=y)", "ours", lambda: ru.relu(x, out=y)),
            ("relu(x)", "ours", lambda: ru.relu(x)),
            ("relu(x, out=x)", "ours", lambda: ru.relu(scratch, out=scratch)),
            ("relu(x[::2], out=z)", "ours", lambda: ru.relu(xs, out=ys)),
            ("np.abs(x, out=x)", "anchor", lambda: np.abs(scratch, out=scratch)),
            ("np.abs(x[::2], out=z)", "anchor", lambda: np.abs(xs, out=ys)),
            ("relu(x[::2], out=y[::2])", "ours", lambda: ru.relu(xs, out=ys2)),
            ("np.abs(x[::2], out=y[::2])", "anchor", lambda: np.abs(xs, out=ys2)),
            ("x.copy()", "floor", lambda: x.copy()),
            ("np.positive(x)", "floor", lambda: np.positive(x)),
            ("np.maximum(x, 0, out=y)", "other", lambda: np.maximum(x, 0, out=y)),
            ("np.maximum(x, 0)", "other", lambda: np.maximum(x, 0)),
            ("np.maximum(x, 0, out=x)", "other", lambda: np.maximum(scratch, 0, out=scratch)),
            ("x * (x > 0)", "other", lambda: x * (x > 0)),
            ("np.clip(x, 0, None)", "other", lambda: np.clip(x, 0, None)),
            ("seed: np.maximum(np.zeros(x.shape, f32), x)", "other",
             lambda: np.maximum(np.zeros(x.shape, f32), x)),
        ]
        if x.size >= 10**5:          # where a second thread can apply at all
            impls.append(("relu(x, out=y), 2 threads", "ours",
                          threaded(ru.relu, x, out=y)))
    elif op == "relu_grad":
        impls += [
            ("relu_grad(x, out=y)", "ours", lambda: ru.relu_grad(x, out=y)),
            ("relu_grad(x)", "ours", lambda: ru.relu_grad(x)),
            ("seed: np.greater(x, 0.).astype(f32)", "other",
             lambda: np.greater(x, 0.).astype(f32)),
            ("(x > 0).astype(x.dtype)", "other", lambda: (x > 0).astype(x.dtype)),
        ]
    elif op == "leaky_relu":
        a = x.dtype.type(0.01)
        impls += [
            ("leaky_relu(x, a, out=y)", "ours", lambda: ru.leaky_relu(x, a, out=y)),
            ("leaky_relu(x, a)", "ours", lambda: ru.leaky_relu(x, a)),
            # NumPy's own call with a scalar operand: its machinery costs
            # more than a one-input call's, whatever the loop does
            ("np.multiply(x, a, out=y)", "floor", lambda: np.multiply(x, a, out=y)),
            ("np.where(x > 0, x, a * x)", "other", lambda: np.where(x > 0, x, a * x)),
            ("np.maximum(x, a * x)", "other", lambda: np.maximum(x, a * x)),
        ]
        torch = optional("torch")
        if torch is not None:
            t, to = torch.from_numpy(x), torch.from_numpy(y)
            impls.append(("torch leaky_relu(t, 0.01, out=o)", "other",
                          lambda: torch._C._nn.leaky_relu(t, 0.01, out=to)))
        return impls
    else:
        impls += [
            ("relu_backward(dy, x, out=y)", "ours", lambda: ru.relu_backward(dy, x, out=y)),
            ("relu_backward(dy, x)", "ours", lambda: ru.relu_backward(dy, x)),
            ("np.add(dy, x, out=y)", "limit", lambda: np.add(dy, x, out=y)),
            ("np.multiply(dy, x, out=y)", "anchor", lambda: np.multiply(dy, x, out=y)),
            ("dy * (x > 0)", "other", lambda: dy * (x > 0)),
            ("seed: dy * np.greater(x, 0.).astype(f32)", "other",
             lambda: dy * np.greater(x, 0.).astype(f32)),
        ]
    crysx = crysx_nn_kernels()
    if crysx is not None:
        relu_njit, grad_njit = crysx
        if op == "relu":
            impls.append(("crysx_nn njit: x * (x > 0)", "other", lambda: relu_njit(x)))
        elif op == "relu_grad":
            impls.append(("crysx_nn njit: greater.astype", "other", lambda: grad_njit(x)))
        else:
            impls.append(("crysx_nn njit: dy * grad(x)", "other", lambda: dy * grad_njit(x)))
    torch = optional("torch")
    if torch is not None:
        t, tdy, to = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(y)
        if op == "relu":
            impls += [("torch.relu(t)", "other", lambda: torch.relu(t)),
                      ("torch.clamp_min(t, 0, out=o)", "other",
                       lambda: torch.clamp_min(t, 0, out=to))]
        elif op == "relu_grad":
            impls.append(("torch: (t > 0).to(t.dtype)", "other", lambda: (t > 0).to(t.dtype)))
        else:
            impls.append(("torch threshold_backward", "other",
                          lambda: torch.ops.aten.threshold_backward(tdy, t, 0)))
    ne = optional("numexpr")
    if ne is not None and op == "relu":
        impls.append(("numexpr where(x > 0, x, 0)", "other",
                      lambda: ne.evaluate("where(x > 0, x, 0)", local_dict={"x": x}, out=y)))
    return impls


def timed(fn, number):
    """Seconds for `number` calls of fn, with its thread setting held."""
    with ru.threads(getattr(fn, "threads", 1)):
        return timeit.timeit(fn, number=number)


def calibrate(fn, min_time):
    """Calls per sample, so that one sample takes at least min_time."""
    timed(fn, 1)                                      # warm up (and JIT compile)
    number = 1
    while True:
        t = timed(fn, number)
        if t >= min_time or number >= 10**6:
            return number
        number *= max(2, int(min_time / max(t, 1e-9) * 1.2))


def interleaved_medians(fns, min_time, repeat, seed=0):
    """Median seconds per call of each fn.  The samples are taken in rounds,
    each round timing every fn once, so that drift on a shared machine hits
    all of them alike and their ratios stay honest.  Each round takes them in
    a new random order: on this VM the first touch of fresh memory sometimes
    stalls for up to a second, and in a fixed order the stalls kept falling
    on the same new-array call."""
    numbers = [calibrate(fn, min_time) for fn in fns]
    samples = [[] for _ in fns]
    order = np.random.default_rng(seed)
    for _ in range(repeat):
        for k in order.permutation(len(fns)):
            samples[k].append(timed(fns[k], numbers[k]) / numbers[k])
    return [(float(np.median(s)), s) for s in samples]


def have_openmp():
    try:
        from relu_ufunc._ufuncs import HAVE_THREADS
    except ImportError:
        return False
    return bool(HAVE_THREADS)


def machine():
    cpu, family, model, _ = cpu_info()
    if family is not None:
        cpu = f"{cpu} (family {family}, model {model})"
    torch = optional("torch")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0],
            "numpy": np.__version__, "relu_ufunc": ru.__version__, "backend": ru.backend,
            "openmp": have_openmp(),
            "torch": getattr(torch, "__version__", None),
            "torch_threads": torch.get_num_threads() if torch else None,
            "date": time.strftime("%Y-%m-%d")}


def run(sizes, dtypes, ops, min_time, repeat):
    from tqdm import tqdm
    from benchmarks.probe import build, nt_copier
    probe = build() if max(sizes) >= 10**7 else None
    nt_copy = nt_copier(probe) if probe is not None else None
    rng = np.random.default_rng(0)
    rows = []
    tasks = [(op, dt, n) for dt in dtypes for n in sizes for op in ops]
    with tqdm(total=len(tasks), unit="case", file=sys.stderr) as bar:
        for op, dt, n in tasks:
            bar.set_description(f"{op} {np.dtype(dt).name} n={n:.0e}")
            x = rng.standard_normal(n).astype(dt)
            dy = rng.standard_normal(n).astype(dt)
            y, scratch = np.empty_like(x), x.copy()
            impls = implementations(op, x, dy, y, scratch, nt_copy)
            timed = interleaved_medians([fn for _, _, fn in impls], min_time, repeat)
            for (label, kind, _), (med, samples) in zip(impls, timed):
                nbytes = ARRAYS_PER_ELEMENT[op] * n * np.dtype(dt).itemsize
                rows.append({"op": op, "dtype": np.dtype(dt).name, "n": n, "impl": label,
                             "kind": kind, "seconds": med, "samples": samples,
                             "gb_per_s": nbytes / med / 1e9})
            del x, dy, y, scratch
            bar.update()
    return rows


# The targets of the speed issue: (function, ours, against, sizes, at most,
# floor).  `against` is a tuple of anchors, of which the fastest measured at
# each size counts: L(n) for one input is the fastest of np.copyto, np.abs
# and np.negative into out=, and from n = 1e7 a plain non-temporal copy loop
# in C (benchmarks/ntcopy.c); L2(n) for two inputs the faster of np.add and
# np.multiply.  The floor, where one is given, is NumPy's own cheapest call
# of the same shape: np.positive at n <= 100, which does no work at all
# beyond the call; for a scalar alpha, np.multiply(x, a, out=y), NumPy's own
# loop with one operand a scalar, whose call costs more than a one-input
# call's (np.abs) whatever the loop does.  Where floor / against is over the
# target, no inner loop can meet it.
NT_COPY = "nt copy (C probe)"
L = ("np.copyto(y, x)", "np.abs(x, out=y)", "np.negative(x, out=y)", NT_COPY)
L2 = ("np.add(dy, x, out=y)", "np.multiply(dy, x, out=y)")
SMALL, BIG, ALL = (1, 100), (10**3, 10**8), (1, 10**8)
TARGETS = [
    ("relu", "relu(x, out=y)", L, BIG, 1.05, None),
    ("relu_grad", "relu_grad(x, out=y)", L, BIG, 1.05, None),
    ("relu_backward", "relu_backward(dy, x, out=y)", L2, BIG, 1.05, None),
    ("relu", "relu(x, out=x)", ("np.abs(x, out=x)",), BIG, 1.0, None),
    ("relu", "relu(x[::2], out=z)", ("np.abs(x[::2], out=z)",), BIG, 1.1, None),
    ("relu", "relu(x[::2], out=y[::2])", ("np.abs(x[::2], out=y[::2])",), BIG, 1.1, None),
    ("leaky_relu", "leaky_relu(x, a, out=y)", ("np.abs(x, out=y)",), BIG, 1.1,
     "np.multiply(x, a, out=y)"),
    ("relu", "relu(x, out=y)", ("np.maximum(x, 0)",), SMALL, 0.45, "np.positive(x, out=y)"),
    ("relu", "relu(x, out=y)", ("np.positive(x, out=y)",), SMALL, 1.0, None),
    ("relu", "relu(x)", ("x.copy()",), (10**5, 10**8), 1.05, None),
    ("relu", "relu(x, out=y), 2 threads", ("torch.clamp_min(t, 0, out=o)",), (10**5, 10**8),
     1.0, None),
]


def target_table(rows):
    """One line per target and dtype: our worst ratio over its sizes against
    the fastest of its anchors at each size, where it falls, which anchor
    that was, and the floor's ratio there.  "MISS, floor" says the floor
    alone was over the target there."""
    index = {(r["op"], r["dtype"], r["impl"], r["n"]): r["seconds"] for r in rows}
    dtypes = sorted({r["dtype"] for r in rows})
    lines = [f"{'function':<14} {'ours':<28} {'against':<30} {'n':<12} {'dtype':<8} "
             f"{'target':>7} {'worst':>7} {'at n':>6} {'floor':>6}  "]
    for op, ours, against, (lo, hi), limit, floor in TARGETS:
        for dt in dtypes:
            ratios = []
            for (o, d, i, n) in index:
                if (o, d, i) != (op, dt, ours) or not lo <= n <= hi:
                    continue
                have = [(index[(op, dt, a, n)], a) for a in against if (op, dt, a, n) in index]
                if have:
                    best, name = min(have)
                    ratios.append((index[(op, dt, ours, n)] / best, n, name, best))
            if not ratios:
                continue
            worst, at, name, best = max(ratios)
            base = index.get((op, dt, floor, at)) if floor else None
            floor_ratio = base / best if base else None
            verdict = ("ok" if worst <= limit else
                       "MISS, floor" if floor_ratio and floor_ratio > limit else "MISS")
            shown = f"{floor_ratio:>6.2f}" if floor_ratio else f"{'-':>6}"
            label = name if len(against) == 1 else ("L(n)=" if against is L else "L2(n)=") + name
            lines.append(f"{op:<14} {ours:<28} {label[:30]:<30} {f'{lo:.0e}..{hi:.0e}':<12} "
                         f"{dt:<8} {'<=' + str(limit):>7} {worst:>7.2f} {at:>6.0e} {shown}  {verdict}")
    return "\n".join(lines)


def by_size(rows, op, dtype):
    """(n, {impl: row}, ours, limit) for each size measured of op at dtype:
    "ours" is the first row of kind "ours" (the out= call)."""
    sel = [r for r in rows if r["op"] == op and r["dtype"] == dtype]
    for n in sorted({r["n"] for r in sel}):
        at = {r["impl"]: r for r in sel if r["n"] == n}
        ours = next(r for r in at.values() if r["kind"] == "ours")
        limit = next(r for r in at.values() if r["kind"] == "limit")
        yield n, at, ours, limit


def ratio_table(rows):
    """ours(out=) / limit and ours(out=) / the best non-ours, per size."""
    out = []
    for op in ARRAYS_PER_ELEMENT:
        for dt in sorted({r["dtype"] for r in rows}):
            if not any(r["op"] == op and r["dtype"] == dt for r in rows):
                continue
            out.append(f"\n{op} {dt}: time ratios (below 1: ours is faster)")
            out.append(f"{'n':>8} {'ours us':>10} {'/limit':>7} {'/np.maximum or seed':>20} "
                       f"{'best other':>40}")
            for n, at, ours, limit in by_size(rows, op, dt):
                others = [r for r in at.values() if r["kind"] == "other"]
                base = at.get("np.maximum(x, 0)") or others[0]
                best = min(others, key=lambda r: r["seconds"])
                out.append(f"{n:>8.0e} {ours['seconds'] * 1e6:>10.3f} "
                           f"{ours['seconds'] / limit['seconds']:>7.2f} "
                           f"{ours['seconds'] / base['seconds']:>20.2f} "
                           f"{best['impl'][:32]:>32} {ours['seconds'] / best['seconds']:>7.2f}")
    return "\n".join(out)


# What each plot shows: at most six lines a panel, each the time of one
# call divided by the copy limit of the same size (the 'limit' row: a copy
# of the same bytes), so that 1 is the memory limit and the sizes share one
# scale.  Ours with out=, in place and into a new array, on 2 threads, and
# the usual NumPy spelling and torch.
PLOTTED = {
    "relu": ["relu(x, out=y)", "relu(x, out=x)", "relu(x)", "relu(x, out=y), 2 threads",
             "np.maximum(x, 0)", "torch.clamp_min(t, 0, out=o)"],
    "relu_grad": ["relu_grad(x, out=y)", "relu_grad(x)", "(x > 0).astype(x.dtype)",
                  "torch: (t > 0).to(t.dtype)"],
    "relu_backward": ["relu_backward(dy, x, out=y)", "relu_backward(dy, x)", "dy * (x > 0)",
                      "torch threshold_backward"],
    "leaky_relu": ["leaky_relu(x, a, out=y)", "leaky_relu(x, a)", "np.where(x > 0, x, a * x)",
                   "torch leaky_relu(t, 0.01, out=o)"],
}


def plot(rows, info, path_for):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    paths = []
    for op, wanted in PLOTTED.items():
        dtypes = sorted({r["dtype"] for r in rows if r["op"] == op})
        if not dtypes:
            continue
        fig, axes = plt.subplots(1, len(dtypes), figsize=(6 * len(dtypes) + 3, 4.6),
                                 squeeze=False, sharey=True, layout="constrained")
        for col, dt in enumerate(dtypes):
            ax = axes[0][col]
            limits = {n: limit["seconds"] for n, _, _, limit in by_size(rows, op, dt)}
            for k, impl in enumerate(wanted):
                pts = sorted((r["n"], r["seconds"] / limits[r["n"]]) for r in rows
                             if r["op"] == op and r["dtype"] == dt and r["impl"] == impl
                             and r["n"] in limits)
                if not pts:
                    continue
                ours = impl.startswith(op)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if ours else ".",
                        lw=2.2 if ours else 1.2, ls="-" if ours else "--", color=f"C{k}",
                        label=impl)
            ax.axhline(1.0, color="black", lw=1, ls=":", label="copy limit L(n)")
            ax.set(xscale="log", yscale="log", xlabel="n (elements)", title=f"{op}, {dt}")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel("time / L(n), the limit of the same size (1 = memory limit)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
        title = info.get("title") or (f"relu_ufunc {info['relu_ufunc']} ({info['backend']}), "
                                      f"NumPy {info['numpy']}, {info['cpu']}, "
                                      f"{info['cores']} cores, {info['date']}")
        fig.suptitle(title, fontsize=9)
        path = path_for(op)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description="relu_ufunc CPU benchmark suite")
    parser.add_argument("--quick", action="store_true", help="n up to 1e6, fewer repeats")
    parser.add_argument("--ops", nargs="+", default=list(ARRAYS_PER_ELEMENT))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--sizes", nargs="+", type=float, help="n values (default: all)")
    parser.add_argument("--out", default=RESULTS, help="folder for JSON and PNG results")
    parser.add_argument("--from-json", metavar="JSON",
                        help="measure nothing: redraw the plots of a results JSON beside it")
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        stem = args.from_json[:-len(".json")]
        for path in plot(saved["results"], saved["machine"], lambda op: f"{stem}-{op}.png"):
            print(f"wrote {path}")
        return
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = [int(n) for n in args.sizes]
    min_time, repeat = (0.005, 5) if args.quick else (0.02, 7)
    info = machine()
    print(f"machine: {info}")
    rows = run(sizes, args.dtypes, args.ops, min_time, repeat)
    os.makedirs(args.out, exist_ok=True)
    tag = f"cpu-{cpu_slug()}" + ("-quick" if args.quick else "")
    with open(os.path.join(args.out, f"{tag}.json"), "w") as f:
        json.dump({"machine": info, "quick": args.quick, "results": rows}, f, indent=1)
    paths = plot(rows, info, lambda op: os.path.join(args.out, f"{tag}-{op}.png"))
    report = (f"machine: {info}\n{ratio_table(rows)}\n\ntargets (worst ratio over the "
              f"sizes measured):\n{target_table(rows)}")
    print(report)
    with open(os.path.join(args.out, f"{tag}-table.txt"), "w") as f:
        f.write(report + "\n")
    print(f"\nwrote {os.path.join(args.out, tag + '.json')} and {', '.join(paths)}")


if __name__ == "__main__":
    main()
