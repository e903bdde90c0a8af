"""relu_ufunc on the GPU: the same functions for CuPy arrays.

CuPy looks a NumPy ufunc up by name in its own namespace, so a third-party
ufunc such as ``relu_ufunc.relu`` called on a CuPy array raises NumPy's
``TypeError``.  This module offers the same names for CuPy arrays (and any
``__cuda_array_interface__`` array, without a copy), as CUDA kernels that
include the same formulas, from ``relu_ufunc.h``, as the CPU loops.
Keywords: ``out=`` (also positional, in place too), ``where=``, ``dtype=``;
inputs broadcast.  Dtypes: float16, float32, float64 and the integer types
(no longdouble on the GPU).

The common call (CuPy arrays of one dtype and shape, C-contiguous, no
``where=``, no ``dtype=``) is one ``cupy.RawKernel`` launch with a grid
computed from the size; every other call goes through
``cupy.ElementwiseKernel``, with the same results.  PyTorch CUDA tensors give
PyTorch tensors, computed on torch's current stream.  With ``out=`` a call
allocates nothing and never synchronizes, so it can be captured in a CUDA
graph.

These are plain Python callables over CuPy kernels, not ``numpy.ufunc``
objects.  Kernels compile once per dtype, on first use, and are cached.
"""
try:
    import cupy as _cp
except ImportError as _e:
    raise ImportError("relu_ufunc.cuda needs CuPy: pip install 'relu-ufunc[cuda12]' "
                      "(CUDA 12) or 'relu-ufunc[cuda13]' (CUDA 13)") from _e

import contextlib as _contextlib
import functools as _functools
import inspect as _inspect
import sys as _sys

import numpy as _np

import relu_ufunc as _ru
from relu_ufunc import _cuda_kernels, _cuda_plan
from relu_ufunc._docs import DOCS as _DOCS
from relu_ufunc._spec import ARG_NAMES as _ARG_NAMES
from relu_ufunc._spec import UFUNCS as _UFUNCS

with open(f"{_ru.get_include()}/relu_ufunc.h") as _f:
    _HEADER = _f.read()

_get_device = _cp.cuda.runtime.getDevice
_ndarray = _cp.ndarray


@_functools.lru_cache(maxsize=None)
def _kernel(name, dtype, masked):
    """The element-per-thread ElementwiseKernel: strides, broadcasting, where=."""
    in_params, out_params, operation, kname = _cuda_kernels.kernel_spec(name, dtype, masked)
    return _cp.ElementwiseKernel(in_params, out_params, operation, kname, preamble=_HEADER)


@_functools.lru_cache(maxsize=None)
def _raw_source(dtype):
    return _cuda_kernels.raw_module_source(dtype, _HEADER)


@_functools.lru_cache(maxsize=None)
def _raw_kernel(name, dtype, form):
    """The contiguous kernel of (name, dtype, input form).  All kernels of a
    dtype share one source, which CuPy compiles once (per device)."""
    dtype = _np.dtype(dtype)
    return _cp.RawKernel(_raw_source(dtype), _cuda_kernels.raw_kernel_name(name, dtype, form))


def _tables(name):
    """{dtype: fast entry} of name's all-array kernels and of its kernels
    whose second input is a scalar (alpha)."""
    nin = _UFUNCS[name][0]
    arrays = {d: _cuda_plan.fast_entry(_raw_kernel(name, d, "a" * nin), d)
              for d in _cuda_plan.fast_dtypes(name)}
    scalars = {d: _cuda_plan.fast_entry(_raw_kernel(name, d, "as"), d)
               for d in _cuda_plan.fast_dtypes(name, scalar=True)}
    return arrays, scalars


_FAST_TABLES = {name: _tables(name) for name in _UFUNCS}


def _as_device_array(a, name):
    if type(a) is _cp.ndarray:
        return a
    if isinstance(a, _np.ndarray) or (isinstance(a, _np.generic)):
        raise TypeError(f"relu_ufunc.cuda.{name} takes CuPy (GPU) arrays; for a NumPy "
                        f"array use relu_ufunc.{name}")
    if isinstance(a, (bool, int, float)):
        return a
    module = type(a).__module__
    if module.startswith("cupy") and "fusion" in module:
        raise TypeError(f"relu_ufunc.cuda.{name} cannot be traced by cupy.fuse: fuse traces "
                        f"only CuPy's own ufuncs, and CuPy has no public way to make one. "
                        f"Write a cupy.ElementwiseKernel that includes relu_ufunc.h and calls "
                        f"{name}_f32 (and friends) instead; see docs/gpu.md, 'Fused kernels'")
    return _cp.asarray(a)            # zero-copy for __cuda_array_interface__


