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
    if all(d is int or d is float for d in dtypes):      # no array: NumPy's defaults
        dtypes = [np.dtype(d) for d in dtypes]
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


# ---- the contiguous fast path ---------------------------------------------
# One element per thread moves 2-4 bytes per load, too few bytes in flight to
# fill an H100's memory pipe: float32 relu ran at 56% of a device copy, and
# float16 at 29%.  Contiguous, 16-byte aligned arrays therefore go through a
# second ElementwiseKernel over raw arrays, whose threads each move one
# 16-byte vector of every array (16 // itemsize elements); the tail is done
# element by element.  This is plumbing: the formulas are still the header's.
VECTOR_BYTES = 16
VECTOR_PREAMBLE = ("\ntemplate <typename T, int W>\n"
                   "struct __align__(16) relu_vec { T v[W]; };\n")


def vector_width(dtype):
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def vector_kernel_spec(name, dtype, scalar_inputs):
    """(in_params, out_params, operation, kernel name) of the fast path, for
    raw 1-d contiguous arrays, launched with size = ceil(n / width).  An input
    flagged in `scalar_inputs` is passed by value (a Python scalar, e.g. alpha)."""
    dtype = np.dtype(dtype)
    sfx, w = suffix(dtype.char), vector_width(dtype)
    ins = ARG_NAMES[name]
    arrays = [a for a, s in zip(ins, scalar_inputs) if not s]
    in_params = ", ".join(("T " if s else "raw T ") + a for a, s in zip(ins, scalar_inputs))
    vec_args = ", ".join(a if s else f"{a}_v.v[k]" for a, s in zip(ins, scalar_inputs))
    elt_args = ", ".join(a if s else f"{a}[j]" for a, s in zip(ins, scalar_inputs))
    loads = " ".join(f"const V {a}_v = reinterpret_cast<const V*>(&{a}[0])[i];"
                     for a in arrays)
    operation = (
        f"typedef relu_vec<T, {w}> V;\n"
        f"const ptrdiff_t n = y.size(), j0 = (ptrdiff_t)i * {w};\n"
        f"if (j0 + {w} <= n) {{\n"
        f"  {loads}\n"
        f"  V y_v;\n"
        f"#pragma unroll\n"
        f"  for (int k = 0; k < {w}; ++k) y_v.v[k] = {name}_{sfx}({vec_args});\n"
        f"  reinterpret_cast<V*>(&y[0])[i] = y_v;\n"
        f"}} else {{\n"
        f"  for (ptrdiff_t j = j0; j < n; ++j) y[j] = {name}_{sfx}({elt_args});\n"
        f"}}")
    form = "".join("s" if s else "a" for s in scalar_inputs)
    return in_params, "raw T y", operation, f"relu_ufunc_{name}_{sfx}_vec_{form}"
