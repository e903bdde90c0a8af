"""The CUDA sources of relu_ufunc.cuda's kernels, and what the GPU has.

The kernels call the formulas of cuda/relu_ufunc.h, the header the CPU loops
include; nothing here restates a formula.  Nothing here imports CuPy: NVRTC
or nvcc can compile every kernel on a machine with no GPU (the tests do).
"""
import functools
import os
import sys

import numpy as np

from relu_ufunc._spec import (ARG_NAMES, FORMULA_C_TYPES, FUNCTIONS, ML_TYPES, UFUNCS,
                              formula_suffix, formula_suffixes, small_formats)

# No longdouble on the GPU.
GPU_CHARS = {name: "".join(c for c in chars if c != "g") for name, (_, chars) in UFUNCS.items()}
_ML_SUFFIX = {t.name: t.suffix for t in ML_TYPES}


def ml_gpu_dtypes():
    """The ml_dtypes formats with GPU kernels (every function has them),
    once ml_dtypes is imported: no array of one can exist before."""
    ml = sys.modules.get("ml_dtypes")
    if ml is None:
        return []
    return [np.dtype(getattr(ml, t.name)) for t in ML_TYPES if t.gpu and hasattr(ml, t.name)]


def is_ml(dtype):
    return np.dtype(dtype).name in _ML_SUFFIX


def suffix(dtype):
    """The formula suffix of a dtype (or type character)."""
    dtype = np.dtype(dtype)
    if is_ml(dtype):
        return _ML_SUFFIX[dtype.name]
    return formula_suffix(dtype.char, dtype.itemsize)


@functools.lru_cache(maxsize=None)
def ml_c_types():
    """{suffix: C type of its bits} of the ml_dtypes formats, from their
    RELU_DEFINE_SMALL lines in the header."""
    import relu_ufunc
    with open(os.path.join(relu_ufunc.get_include(), "relu_ufunc.h")) as f:
        return {sfx: fmt.ctype for sfx, fmt in small_formats(f.read()).items()}


def c_type(dtype):
    """The C type of the formulas' values for a dtype."""
    sfx = suffix(dtype)
    return FORMULA_C_TYPES.get(sfx) or ml_c_types()[sfx]


def storage_dtype(dtype):
    """The dtype the kernel sees: float16 and the ml_dtypes formats as their
    bits, an unsigned integer of their size (a zero-copy view)."""
    dtype = np.dtype(dtype)
    if dtype == np.float16 or is_ml(dtype):
        return np.dtype(f"u{dtype.itemsize}")
    return dtype


def kernel_spec(name, dtype, masked):
    """(in_params, out_params, operation, kernel name) for cupy.ElementwiseKernel,
    for the loop dtype `dtype` (float16 is passed as its uint16 bits)."""
    dtype = np.dtype(dtype)
    sfx = suffix(dtype)
    ctype = storage_dtype(dtype).name          # CuPy's spelling of the C type
    ins = ARG_NAMES[name]
    in_params = ", ".join(f"{ctype} {a}" for a in ins) + (", bool m" if masked else "")
    call = f"y = {name}_{sfx}({', '.join(ins)})"
    operation = f"if (m) {call}" if masked else call
    kname = f"relu_ufunc_{name}_{sfx}" + ("_where" if masked else "")
    return in_params, f"{ctype} y", operation, kname


# ---- the contiguous kernels (cupy.RawKernel) -------------------------------
# One element per thread moves 2-4 bytes per load, too few bytes in flight to
# fill an H100's memory pipe: float32 relu ran at 56% of a device copy, and
# float16 at 29%.  Contiguous arrays therefore go through raw kernels whose
# threads each move one 16-byte vector of every array (16 // itemsize
# elements), when every pointer is 16-byte aligned (the kernel checks, on the
# device); the tail, and unaligned arrays, go element by element.  They are
# plain CUDA launched by cupy.RawKernel with a grid computed from n alone, so
# a call pays none of ElementwiseKernel's per-call work (type resolution,
# broadcasting, argument info, kernel memo): that is the fast path.  This is
# plumbing: the formulas are still the header's.
VECTOR_BYTES = 16
BLOCK = 128                  # threads per block, as ElementwiseKernel's default
VECTOR_PREAMBLE = ("\ntemplate <typename T, int W>\n"
                   "struct __align__(16) relu_vec { T v[W]; };\n")
# Input forms: "a" an array, "s" a scalar passed by value (alpha = 0.01, say).
FORMS = {1: ("a",), 2: ("aa", "as", "sa")}


def vector_width(dtype):
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def gpu_dtypes(name):
    """The distinct dtypes of `name`'s GPU loops, in NumPy's order, then the
    ml_dtypes formats'."""
    return list(dict.fromkeys(np.dtype(c) for c in GPU_CHARS[name])) + ml_gpu_dtypes()


