"""What relu_ufunc.cuda runs, decided without CuPy or a GPU.

Dtype resolution (NumPy's rules, for the loops the GPU has), the CUDA source
of each kernel, the fast path's decision (which calls go straight to a
cupy.RawKernel launch) and the checks on PyTorch tensors.  The kernels call
the formulas of cuda/relu_ufunc.h, the header the Cython loops include;
nothing here restates a formula.  Nothing here imports CuPy or PyTorch: the
array types, kernels and modules come in as arguments, so that tests can
check every decision, and NVRTC or nvcc can compile every kernel, on a
machine with no GPU.
"""
import numpy as np

from relu_ufunc._spec import (ARG_NAMES, FORMULA_C_TYPES, FUNCTIONS, UFUNCS, formula_suffix,
                              formula_suffixes)

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
    """The distinct dtypes of `name`'s GPU loops, in NumPy's order."""
    return list(dict.fromkeys(np.dtype(c) for c in GPU_CHARS[name]))


def raw_kernel_name(name, dtype, form):
    return f"relu_ufunc_{name}_{suffix(np.dtype(dtype).char)}_{form}"


def raw_kernel_source(name, dtype, form):
    """One extern "C" kernel: y[j] = name(inputs[j]) for j < n, over
    contiguous arrays (inputs flagged "s" in `form` by value), 16-byte
    vectors where every pointer is aligned.  Launch with any grid of
    BLOCK-thread blocks: the loops stride by the grid."""
    dtype = np.dtype(dtype)
    sfx, w = suffix(dtype.char), vector_width(dtype)
    ctype = FORMULA_C_TYPES[sfx]
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


