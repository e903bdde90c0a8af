"""The C compiler flags of the Cython build.

Read by setup.py, and by the benchmarks' C probe (benchmarks/ntcopy.c), so
that the probe is compiled exactly as the package's own loops are.
"""
import sys


def compile_args():
    if sys.platform == "win32" and "GCC" not in sys.version:
        return ["/O2"]
    # -O3: GCC 12 vectorizes only "very cheap" loops at -O2.
    # -fno-trapping-math: otherwise GCC turns leaky_relu's (x > 0 ? 1 : a) * x
    # back into x > 0 ? x : a * x and, as that multiply "might trap", leaves
    # the loop scalar and branchy (3.0 vs 0.13 ns/element).  The flags the
    # loops leave are still checked by the tests (np.errstate(all="raise")).
    # -Werror=implicit-function-declaration: GCC 14 and clang 16 make it an
    # error anyway; older ones must not let such a build through (an ARM64
    # build once called a function that only x86-64 builds declare).
    # -g0: no debug information, as in NumPy's own release builds.  Python's
    # CFLAGS carry -g, and the DWARF of some 2,500 small kernels was 22% of
    # the extension's compile (GCC 12: 72.7 s of CPU with it, 56.7 s
    # without) and 11 of its 14.7 MB.  The symbols stay, so a profiler still
    # names each kernel; CFLAGS=-g, which comes after these, gives it back.
    return ["-O3", "-fno-trapping-math", "-Werror=implicit-function-declaration", "-g0"]
