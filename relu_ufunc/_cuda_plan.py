"""What relu_ufunc.cuda runs, decided without CuPy or a GPU.

The loop dtype (the CPU ufunc's own resolution, as inside ``@njit`` code),
the fast path's decision (which calls go straight to one launch of a
contiguous kernel), and the checks on PyTorch tensors.  The kernels' sources
are in _cuda_kernels.  Nothing here imports CuPy or PyTorch: the array
types, kernels and modules come in as arguments, so that tests can check
every decision on a machine with no GPU.
"""
import numpy as np

import relu_ufunc
from relu_ufunc._cuda_kernels import BLOCK, gpu_dtypes, grid, is_ml, per_block, storage_dtype
from relu_ufunc._resolution import loop_dtype
from relu_ufunc._spec import UFUNCS


def resolve(name, dtypes, dtype=None):
    """The loop dtype of a call on inputs of `dtypes` (for a Python scalar,
    its type), with ``dtype=``: NumPy's choice (`loop_dtype`), where the GPU
    has that loop (not longdouble)."""
    loop = loop_dtype(getattr(relu_ufunc, name), dtypes, dtype)
    if loop not in gpu_dtypes(name):
        shown = ", ".join(repr(d) for d in dtypes)
        raise TypeError(f"ufunc '{name}' not supported for the input types ({shown}) on the "
                        f"GPU: NumPy's loop for them is {loop}, which the GPU does not have")
    return loop


def partial_overlap(p, q, nbytes):
    """Whether two contiguous runs of nbytes, at addresses p and q, overlap
    other than exactly (exactly: in place, which the kernels allow)."""
    return p != q and -nbytes < p - q < nbytes


# ---- the fast path ----------------------------------------------------------
# The common call, all inputs arrays of one dtype (or leaky_relu's alpha a
# Python float), C-contiguous, of one shape, on the current device, with no
# where= and no dtype=, and an out= (if any) of that dtype and shape that is
# C-contiguous and either is an input or overlaps none: NumPy's resolution
# then picks that dtype's own loop, broadcasting and casting do nothing, and
# no input needs a copy, so the call is one launch.  Everything else returns
# None and takes the general path, with the same result.  One decision for
# every array library: an adapter reads what it needs of an array.

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
    elements per block, the itemsize and the scalar converter (alpha as the kernel takes it)."""
    dtype = np.dtype(dtype)
    return kernel, per_block(dtype), dtype.itemsize, _scalar_converter(dtype)


def _scalar_converter(dtype):
    """alpha as the kernel takes it: the dtype's scalar, or an ml_dtypes
    format's bits (CuPy need not know the format's scalars)."""
    if not is_ml(dtype):
        return dtype.type
    bits = storage_dtype(dtype)
    return lambda b: np.asarray(b, dtype).view(bits)[()]


def make_fast(nin, view, arrays, scalars, empty):
    """The fast path of one function: fast(inputs, out) launches its kernel
    once and returns the result, or returns None where the general path must
    run.

    `view(a)` is the adapter: (data pointer, dtype, shape, size, device) of a
    C-contiguous array of the library, else None.  `arrays` maps a dtype to
    the fast_entry of the all-array kernel, `scalars` to that of the kernel
    whose second input is a scalar; `empty(x, shape, dtype)` makes a result
    like input x.  Arrays go to the kernel as their data pointers."""
    block = (BLOCK,)

    def fast(inputs, out):
        facts = view(inputs[0])
        if facts is None:
            return None
        p, dt, shape, n, device = facts
        entry = arrays.get(dt)
        args = [p]
        if nin == 2:
            b = inputs[1]
            if type(b) is float:
                entry = scalars.get(dt)
                if entry is None:
                    return None
                args.append(entry[3](b))
            else:
                facts = view(b)
                if facts is None or facts[1] is not dt or facts[2] != shape or facts[4] != device:
                    return None
                args.append(facts[0])
        if entry is None:
            return None
        kernel, elements, itemsize, _ = entry
        if out is None:
            y = empty(inputs[0], shape, dt)
            py = view(y)[0]
        else:
            facts = view(out)
            if facts is None or facts[1] is not dt or facts[2] != shape or facts[4] != device:
                return None
            y, py, nbytes = out, facts[0], n * itemsize
            if any(type(q) is int and partial_overlap(py, q, nbytes) for q in args):
                return None
        if n:
            kernel(grid(n, elements), block, (*args, py, n))
        return y
    return fast


def cupy_view(ndarray, get_device):
    """The adapter for CuPy arrays: only exact cupy.ndarray objects that are
    C-contiguous and on the current device.  It reads only attributes that
    CuPy keeps on the array (no views, no flags objects)."""
    def view(a):
        if type(a) is not ndarray or not a._c_contiguous:
            return None
        memory = a.data
        if memory.device_id != get_device():
            return None
        return memory.ptr, a.dtype, a.shape, a.size, None
    return view


def make_cupy_fast(nin, ndarray, arrays, scalars, get_device, empty):
    """The fast path for CuPy arrays; `empty(shape, dtype)` is cupy.empty."""
    return make_fast(nin, cupy_view(ndarray, get_device), arrays, scalars,
                     lambda x, shape, dtype: empty(shape, dtype))


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


def torch_view(torch):
    """The adapter for torch tensors: contiguous ones.  The caller has
    checked their devices (`torch_device`) and grads."""
    tensor = torch.Tensor

    def view(a):
        if not isinstance(a, tensor) or not a.is_contiguous():
            return None
        return a.data_ptr(), a.dtype, a.shape, a.numel(), None
    return view


def make_torch_fast(nin, torch, arrays, scalars):
    """The fast path for torch tensors (`arrays` and `scalars` by torch
    dtype): the result is a new tensor from torch's allocator, or out.  The
    caller runs it with torch's current stream as CuPy's current stream."""
    contiguous = torch.contiguous_format
    return make_fast(nin, torch_view(torch), arrays, scalars,
                     lambda x, shape, dtype: torch.empty_like(x, memory_format=contiguous))
