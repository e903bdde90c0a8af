"""Slow, plain-NumPy reference implementations and the special values.

The self-check of ``python -m relu_ufunc`` and the test suite compare the
ufuncs against these.  They are written with ``np.where`` on purpose: no
shared code with the fast loops, so a bug has to be made twice to hide.
"""
import numpy as np


def _is_nan(x):
    return np.isnan(x) if x.dtype.kind == "f" else np.zeros(x.shape, bool)


def _as_arrays(*args, floating=False):
    """The inputs as arrays of their common dtype.  Resolved on the raw
    arguments, so that Python scalars stay weak (NEP 50); `floating` adds
    float16 as a floor, as for np.arctan2 (the leaky pair has float loops only)."""
    dtype = np.result_type(*args, *([np.float16] if floating else []))
    return [np.asarray(a).astype(dtype, copy=False) for a in args], dtype


def relu(x):
    (x,), dt = _as_arrays(x)
    return np.where((x > 0) | _is_nan(x), x, dt.type(0)).astype(dt)


def relu_grad(x):
    (x,), dt = _as_arrays(x)
    return np.where(_is_nan(x), x, np.where(x > 0, dt.type(1), dt.type(0))).astype(dt)


def relu_backward(dy, x):
    (dy, x), dt = _as_arrays(dy, x)
    return np.where(_is_nan(x), x, np.where(x > 0, dy, dt.type(0))).astype(dt)


def leaky_relu(x, alpha):
    (x, alpha), dt = _as_arrays(x, alpha, floating=True)
    with np.errstate(all="ignore"):          # alpha * x is also taken where x > 0
        return np.where((x > 0) | np.isnan(x), x, alpha * x).astype(dt)


def leaky_relu_grad(x, alpha):
    (x, alpha), dt = _as_arrays(x, alpha, floating=True)
    return np.where(np.isnan(x), x, np.where(x > 0, dt.type(1), alpha)).astype(dt)


def add_relu(x, b):
    (x, b), dt = _as_arrays(x, b)
    with np.errstate(all="ignore"):           # np.add's flags are its own business
        s = np.add(x, b, dtype=dt)
    return np.where((s > 0) | _is_nan(s), s, dt.type(0)).astype(dt)


def same_bits(a, b):
    """True when a and b agree exactly: same dtype and shape, same values,
    same sign of zero, NaN in the same places (payloads aside)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "V" and a.dtype.itemsize in (1, 2):   # an ml_dtypes format
        nan_a, nan_b = np.isnan(a.astype(np.float32)), np.isnan(b.astype(np.float32))
        bits = f"u{a.dtype.itemsize}"
        return bool(np.array_equal(nan_a, nan_b) and np.array_equal(
            np.ascontiguousarray(a).view(bits)[~nan_a], np.ascontiguousarray(b).view(bits)[~nan_b]))
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(nan_a, nan_b)
                and np.array_equal(a[~nan_a], b[~nan_b])
                and np.array_equal(np.signbit(a[~nan_a]), np.signbit(b[~nan_b])))


REFERENCE = {"relu": relu, "relu_grad": relu_grad, "relu_backward": relu_backward,
             "leaky_relu": leaky_relu, "leaky_relu_grad": leaky_relu_grad,
             "add_relu": add_relu}


def special_values(dtype):
    """Edge values of a dtype: zeros of both signs, ±inf, NaN, the extremes,
    the smallest normal and subnormal, and a few ordinary numbers."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        vals = [info.min, info.min + 1, -2, -1, 0, 1, 2, info.max - 1, info.max]
        return np.array([v for v in vals if info.min <= v <= info.max], dtype)
    info = np.finfo(dtype)
    pos = [info.max, info.smallest_normal, info.smallest_subnormal, 1.0, 0.5, 3.25,
           np.inf]
    vals = [0.0, -0.0, np.nan, -np.nan] + pos + [-v for v in pos]
    return np.array(vals, dtype)