def raw_kernel_name(name, dtype, form):
    return f"relu_ufunc_{name}_{suffix(dtype)}_{form}"


def raw_kernel_source(name, dtype, form):
    """One extern "C" kernel: y[j] = name(inputs[j]) for j < n, over
    contiguous arrays (inputs flagged "s" in `form` by value), 16-byte
    vectors where every pointer is aligned.  Launch with any grid of
    BLOCK-thread blocks: the loops stride by the grid."""
    dtype = np.dtype(dtype)
    sfx, w = suffix(dtype), vector_width(dtype)
    ctype = c_type(dtype)
    ins = ARG_NAMES[name]
    arrays = [a for a, f in zip(ins, form) if f == "a"]
    params = ", ".join(f"const {ctype} *{a}" if f == "a" else f"{ctype} {a}"
                       for a, f in zip(ins, form))
    aligned = " | ".join(f"(unsigned long long){a}" for a in arrays + ["y"])
    loads = " ".join(f"const V {a}_v = reinterpret_cast<const V *>({a})[i];" for a in arrays)
    vec_args = ", ".join(f"{a}_v.v[k]" if f == "a" else a for a, f in zip(ins, form))
    elt_args = ", ".join(f"{a}[j]" if f == "a" else a for a, f in zip(ins, form))
    return (
        f'extern "C" __global__ void {raw_kernel_name(name, dtype, form)}'
        f"({params}, {ctype} *y, long long n)\n"
        f"{{\n"
        f"    typedef relu_vec<{ctype}, {w}> V;\n"
        f"    const long long start = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
        f"    const long long step = (long long)gridDim.x * blockDim.x;\n"
        f"    long long j0 = 0;\n"
        f"    if ((({aligned}) & {VECTOR_BYTES - 1}ULL) == 0) {{\n"
        f"        const long long nv = n / {w};\n"
        f"        for (long long i = start; i < nv; i += step) {{\n"
        f"            {loads}\n"
        f"            V y_v;\n"
        f"#pragma unroll\n"
        f"            for (int k = 0; k < {w}; ++k) y_v.v[k] = {name}_{sfx}({vec_args});\n"
        f"            reinterpret_cast<V *>(y)[i] = y_v;\n"
        f"        }}\n"
        f"        j0 = nv * {w};\n"
        f"    }}\n"
        f"    for (long long j = j0 + start; j < n; j += step) y[j] = {name}_{sfx}({elt_args});\n"
        f"}}\n")


def raw_module_source(dtype, header):
    """The CUDA source of one module: the header's text (`header`), then the
    raw kernel of every function that has a loop for `dtype`, in every form.
    One module per dtype: CuPy compiles it once, for all of them."""
    dtype = np.dtype(dtype)
    kernels = [raw_kernel_source(name, dtype, form)
               for name, (nin, _) in UFUNCS.items() if dtype in gpu_dtypes(name)
               for form in FORMS[nin]]
    return "\n".join([header, VECTOR_PREAMBLE] + kernels)


def per_block(dtype):
    """Elements per block of a contiguous kernel: one 16-byte vector a thread."""
    return BLOCK * vector_width(dtype)


def grid(n, per_block):
    """The launch grid for n elements, per_block of them a block: the one
    grid formula, for every contiguous launch (fast path or not)."""
    return ((n + per_block - 1) // per_block,)


# ---- the header's public functions ------------------------------------------
# Stable: user kernels may call these (docs/gpu.md, "Fused kernels").  Each takes
# and returns the C type of its suffix (FORMULA_C_TYPES: f16 is the IEEE
# binary16 bits in an unsigned short); "ld" exists in host code only.
# Every formula the table has, by suffix; the header defines `l`'s and `q`'s
# width once (i64 on LP64), so each suffix is listed once.
PUBLIC_SUFFIXES = {f.name: formula_suffixes(f, lambda c: np.dtype(c).itemsize)
                   for f in FUNCTIONS}
# The ml_dtypes formats' formulas are public too (bfloat16 kernels of a
# user's own), all six for each, on the bits of its format.
PUBLIC_ML_SUFFIXES = tuple(t.suffix for t in ML_TYPES)


def public_header_functions(device=False):
    """[(C name, argument names, C type)] of the header's public API; with
    device=True, those a CUDA kernel can call (no long double)."""
    ml = ml_c_types()
    return [(f"{name}_{sfx}", args, FORMULA_C_TYPES.get(sfx) or ml[sfx])
            for name, args in ARG_NAMES.items()
            for sfx in PUBLIC_SUFFIXES[name] + PUBLIC_ML_SUFFIXES
            if not (device and sfx == "ld")]
