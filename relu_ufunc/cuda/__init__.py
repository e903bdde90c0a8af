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
    return type(a) if isinstance(a, (int, float)) else a.dtype


@_functools.lru_cache(maxsize=1024)
def _plan(name, dtypes, dtype):
    """(loop dtype, the dtype the kernel sees): NumPy's resolution, cached
    because at small n the host's time per call is the whole cost."""
    loop = _cuda_plan.resolve(name, dtypes, dtype)
    return loop, _cuda_plan.storage_dtype(loop)


def _call(name, *args, out=None, where=True, dtype=None):
    arrays = [_as_device_array(a, name) for a in args]
    loop, storage = _plan(name, tuple(_dtype_of(a) for a in arrays),
                          None if dtype is None else _np.dtype(dtype))
    arrays = [a if type(a) is _cp.ndarray and a.dtype == loop else _cp.asarray(a, dtype=loop)
              for a in arrays]
    shape = arrays[0].shape if len(arrays) == 1 else _cp.broadcast_shapes(
        *[a.shape for a in arrays])
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
    if storage != loop:
        arrays = [a.view(storage) for a in arrays]
    masked = where is not True
    target = out if out is not None and out.dtype == loop else None
    if target is None:
        target = _cp.empty(shape, loop) if out is None else out.astype(loop)
    extra = [_cp.asarray(where, dtype=bool)] if masked else []
    _kernel(name, loop, masked)(*arrays, *extra,
                                target if storage == loop else target.view(storage))
    if out is not None and target is not out:
        _cp.copyto(out, target, where=extra[0] if masked else True)
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
