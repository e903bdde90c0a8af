"""Signalling NaNs raise no FP flag in the select-only functions.

The contract: relu, relu_grad, relu_backward and leaky_relu_grad only select
among their inputs and constants, so a NaN input, quiet or signalling, leaves
the FP status flags clean (``np.errstate(all="raise")`` raises nothing), as
NumPy's own ``np.isnan`` and ``np.maximum`` do.  An ordered or even a quiet
float compare (``x != x``, ``ucomiss``, ``vcmpunordps``) raises "invalid" on
a signalling NaN, so the formulas must decide NaN on the bits.  leaky_relu
multiplies, and IEEE arithmetic on a signalling NaN signals (as
``np.multiply`` does), so it is not checked here.

Every loop of every float dtype, on every kernel build this CPU runs and on
the Numba backend where it loads, on every path a call can take
(contiguous, one input a single value, strided, strided output, in order,
reduce), with the NaN's bits checked too: a selected NaN comes back bit for
bit, never quieted.
"""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._spec import SELECT_ONLY
from relu_ufunc.__main__ import cpu_level, cpu_levels
from conftest import FLOAT_CHARS

SELECTING = tuple(SELECT_ONLY) + ("leaky_relu_grad",)
LEVELS = cpu_levels() or [None]


def _numba_backend():
    if ru.backend == "numba":
        return None                         # already the backend under test
    try:
        from relu_ufunc import _numba_backend as nb
    except ImportError:
        return None
    return nb


BACKENDS = [("main", None)] + ([("numba", _numba_backend())] if _numba_backend() else [])