def _dtype_of(a):
    return a.dtype if type(a) is _cp.ndarray else type(a)


@_functools.lru_cache(maxsize=1024)
def _plan(name, dtypes, dtype):
    """(loop dtype, the dtype the kernel sees): NumPy's resolution, cached
    because at small n the host's time per call is the whole cost."""
    loop = _cuda_plan.resolve(name, dtypes, dtype)
    return loop, _cuda_kernels.storage_dtype(loop)


def _contiguous_as(a, shape):
    return a._c_contiguous and a.shape == shape


def _call(name, args, out=None, where=True, dtype=None, alloc=None):
    """The general path: any inputs, out=, where=, dtype=, broadcasting.
    `alloc(shape, dtype)` makes the result when out is None (default
    cupy.empty)."""
    arrays = [_as_device_array(a, name) for a in args]
    loop, storage = _plan(name, tuple(_dtype_of(a) for a in arrays),
                          None if dtype is None else _np.dtype(dtype))
    # Python scalars (alpha, say) go to the kernel by value, as the storage
    # type: no device array, so no host-to-device copy per call.
    scalars = tuple(type(a) is not _cp.ndarray for a in arrays)
    arrays = [_np.asarray(a, loop).view(storage)[()] if s
              else a if a.dtype == loop else a.astype(loop)
              for a, s in zip(arrays, scalars)]
    if all(scalars):
        arrays = [_cp.asarray(a).view(loop) for a in arrays]
        scalars = (False,) * len(arrays)
    dev = [a for a, s in zip(arrays, scalars) if not s]
    shape = dev[0].shape if len(dev) == 1 else _cp.broadcast_shapes(*[a.shape for a in dev])
    if out is not None:
        if isinstance(out, tuple):
            (out,) = out
        out = _as_device_array(out, name)
        if out.shape != shape:
            raise ValueError(f"non-broadcastable output operand with shape {out.shape} "
                             f"doesn't match the broadcast shape {shape}")
        if out.dtype != loop and not _np.can_cast(loop, out.dtype, "same_kind"):
            raise TypeError(f"Cannot cast ufunc '{name}' output from {loop} to {out.dtype} "
                            f"with casting rule 'same_kind'")
        # As NumPy: an input that overlaps out other than element for element
        # is read as it was before the call (threads would race on it).
        arrays = [a if s or _same_view(a, out) or not _cp.may_share_memory(a, out)
                  else a.copy() for a, s in zip(arrays, scalars)]
    mask = None if where is True else _cp.asarray(where, dtype=bool)
    target = out if out is not None and out.dtype == loop else None
    if target is None:
        target = (alloc or _cp.empty)(shape, loop) if out is None else out.astype(loop)
    if storage != loop:                # float16 as its bits
        arrays = [a if s else a.view(storage) for a, s in zip(arrays, scalars)]
    y = target if storage == loop else target.view(storage)
    if (mask is None and y.size and _contiguous_as(y, shape)
            and all(s or _contiguous_as(a, shape) for a, s in zip(arrays, scalars))):
        # The contiguous kernel: 16-byte vectors where aligned.
        form = "".join("s" if s else "a" for s in scalars)
        n = y.size
        _raw_kernel(name, loop, form)(
            _cuda_kernels.grid(n, _cuda_kernels.per_block(loop)), (_cuda_kernels.BLOCK,),
            (*arrays, y, n))
    else:
        _kernel(name, loop, mask is not None)(*arrays, *([] if mask is None else [mask]), y)
    if out is not None and target is not out:
        _cp.copyto(out, target, where=True if mask is None else mask)
        return out
    return target


def _same_view(a, b):
    return a.data.ptr == b.data.ptr and a.strides == b.strides and a.shape == b.shape


# ---- PyTorch tensors ------------------------------------------------------------

class _StreamHandle:
    """A torch stream's handle, offered through the CUDA stream protocol, so
    that cupy.cuda.Stream.from_external wraps it (and never destroys it)."""
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr

    def __cuda_stream__(self):
        return (0, self.ptr)


_streams = {}


