"""relu_ufunc on the GPU: the same functions for CuPy arrays.

CuPy looks a NumPy ufunc up by name in its own namespace, so a third-party
ufunc such as ``relu_ufunc.relu`` called on a CuPy array raises NumPy's
``TypeError``.  This module offers the same names for CuPy arrays (and any
``__cuda_array_interface__`` array, without a copy), as
``cupy.ElementwiseKernel``s that include the same formulas, from
``relu_ufunc.h``, as the CPU loops.  Keywords: ``out=`` (in place too),
``where=``, ``dtype=``; inputs broadcast.  Dtypes: float16, float32, float64
and the integer types (no longdouble on the GPU).

These are plain Python callables over CuPy kernels, not ``numpy.ufunc``
objects.  Kernels compile once per dtype, on first use, and are cached.
"""
try:
    import cupy as _cp
except ImportError as _e:
    raise ImportError("relu_ufunc.cuda needs CuPy: pip install 'relu-ufunc[cuda12]' "
                      "(CUDA 12) or 'relu-ufunc[cuda13]' (CUDA 13)") from _e

import functools as _functools

import numpy as _np

import relu_ufunc as _ru
from relu_ufunc import _cuda_plan
from relu_ufunc._docs import DOCS as _DOCS

with open(f"{_ru.get_include()}/relu_ufunc.h") as _f:
    _HEADER = _f.read()


@_functools.lru_cache(maxsize=None)
def _kernel(name, dtype, masked):
    in_params, out_params, operation, kname = _cuda_plan.kernel_spec(name, dtype, masked)
    return _cp.ElementwiseKernel(in_params, out_params, operation, kname, preamble=_HEADER)


@_functools.lru_cache(maxsize=None)
def _vector_kernel(name, dtype, scalar_inputs):
    in_params, out_params, operation, kname = _cuda_plan.vector_kernel_spec(
        name, dtype, scalar_inputs)
    return _cp.ElementwiseKernel(in_params, out_params, operation, kname,
                                 preamble=_HEADER + _cuda_plan.VECTOR_PREAMBLE)


def _vectorizable(a, shape):
    return (a.shape == shape and a.flags.c_contiguous
            and a.data.ptr % _cuda_plan.VECTOR_BYTES == 0)


def _same_view(a, b):
    return a.data.ptr == b.data.ptr and a.strides == b.strides and a.shape == b.shape


def _as_device_array(a, name):
    if type(a) is _cp.ndarray:
        return a
    if isinstance(a, _np.ndarray) or (isinstance(a, _np.generic)):
        raise TypeError(f"relu_ufunc.cuda.{name} takes CuPy (GPU) arrays; for a NumPy "
                        f"array use relu_ufunc.{name}")
    if isinstance(a, (bool, int, float)):
        return a
    return _cp.asarray(a)            # zero-copy for __cuda_array_interface__


def _dtype_of(a):
    return a.dtype if type(a) is _cp.ndarray else type(a)


@_functools.lru_cache(maxsize=1024)
def _plan(name, dtypes, dtype):
    """(loop dtype, the dtype the kernel sees, vector width): NumPy's
    resolution, cached because at small n the host's time per call is the
    whole cost."""
    loop = _cuda_plan.resolve(name, dtypes, dtype)
    return loop, _cuda_plan.storage_dtype(loop), _cuda_plan.vector_width(loop)


def _call(name, *args, out=None, where=True, dtype=None):
    arrays = [_as_device_array(a, name) for a in args]
    loop, storage, width = _plan(name, tuple(_dtype_of(a) for a in arrays),
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
        target = _cp.empty(shape, loop) if out is None else out.astype(loop)
    if storage != loop:                # float16 as its bits
        arrays = [a if s else a.view(storage) for a, s in zip(arrays, scalars)]
    y = target if storage == loop else target.view(storage)
    if (mask is None and y.size and _vectorizable(y, shape)
            and all(s or _vectorizable(a, shape) for a, s in zip(arrays, scalars))):
        flat = [a if s or a.ndim == 1 else a.reshape(-1) for a, s in zip(arrays, scalars)]
        _vector_kernel(name, loop, scalars)(*flat, y.reshape(-1), size=-(-y.size // width))
    else:
        _kernel(name, loop, mask is not None)(*arrays, *([] if mask is None else [mask]), y)
    if out is not None and target is not out:
        _cp.copyto(out, target, where=True if mask is None else mask)
        return out
    return target


def _make(name):
    def f(*args, out=None, where=True, dtype=None):
        return _call(name, *args, out=out, where=where, dtype=dtype)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _DOCS[name] + "\n(relu_ufunc.cuda: for CuPy arrays, on the GPU.)\n"
    return f


relu = _make("relu")
relu_grad = _make("relu_grad")
relu_backward = _make("relu_backward")
leaky_relu = _make("leaky_relu")
leaky_relu_grad = _make("leaky_relu_grad")

__all__ = ["relu", "relu_grad", "relu_backward", "leaky_relu", "leaky_relu_grad"]