def launch_grid(n, dtype):
    """Blocks for n elements: one thread per 16-byte vector (at least one)."""
    per_block = BLOCK * vector_width(dtype)
    return ((n + per_block - 1) // per_block,)


# ---- the fast path ----------------------------------------------------------
# The common call, all inputs arrays of one dtype (or leaky_relu's alpha a
# Python float), C-contiguous, of one shape, on the current device, with no
# where= and no dtype=, and an out= (if any) of that dtype and shape that is
# C-contiguous and either is an input or overlaps none: NumPy's resolution
# then picks that dtype's own loop, broadcasting and casting do nothing, and
# no input needs a copy, so the call is one launch.  Everything else returns
# None and takes the general path, with the same result.

def fast_dtypes(name, scalar=False):
    """The dtypes the fast path takes for `name`: those whose own loop NumPy
    picks for inputs all of that dtype (scalar=False), or for an array of it
    and a Python float as the second input (scalar=True, NEP 50)."""
    nin = UFUNCS[name][0]
    if scalar and nin != 2:
        return []
    pick = (lambda d: [d, float]) if scalar else (lambda d: [d] * nin)
    return [d for d in gpu_dtypes(name) if resolve(name, pick(d)) == d]


def fast_entry(kernel, dtype):
    """What the fast path needs of one (function, dtype): the kernel, the
    elements per block, the itemsize and the scalar type (for alpha)."""
    dtype = np.dtype(dtype)
    return kernel, BLOCK * vector_width(dtype), dtype.itemsize, dtype.type


def make_cupy_fast(nin, ndarray, arrays, scalars, get_device, empty):
    """The fast path of one function for CuPy arrays: fast(*inputs, out)
    returns the result, or None where the general path must run.

    `ndarray` is cupy.ndarray; `arrays` maps a dtype to the fast_entry of the
    all-array kernel, `scalars` to that of the kernel whose second input is a
    scalar; `get_device()` is the current device, `empty(shape, dtype)` a new
    array.  The decision reads only attributes that CuPy keeps on the array
    (no views, no flags objects), then launches the kernel with a grid
    computed from n."""
    block = (BLOCK,)

    if nin == 1:
        def fast(x, out):
            if type(x) is not ndarray or not x._c_contiguous:
                return None
            entry = arrays.get(x.dtype)
            if entry is None:
                return None
            kernel, per_block, itemsize, _ = entry
            dev = get_device()
            xd = x.data
            if xd.device_id != dev:
                return None
            n = x.size
            if out is None:
                y = empty(x.shape, x.dtype)
            elif (type(out) is ndarray and out.dtype is x.dtype and out._c_contiguous
                  and out.shape == x.shape):
                yd = out.data
                if yd.device_id != dev:
                    return None
                d, nbytes = yd.ptr - xd.ptr, n * itemsize
                if d and -nbytes < d < nbytes:         # partial overlap
                    return None
                y = out
            else:
                return None
            if n:
                kernel(((n + per_block - 1) // per_block,), block, (x, y, n))
            return y
        return fast

    def fast(a, b, out):
        if type(a) is not ndarray or not a._c_contiguous:
            return None
        dt = a.dtype
        if type(b) is ndarray:
            if b.dtype is not dt or not b._c_contiguous or b.shape != a.shape:
                return None
            entry = arrays.get(dt)
        elif type(b) is float:
            entry = scalars.get(dt)
        else:
            return None
        if entry is None:
            return None
        kernel, per_block, itemsize, scalar_type = entry
        dev = get_device()
        ad = a.data
        if ad.device_id != dev:
            return None
        if type(b) is ndarray:
            bd = b.data
            if bd.device_id != dev:
                return None
        else:
            bd, b = None, scalar_type(b)
        n = a.size
        if out is None:
            y = empty(a.shape, dt)
        elif (type(out) is ndarray and out.dtype is dt and out._c_contiguous
              and out.shape == a.shape):
            yd = out.data
            if yd.device_id != dev:
                return None
            nbytes = n * itemsize
            d = yd.ptr - ad.ptr
            if d and -nbytes < d < nbytes:
                return None
            if bd is not None:
                d = yd.ptr - bd.ptr
                if d and -nbytes < d < nbytes:
                    return None
            y = out
        else:
            return None
        if n:
            kernel(((n + per_block - 1) // per_block,), block, (a, b, y, n))
        return y
    return fast


# ---- PyTorch tensors ----------------------------------------------------------
# torch is never imported here: the caller passes the module it found in
# sys.modules (no tensor can exist before torch is imported).

def torch_tensors(torch, arrays):
    """True when any of `arrays` is a torch.Tensor."""
    tensor = getattr(torch, "Tensor", None)
    return tensor is not None and any(isinstance(a, tensor) for a in arrays)


def torch_device(torch, name, named):
    """The CUDA device index of the torch tensors among `named` ((argument
    name, value) pairs: the inputs, out, where).  A tensor that requires grad
    is a RuntimeError (relu_ufunc.cuda is not an autograd op; torch's own
    .numpy() and __cuda_array_interface__ raise the same), a CPU tensor a
    TypeError, tensors on two devices a ValueError."""
    device = None
    for arg, a in named:
        if not isinstance(a, torch.Tensor):
            continue
        if a.requires_grad:
            raise RuntimeError(
                f"relu_ufunc.cuda.{name}: {arg} is a tensor that requires grad, and "
                f"relu_ufunc.cuda is not an autograd operation (autograd would not see "
                f"it). Pass {arg}.detach(), and write the backward pass with "
                f"relu_ufunc.cuda.relu_backward, or use torch's own functions")
        if not a.is_cuda:
            raise TypeError(
                f"relu_ufunc.cuda.{name} takes CUDA tensors, and {arg} is on "
                f"{a.device}; for a CPU tensor use relu_ufunc.{name} on {arg}.numpy()")
        index = a.device.index
        if device is None:
            device = index
        elif index != device:
            raise ValueError(f"relu_ufunc.cuda.{name}: tensors on cuda:{device} and "
                             f"cuda:{index}; put them on one device")
    return device


def torch_stream_ptr(torch, device):
    """The handle of torch's current stream on `device`: where the kernels of
    a call on torch tensors run, so that they are ordered after the work that
    made the inputs, without a device-wide sync."""
    return torch.cuda.current_stream(device).cuda_stream


def torch_dtypes(torch, dtypes):
    """{torch dtype: NumPy dtype} for the NumPy dtypes torch has."""
    return {getattr(torch, d.name): d for d in dtypes if hasattr(torch, d.name)}


def make_torch_fast(nin, torch, arrays, scalars):
    """The fast path for torch tensors: fast(inputs, out) returns the result
    (a new tensor from torch's allocator, or out), or None for the general
    path.  `arrays` and `scalars` map a torch dtype to a fast_entry.  The
    caller has checked the devices and grads, and runs it with torch's
    current stream as CuPy's current stream; tensors go to the kernel as
    their data pointers."""
    block = (BLOCK,)
    tensor = torch.Tensor

    def fast(inputs, out):
        x = inputs[0]
        if not isinstance(x, tensor) or not x.is_contiguous():
            return None
        dt, shape = x.dtype, x.shape
        entry = arrays.get(dt)
        args = [x.data_ptr()]
        if nin == 2:
            b = inputs[1]
            if isinstance(b, tensor):
                if b.dtype is not dt or not b.is_contiguous() or b.shape != shape:
                    return None
                args.append(b.data_ptr())
            elif type(b) is float:
                entry = scalars.get(dt)
                if entry is None:
                    return None
                args.append(entry[3](b))
            else:
                return None
        if entry is None:
            return None
        kernel, per_block, itemsize, _ = entry
        n = x.numel()
        if out is None:
            y = torch.empty_like(x, memory_format=torch.contiguous_format)
        elif (isinstance(out, tensor) and out.dtype is dt and out.is_contiguous()
              and out.shape == shape):
            y, nbytes, p = out, n * itemsize, out.data_ptr()
            for a, q in zip(inputs, args):
                if isinstance(a, tensor) and q != p and -nbytes < p - q < nbytes:
                    return None
        else:
            return None
        if n:
            kernel(((n + per_block - 1) // per_block,), block, (*args, y.data_ptr(), n))
        return y
    return fast


# ---- the header's public functions ------------------------------------------
# Stable: user kernels may call these (docs/gpu.md, "Fused kernels").  Each takes
# and returns the C type of its suffix (FORMULA_C_TYPES: f16 is the IEEE
# binary16 bits in an unsigned short); "ld" exists in host code only.
PUBLIC_FUNCTIONS = dict(ARG_NAMES)
# Every formula the table has, by suffix; the header defines `l`'s and `q`'s
# width once (i64 on LP64), so each suffix is listed once.
PUBLIC_SUFFIXES = {f.name: formula_suffixes(f, lambda c: np.dtype(c).itemsize)
                   for f in FUNCTIONS}


def public_header_functions(device=False):
    """[(C name, argument names, C type)] of the header's public API; with
    device=True, those a CUDA kernel can call (no long double)."""
    return [(f"{name}_{sfx}", args, FORMULA_C_TYPES[sfx])
            for name, args in PUBLIC_FUNCTIONS.items()
            for sfx in PUBLIC_SUFFIXES[name] if not (device and sfx == "ld")]
