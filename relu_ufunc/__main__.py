"""``python -m relu_ufunc``: backend, loops, a self-check and a short benchmark.

The self-check compares every loop of every ufunc with the plain-NumPy
reference on the dtype's edge values and on random data, bit for bit, with
each build of the kernels this CPU runs (baseline, AVX2, AVX-512).  The
benchmark times ``relu(x, out=y)`` against ``np.maximum(x, 0, out=y)``.
"""
import contextlib
import os
import sys
import time
import timeit

import numpy as np

import relu_ufunc
from relu_ufunc import _reference
from relu_ufunc._spec import SELECT_ONLY, UFUNCS

UFUNC_NAMES = tuple(UFUNCS)


def check_loop(name, char, rng):
    """Check one (ufunc, dtype) loop; return the number of values checked."""
    uf = getattr(relu_ufunc, name)
    ref = _reference.REFERENCE[name]
    dt = np.dtype(char)
    special = _reference.special_values(dt)
    noise = rng.standard_normal(1001) * 100
    if dt.kind in "iu":
        noise = np.clip(noise, np.iinfo(dt).min, np.iinfo(dt).max)
    x = np.concatenate([special, noise.astype(dt)])
    if name in SELECT_ONLY:
        args = [x] if uf.nin == 1 else [rng.permutation(x), x]
        strict = {"all": "raise"}    # NaN data must leave the FP flags clean
    else:                            # (x, alpha): a realistic slope
        args = [x, rng.uniform(0.01, 1.0, x.size).astype(dt)]
        # alpha * tiny x may underflow, as in np.multiply; and where x is
        # +inf the vectorized loop may raise "invalid" for a product it does
        # not return (docs/contract.md).  Elsewhere, NaN included, no flag.
        strict = {"all": "ignore"}
        keep = ~np.isposinf(x)
        with np.errstate(invalid="raise", under="ignore", over="ignore"):
            uf(x[keep], args[1][keep])
    with np.errstate(**strict):
        got = uf(*args)
    if not _reference.same_bits(got, ref(*args)):
        raise AssertionError(f"{name} disagrees with the reference on {dt}")
    return x.size


def cpu_levels():
    """The kernel builds this CPU runs (Cython backend; see _loops_common.h)."""
    if relu_ufunc.backend != "cython":
        return []
    from relu_ufunc import _ufuncs
    return list(range(_ufuncs.MAX_CPU_LEVEL + 1))


@contextlib.contextmanager
def cpu_level(level):
    """Run the kernel build of `level` in the block (None: leave it)."""
    if level is None:
        yield
        return
    from relu_ufunc import _ufuncs
    old = _ufuncs._set_cpu_level(level)
    try:
        yield
    finally:
        _ufuncs._set_cpu_level(old)


def _mib(nbytes):
    return f"{nbytes / 2**20:g} MiB"


