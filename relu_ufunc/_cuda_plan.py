"""What relu_ufunc.cuda runs, decided without CuPy or a GPU.

Dtype resolution (NumPy's rules, for the loops the GPU has) and the CUDA
source of each ElementwiseKernel.  The kernels call the formulas of
cuda/relu_ufunc.h, the header the Cython loops include; nothing here
restates a formula.  Kept apart from relu_ufunc.cuda so that tests can check
it, and nvcc can compile its kernels, on a machine with no GPU.
"""
import numpy as np

from relu_ufunc._spec import ARG_NAMES, UFUNCS, formula_suffix

# No longdouble on the GPU.
GPU_CHARS = {name: "".join(c for c in chars if c != "g") for name, (_, chars) in UFUNCS.items()}


def suffix(char):
    return formula_suffix(char, np.dtype(char).itemsize)


def storage_dtype(dtype):
    """The dtype the kernel sees: float16 as uint16 bits (a zero-copy view)."""
    return np.dtype(np.uint16) if dtype == np.float16 else np.dtype(dtype)


def resolve(name, dtypes, dtype=None):
    """The loop dtype for inputs of `dtypes`, as NumPy's type resolver picks it:
    the first loop every input casts to safely (NEP 50 for Python scalars,
    which the caller passes as the Python type)."""
    chars = GPU_CHARS[name]
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.char in chars:
            return dtype
    else:
        for c in chars:
            if all(_can_cast(d, np.dtype(c)) for d in dtypes):
                return np.dtype(c)
    shown = ", ".join(repr(d) for d in dtypes)
    raise TypeError(f"ufunc '{name}' not supported for the input types ({shown}) on the GPU, "
                    f"and the inputs could not be safely coerced to any supported types "
                    f"according to the casting rule ''safe''")


def _can_cast(src, dst):
    # A Python scalar is weak (NEP 50).  Test identity: np.dtype("int64") == int.
    if src is int or src is float:
        return dst.kind == "f" or (src is int and dst.kind in "iu")
    return np.can_cast(src, dst, "safe")


def kernel_spec(name, dtype, masked):
    """(in_params, out_params, operation, kernel name) for cupy.ElementwiseKernel,
    for the loop dtype `dtype` (float16 is passed as its uint16 bits)."""
    dtype = np.dtype(dtype)
    sfx = suffix(dtype.char)
    ctype = storage_dtype(dtype).name          # CuPy's spelling of the C type
    ins = ARG_NAMES[name]
    in_params = ", ".join(f"{ctype} {a}" for a in ins) + (", bool m" if masked else "")
    call = f"y = {name}_{sfx}({', '.join(ins)})"
    operation = f"if (m) {call}" if masked else call
    kname = f"relu_ufunc_{name}_{sfx}" + ("_where" if masked else "")
    return in_params, f"{ctype} y", operation, kname