def signalling_nans(char):
    """Signalling NaN bit patterns of the dtype, of both signs: a quiet NaN
    with its quiet bit (the top bit of the stored fraction) cleared and a
    low fraction bit set.  Built on the raw bytes (little-endian), so the
    patterns never pass through a float register."""
    dt = np.dtype(char)
    info = np.finfo(dt)
    nbytes = dt.itemsize
    quiet = int.from_bytes(np.array(np.nan, dt).tobytes(), "little")
    quiet_bit = 1 << (info.nmant - 1)
    assert quiet & quiet_bit, f"{dt}: NumPy's NaN should have its quiet bit set"
    patterns = []
    for low in (1, 1 << (info.nmant // 2)):
        for sign in (0, 1):
            bits = (quiet & ~quiet_bit) | low
            # The sign is the top bit of the value's bytes: of 10 bytes for
            # x87 extended (nmant 63, stored in 12 or 16), else the last one.
            sign_bit = 79 if info.nmant == 63 else 8 * nbytes - 1
            bits |= sign << sign_bit
            patterns.append(bits.to_bytes(nbytes, "little"))
    out = np.frombuffer(b"".join(patterns), dt).copy()
    assert np.isnan(out).all(), out
    return out


def same_bytes(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.dtype.char == "g" and np.finfo(a.dtype).nmant == 63:     # x87: padding bytes
        a8 = a.view(np.uint8).reshape(a.size, -1)[:, :10]
        b8 = b.view(np.uint8).reshape(b.size, -1)[:, :10]
        return np.array_equal(a8, b8)
    return a.tobytes() == b.tobytes()


def _data(char, n=131):
    """n values (long enough for every vector loop, with a tail), a
    signalling NaN at every fifth place among ordinary and edge values."""
    dt = np.dtype(char)
    snan = signalling_nans(char)
    plain = np.array([1.5, -2.0, 0.0, -0.0, np.inf, -np.inf, 3.0, -0.5], dt)
    x = np.resize(plain, n)
    x[::5] = np.resize(snan, x[::5].size)
    return x


def _check_nan_bits(got, x, where):
    """Where x is a NaN the result is x, the same bytes."""
    assert same_bytes(got[where], x[where]), "a signalling NaN came back changed"


def _calls(name, char):
    """(label, call(uf) -> (result, x, NaN mask to check or None))."""
    dt = np.dtype(char)
    x = _data(char)
    nan = np.isnan(x)
    other = np.resize(np.array([0.25, -4.0, 1.0], dt), x.size)
    calls = []
    if name in ("relu", "relu_grad"):
        calls += [
            ("contiguous", lambda uf: (uf(x), x, nan)),
            ("contiguous, out=", lambda uf: (uf(x, out=np.empty_like(x)), x, nan)),
            ("in place", lambda uf: (uf(xx := x.copy(), out=xx), x, nan)),
            ("strided input", lambda uf: (uf(np.repeat(x, 2)[::2]), x, nan)),
            ("strided output",
             lambda uf: (uf(x, out=np.empty(2 * x.size, dt)[::2]), x, nan)),
            ("reversed", lambda uf: (uf(x[::-1])[::-1], x, nan)),
            ("0-d", lambda uf: (np.asarray(uf(x[:1].reshape(()))), x[:1].reshape(()),
                                np.isnan(x[:1].reshape(())))),
            ("where=", lambda uf: (uf(x, where=np.arange(x.size) % 3 != 1,
                                      out=np.zeros_like(x)), x,
                                   nan & (np.arange(x.size) % 3 != 1))),
        ]
        return calls
    # Binary: x is the input that is tested for NaN (dy and alpha are only
    # selected), so the signalling NaNs go into every operand in turn.
    xi = 1 if name == "relu_backward" else 0          # the position of x

    def args(a, b):
        return (b, a) if xi == 1 else (a, b)

    calls += [
        ("NaN x, contiguous", lambda uf: (uf(*args(x, other)), x, nan)),
        ("NaN x, other a scalar", lambda uf: (uf(*args(x, other[1:2])), x, nan)),
        ("NaN x, x a scalar",
         lambda uf: (uf(*args(x[:1], other)), np.broadcast_to(x[:1], x.shape),
                     np.broadcast_to(np.isnan(x[:1]), x.shape))),
        ("NaN x, strided", lambda uf: (uf(*args(np.repeat(x, 2)[::2], other)), x, nan)),
        ("NaN x, strided output",
         lambda uf: (uf(*args(x, other), out=np.empty(2 * x.size, dt)[::2]), x, nan)),
        ("NaN x, accumulate-style overlap",
         lambda uf: (uf(*args(x[1:], (z := x.copy())[:-1]), out=z[1:]), None, None)),
        ("NaN in the selected operand", lambda uf: (uf(*args(other, x)), None, None)),
        ("NaN everywhere", lambda uf: (uf(x, x), x, nan)),
        ("reduce", lambda uf: (uf.reduce(x), None, None)),
        ("accumulate", lambda uf: (uf.accumulate(x), None, None)),
        ("outer", lambda uf: (uf.outer(x[:9], x[:9]), None, None)),
    ]
    return calls


CASES = [(name, char) for name in SELECTING for char in FLOAT_CHARS]


def test_patterns_are_signalling():
    """The patterns are NaNs with the quiet bit clear: NumPy's float ops
    (np.add) quiet them, so they are the patterns the tests mean."""
    for char in "fd":
        x = signalling_nans(char)
        with np.errstate(invalid="ignore"):
            quieted = x + np.zeros_like(x)
        assert not same_bytes(quieted, x)


@pytest.mark.parametrize("backend", [b for b, _ in BACKENDS])
@pytest.mark.parametrize("name,char", CASES)
def test_signalling_nan_raises_no_fp_flag(name, char, backend):
    module = dict(BACKENDS)[backend]
    if module is None:
        uf = getattr(ru, name)
        levels = LEVELS
    else:
        uf = getattr(module, name)
        levels = [None]
        if char not in "".join(t[0] for t in uf.types):
            pytest.skip(f"the Numba backend has no {np.dtype(char)} loop (the contract: no longdouble)")
    for level in levels:
        for label, call in _calls(name, char):
            with cpu_level(level), np.errstate(all="raise"):
                try:
                    got, x, where = call(uf)
                except FloatingPointError as e:
                    pytest.fail(f"{name} on {np.dtype(char)}, {label}, "
                                f"kernel build {level}: {e}")
            if x is not None:
                _check_nan_bits(np.asarray(got), np.asarray(x), np.asarray(where))