def store_plan_lines():
    """The store strategy at each output size, and why (Cython backend)."""
    from relu_ufunc import _ufuncs
    level = _ufuncs.CPU_LEVELS[_ufuncs._cpu_level()]
    why_level = {"AVX-512": "this CPU reports AVX-512 F/BW/CD/DQ/VL",
                 "AVX2": "this CPU reports AVX2 but not all of AVX-512 F/BW/CD/DQ/VL",
                 "baseline": "this CPU (or this build) has neither AVX2 nor AVX-512"}[level]
    lines = [f"kernel build: {level} ({why_level}); e.g. relu on float32 runs "
             f"relu_f_plain_{level.lower().replace('-', '')}"]
    if not _ufuncs.HAVE_STREAM:
        lines.append("stores: plain at every size (this build has no streaming stores)")
        return lines
    lo = _mib(_ufuncs.PLAN_FROM)
    teams = [1]
    if _ufuncs.HAVE_THREADS and len(os.sched_getaffinity(0)) >= 2:
        teams.append(2)
    for team in teams:
        stream_from, sizes = _ufuncs._store_plan(threads=team)
        on = "on the calling thread" if team == 1 else f"on {team} threads (relu_ufunc.threads({team}))"
        lines.append(f"stores of a contiguous output that overlaps no input, {on}, by output size:")
        lines.append(f"  below {lo:<10} plain      fits in cache, where streaming cannot win "
                     f"(not measured)")
        if sizes and sizes[0][0] > _ufuncs.PLAN_FROM:
            below = _mib(sizes[0][0] // 2)
            span = lo if below == lo else f"{lo} to {below}"
            lines.append(f"  {span:<16} plain      not measured: streaming lost at a larger size")
        for nbytes, plain, streamed in sizes:
            kind = "streamed" if stream_from is not None and nbytes >= stream_from else "plain"
            lines.append(f"  {_mib(nbytes):<16} {kind:<10} measured: plain {plain * 1e6:8.1f} us, "
                         f"streamed {streamed * 1e6:8.1f} us ({streamed / plain:.2f}x)")
        if stream_from is None:
            lines.append("  at every size     plain      streaming did not win by 15% at 64 MiB")
        else:
            lines.append(f"  from {_mib(stream_from):<11} streamed   the smallest size from which "
                         f"streaming won by 15% or more at it and every larger size")
    ahead, tried = _ufuncs._stream_ahead()
    if tried:
        lines.append("streamed stores prefetch their inputs, measured at 64 MiB streamed on the "
                     "calling thread, by bytes ahead (shared among a kernel's inputs):")
        for nbytes, seconds in tried:
            mark = "chosen" if nbytes == ahead else ""
            lines.append(f"  {nbytes or 'none':<16} {mark:<10} measured: {seconds * 1e6:8.1f} us "
                         f"({seconds / tried[0][1]:.2f}x none)")
        if ahead == 0:
            lines.append("  no prefetch: none of the distances was 5% or more faster than none")
    else:
        lines.append(f"streamed stores prefetch their inputs {ahead} bytes ahead (set, not measured)")
    lines.append("in place, or an output overlapping an input: plain stores at every size (the line was just read)")
    lines.append("strided inputs: a strided kernel of the same build, straight into a contiguous y")
    if level in ("AVX-512", "AVX2"):
        window = ("a 64-byte window of y per masked store" if level == "AVX-512"
                  else "a 32-byte window of y at a time, a store per element")
        lines.append("strided output, every operand at its stride (x[::2] into y[::2]), select-only "
                     f"functions: {window}")
    lines.append("other strided outputs: that kernel into L1 blocks of 256, then copied out")
    lines.append("aliased operands (reduce, accumulate): one element at a time, in order")
    return lines


def bench(n, rng, repeat=7):
    x = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    number = max(1, int(2e6 // max(n, 100)))
    t_ours = timeit.repeat(lambda: relu_ufunc.relu(x, out=y), number=number, repeat=repeat)
    t_max = timeit.repeat(lambda: np.maximum(x, 0, out=y), number=number, repeat=repeat)
    return np.median(t_ours) / number, np.median(t_max) / number


def main():
    t0 = time.perf_counter()
    print(f"relu_ufunc {relu_ufunc.__version__}  (NumPy {np.__version__}, "
          f"Python {sys.version.split()[0]})")
    print(f"backend: {relu_ufunc.backend}")
    levels = cpu_levels()
    if levels:
        from relu_ufunc import _ufuncs
        print(_ufuncs.BUILD_INFO)
        print(f"kernels: {_ufuncs.CPU_LEVELS[_ufuncs._cpu_level()]} build, of "
              f"{', '.join(_ufuncs.CPU_LEVELS)} (this CPU runs up to "
              f"{_ufuncs.CPU_LEVELS[_ufuncs.MAX_CPU_LEVEL]})")
        for line in store_plan_lines():
            print(line)
    print("loops:")
    for name in UFUNC_NAMES:
        uf = getattr(relu_ufunc, name)
        print(f"  {name:<16} {' '.join(uf.types)}")

    rng = np.random.default_rng(0)
    print("self-check against the NumPy reference (edge values and random data, "
          "bit for bit, FP errors raising):")
    for name in UFUNC_NAMES:
        types = getattr(relu_ufunc, name).types
        checked = 0
        for level in levels or [None]:
            with cpu_level(level):
                checked += sum(check_loop(name, t[0], rng) for t in types)
        builds = f" x {len(levels)} kernel builds" if len(levels) > 1 else ""
        print(f"  {name:<16} ok: {len(types)} loops{builds}, {checked} values")

    sizes = (10, 10_000, 1_000_000)
    print("benchmark: relu(x, out=y) vs np.maximum(x, 0, out=y), float32, medians")
    for i, n in enumerate(sizes, 1):
        ours, theirs = bench(n, rng)
        print(f"  [{i}/{len(sizes)}] n={n:>9,}: {ours * 1e6:10.2f} us vs "
              f"{theirs * 1e6:10.2f} us   ratio {ours / theirs:.2f}x")
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
