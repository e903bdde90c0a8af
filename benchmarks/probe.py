"""benchmarks/ntcopy.c, built with the package's own compiler flags and
loaded with ctypes: a plain non-temporal copy, one of the anchors L(n)."""
import ctypes
import os
import shlex
import subprocess
import sysconfig
import tempfile

import numpy as np

from relu_ufunc._flags import compile_args

HERE = os.path.dirname(os.path.abspath(__file__))


def build():
    """The probe as a ctypes library, or None where it cannot be built (no
    C compiler, or not x86-64)."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    out = os.path.join(tempfile.mkdtemp(prefix="relu-probe-"), "ntcopy.so")
    cmd = cc + compile_args() + ["-shared", "-fPIC", os.path.join(HERE, "ntcopy.c"), "-o", out]
    try:
        subprocess.run(cmd, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    lib = ctypes.CDLL(out)
    lib.nt_copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.nt_copy.restype = None
    lib.nt_level.restype = ctypes.c_int
    return lib


def nt_copier(lib):
    """nt_copy(x, y): y[...] = x through streaming stores (both contiguous)."""
    level = lib.nt_level()
    copy = lib.nt_copy

    def nt_copy(x, y):
        copy(x.ctypes.data, y.ctypes.data, x.nbytes, level)
    return nt_copy


if __name__ == "__main__":
    lib = build()
    x = np.arange(1000, dtype=np.float32)
    y = np.zeros_like(x)
    nt_copier(lib)(x, y)
    print("nt_copy ok:", bool((x == y).all()), "level", lib.nt_level())