def _torch_stream(torch, device):
    """torch's current stream on `device`, as a CuPy stream (cached by handle)."""
    ptr = _cuda_plan.torch_stream_ptr(torch, device)
    stream = _streams.get((device, ptr))
    if stream is None:
        if len(_streams) >= 256:
            _streams.clear()
        stream = _streams[device, ptr] = _cp.cuda.Stream.from_external(_StreamHandle(ptr))
    return stream


@_functools.lru_cache(maxsize=None)
def _torch_tables(torch, name):
    """The fast-path tables by torch dtype, and the torch fast path itself."""
    arrays, scalars = _FAST_TABLES[name]
    to_torch = {d: t for t, d in _cuda_plan.torch_dtypes(torch, arrays).items()}
    t_arrays = {to_torch[d]: e for d, e in arrays.items() if d in to_torch}
    t_scalars = {to_torch[d]: e for d, e in scalars.items() if d in to_torch}
    return _cuda_plan.make_torch_fast(_UFUNCS[name][0], torch, t_arrays, t_scalars)


def _torch_call(torch, name, args, out, where, dtype):
    """A call with torch tensors among its arrays: on torch's current stream
    (and the tensors' device), no copies; the result is a new tensor from
    torch's allocator, or out."""
    out1 = out[0] if isinstance(out, tuple) and len(out) == 1 else out
    named = [*zip(_ARG_NAMES[name], args), ("out", out1), ("where", where)]
    device = _cuda_plan.torch_device(torch, name, named)
    on_device = (_cp.cuda.Device(device) if device != _get_device()
                 else _contextlib.nullcontext())
    with on_device, _torch_stream(torch, device):
        if where is True and dtype is None:
            result = _torch_tables(torch, name)(args, out1)
            if result is not None:
                return result
        tensor = torch.Tensor

        def dev(a):
            return _cp.asarray(a) if isinstance(a, tensor) else a
        made = []

        def alloc(shape, dt):
            tdtype = getattr(torch, dt.name, None)
            if tdtype is None:
                return _cp.empty(shape, dt)
            t = torch.empty(shape, dtype=tdtype, device=torch.device("cuda", device))
            made.append(t)
            return _cp.asarray(t)
        result = _call(name, [dev(a) for a in args], None if out1 is None else dev(out1),
                       dev(where), dtype, alloc)
        if out is not None:
            return out1
        if made:
            return made[0]
        return torch.as_tensor(result, device=torch.device("cuda", device))


def _general(name, args, out, where, dtype):
    torch = _sys.modules.get("torch")
    if torch is not None and _cuda_plan.torch_tensors(
            torch, (*args, *(out if isinstance(out, tuple) else (out,)), where)):
        return _torch_call(torch, name, args, out, where, dtype)
    return _call(name, args, out, where, dtype)


# ---- the six functions -----------------------------------------------------------

def _make(name):
    nin = _UFUNCS[name][0]
    fast = _cuda_plan.make_cupy_fast(nin, _ndarray, *_FAST_TABLES[name], _get_device, _ndarray)
    if nin == 1:
        def f(x, /, out=None, *, where=True, dtype=None):
            if where is True and dtype is None:
                y = fast((x,), out)
                if y is not None:
                    return y
            return _general(name, (x,), out, where, dtype)
    else:
        def f(a, b, /, out=None, *, where=True, dtype=None):
            if where is True and dtype is None:
                y = fast((a, b), out)
                if y is not None:
                    return y
            return _general(name, (a, b), out, where, dtype)
    P = _inspect.Parameter
    f.__signature__ = _inspect.Signature(
        [P(a, P.POSITIONAL_ONLY) for a in _ARG_NAMES[name]]
        + [P("out", P.POSITIONAL_OR_KEYWORD, default=None),
           P("where", P.KEYWORD_ONLY, default=True), P("dtype", P.KEYWORD_ONLY, default=None)])
    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = _DOCS[name] + (
        "\n(relu_ufunc.cuda: for CuPy arrays and PyTorch CUDA tensors, on the GPU; "
        "out= may also be given by position, as for a NumPy ufunc.)\n")
    return f


relu = _make("relu")
relu_grad = _make("relu_grad")
relu_backward = _make("relu_backward")
leaky_relu = _make("leaky_relu")
leaky_relu_grad = _make("leaky_relu_grad")
add_relu = _make("add_relu")

__all__ = ["relu", "relu_grad", "relu_backward", "leaky_relu", "leaky_relu_grad", "add_relu"]
