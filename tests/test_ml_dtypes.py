"""The ml_dtypes formats (bfloat16, float8, float6, float4): every function
keeps the format, over every bit pattern (all 2^8 values and 2^16 pairs of
the byte formats, all 2^16 bfloat16 values), against a plain NumPy
reference built on ml_dtypes' own conversions and arithmetic
(docs/contract.md, "ml_dtypes formats")."""
import os
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._ml_dtypes import registered_formats
from relu_ufunc._spec import ML_TYPES

ml_dtypes = pytest.importorskip("ml_dtypes")

FORMATS = [t.name for t, _ in registered_formats(ml_dtypes)]
F32 = np.float32


def test_every_format_of_the_table_is_there():
    """ml_dtypes 0.5 has them all: none is silently left out."""
    assert FORMATS == [t.name for t in ML_TYPES]


def dt(name):
    return np.dtype(getattr(ml_dtypes, name))


def bits(a):
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def patterns(name):
    """Every bit pattern of the format, as an array of it."""
    d = dt(name)
    width = ml_dtypes.finfo(d).bits
    return np.arange(2 ** width, dtype=f"u{d.itemsize}").view(d)


def pairs(name, rng=None):
    """(x, y): every pair of patterns, or for bfloat16 every x with edge
    values of y and 2^18 random pairs."""
    p = patterns(name)
    if p.size <= 256:
        x, y = np.meshgrid(p, p)
        return x.ravel(), y.ravel()
    rng = rng or np.random.default_rng(7)
    edge = np.array([0.01, -0.5, 2.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 1e-38, -3e38],
                    F32).astype(p.dtype)
    edge = np.concatenate([edge, p[[1, 0x8001, 0x7f81, 0xff81, 0x7fc1]]])   # subnormal, sNaN
    x = np.concatenate([np.tile(p, edge.size), rng.choice(p, 2 ** 18)])
    y = np.concatenate([np.repeat(edge, p.size), rng.choice(p, 2 ** 18)])
    return x, y


# ---- the reference: NumPy on ml_dtypes' conversions --------------------------

def one(d):
    return bits(np.ones(1, d))[0]


def ref(name, x, y=None):
    """The contract's value, as bits, for function `name`."""
    d = x.dtype
    xf = x.astype(F32)
    nan, pos = np.isnan(xf), xf > 0
    if name == "relu":
        return np.where(pos | nan, bits(x), 0).astype(bits(x).dtype)
    if name == "relu_grad":
        return np.where(nan, bits(x), np.where(pos, one(d), 0)).astype(bits(x).dtype)
    if name == "relu_backward":       # (dy, x): y is x here, x is dy
        dy, x = x, y
        xf = x.astype(F32)
        return np.where(np.isnan(xf), bits(x), np.where(xf > 0, bits(dy), 0)).astype(bits(x).dtype)
    if name == "leaky_relu_grad":
        return np.where(nan, bits(x), np.where(pos, one(d), bits(y))).astype(bits(x).dtype)
    with np.errstate(all="ignore"):
        if name == "leaky_relu":
            product = (y.astype(F32) * xf).astype(d)
            return np.where(nan | pos, bits(x), bits(product)).astype(bits(x).dtype)
        if name == "add_relu":
            return ref("relu", np.add(x, y))
    raise AssertionError(name)


def check(name, got, x, y=None):
    """got is the contract's value, bit for bit, except that a NaN sum in
    add_relu is a NaN of either sign (IEEE 754 leaves the sign of an
    arithmetic NaN open, and ml_dtypes' own np.add gives +NaN for 0 + -NaN
    but -NaN for -NaN + 0 in the float8 formats)."""
    assert got.dtype == x.dtype, (name, got.dtype, x.dtype)
    expected = ref(name, x, y)
    same = bits(got) == expected
    if name == "add_relu":
        nan = np.isnan(expected.view(x.dtype).astype(F32))
        assert np.isnan(got[nan].astype(F32)).all()
        same |= nan
    bad = np.flatnonzero(~same)
    assert bad.size == 0, (name, x.dtype, [(hex(bits(x)[i]), None if y is None else
                                            hex(bits(y)[i]), hex(bits(got)[i]),
                                            hex(expected[i])) for i in bad[:8]])


def call(name, x, y=None):
    with np.errstate(all="ignore"):
        return getattr(ru, name)(x) if y is None else getattr(ru, name)(x, y)


def levels():
    """Every kernel build this CPU runs (the Cython backend's); one on Numba."""
    if ru.backend != "cython":
        return [None]
    return list(range(ru._ufuncs.MAX_CPU_LEVEL + 1))


@pytest.fixture(params=levels(), ids=lambda v: "numba" if v is None else f"level{v}")
def level(request):
    if request.param is None:
        yield None
        return
    old = ru._ufuncs._set_cpu_level(request.param)
    try:
        yield request.param
    finally:
        ru._ufuncs._set_cpu_level(old)


UNARY = ["relu", "relu_grad"]
BINARY = ["relu_backward", "leaky_relu", "leaky_relu_grad", "add_relu"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_unary_every_pattern(fmt, level):
    x = patterns(fmt)
    for name in UNARY:
        check(name, call(name, x), x)


@pytest.mark.parametrize("fmt", FORMATS)
def test_binary_every_pair(fmt, level):
    x, y = pairs(fmt)
    for name in BINARY:
        check(name, call(name, x, y), x, y)


@pytest.mark.parametrize("fmt", ["bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
def test_layouts(fmt):
    """Strided input, strided output, a scalar operand on either side,
    broadcasting, in place: the same bits as the contiguous call."""
    x, y = pairs(fmt)
    x, y = x[:4099 * 2], y[:4099 * 2]
    for name in UNARY:
        expected = ref(name, x[::2])
        out = np.zeros(2 * x[::2].size, x.dtype)
        check(name, call(name, x[::2]), x[::2])
        with np.errstate(all="ignore"):
            getattr(ru, name)(x[::2], out=out[::2])
        assert (bits(out[::2]) == expected).all()
        inplace = x.copy()
        with np.errstate(all="ignore"):
            getattr(ru, name)(inplace, out=inplace)
        check(name, inplace, x)
    for name in BINARY:
        check(name, call(name, x[::2], y[1::2]), x[::2], y[1::2])
        for k in (0, 5, 77):
            s = y[k]
            check(name, call(name, x, s), x, np.full_like(x, s))
            check(name, call(name, s, x), np.full_like(x, s), x)
        m = np.resize(x, (64, 61))
        b = np.resize(y, 61)
        check(name, call(name, m, b).ravel(), m.ravel(), np.broadcast_to(b, m.shape).ravel())


def test_threads_split_the_same_bits():
    x, y = pairs("bfloat16")
    with ru.threads(2):
        for name in UNARY:
            check(name, call(name, x), x)
        for name in BINARY:
            check(name, call(name, x, y), x, y)


# ---- dtypes, keywords, methods -----------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_the_dtype_is_kept(fmt):
    """Keras' case: an ML array in, the same format out, with a Python float
    alpha or bias, a Python int, or another array of the format (NEP 50: a
    Python scalar is weak).  ml_dtypes' own np.multiply agrees with
    ml_dtypes 0.7 and NumPy 2.4; with ml_dtypes 0.5 and NumPy 2.2 (CI's
    oldest cell) it gives float32 for a Python float."""
    d = dt(fmt)
    x = np.array([-1, 0.5, 2], F32).astype(d)
    for name in UNARY:
        assert getattr(ru, name)(x).dtype == d
    for name in BINARY:
        for other in (0.25, 1, x):
            for args in ((x, other), (other, x)):
                assert getattr(ru, name)(*args).dtype == d, (name, args)


def result_type(f, *args):
    """f(*args).dtype, or the type of the error it raises."""
    try:
        with np.errstate(all="ignore"):
            return f(*args).dtype
    except (TypeError, ValueError) as e:
        return type(e)


def test_mixed_types_promote_as_np_add():
    """A format beside another NumPy type or another format, either way
    round: the loop is the one np.add picks (the promoters of
    relu_ufunc._ml_dtypes; the loops are ArrayMethods of one format, which
    NumPy's legacy resolver does not see).  A complex operand has no loop;
    longdouble none on the Numba backend."""
    others = [dt(f) for f in FORMATS] + [np.dtype(c) for c in "?bBhHiIlLqQefdgFD"]
    for fmt in FORMATS:
        x = np.array([-1, 2], dt(fmt))
        for other in others:
            y = np.array([1, 0.5], other)
            for args in ((x, y), (y, x), (x, y[0]), (y[0], x)):
                want = np.add(*args).dtype
                if want.kind == "c" or (want.char == "g" and ru.backend == "numba"):
                    want = TypeError
                for name in BINARY:
                    got = result_type(getattr(ru, name), *args)
                    assert got == want, (name, fmt, other, [type(a) for a in args])


def test_dtype_and_signature_select_the_loop():
    bf = dt("bfloat16")
    x32 = np.array([-1.5, 2.5, np.nan], F32)
    x = x32.astype(bf)
    assert ru.relu(x, dtype=bf).dtype == bf
    assert ru.leaky_relu(x, 0.5, dtype=bf).dtype == bf
    for name in UNARY:
        got = getattr(ru, name)(x32, signature=(bf, bf))
        check(name, got, x)
    got = ru.leaky_relu(x32, F32(0.5), signature=(bf, bf, bf))
    check("leaky_relu", got, x, np.full_like(x, 0.5))
    # a float32 loop on bfloat16 data, when asked for, and out= casts
    assert ru.relu(x, dtype=F32).dtype == F32
    out = np.empty(3, bf)
    ru.relu(x32, out=out)
    check("relu", out, x)


def test_fp_flags_of_the_arithmetic_warn():
    """leaky_relu and add_relu on a format make one float32 operation, whose
    overflow warns as np.multiply's would (the selecting functions raise
    no flag, and NumPy is told so)."""
    bf = dt("bfloat16")
    big = np.array([-3e38, 3e38], F32).astype(bf)
    with pytest.warns(RuntimeWarning, match="overflow"):
        ru.leaky_relu(big, np.array([3e38, 3e38], F32).astype(bf))
    with pytest.warns(RuntimeWarning, match="overflow"):
        ru.add_relu(big, big)
    with np.errstate(all="raise"):
        ru.relu_backward(big, big)
        ru.leaky_relu_grad(big, big)


def test_ufunc_methods():
    """reduce, accumulate, reduceat, outer and at on bfloat16: the same
    values as the elementwise calls they are made of."""
    rng = np.random.default_rng(3)
    bf = dt("bfloat16")
    x = rng.standard_normal(40).astype(bf)
    y = rng.standard_normal(40).astype(bf)
    for name in BINARY:
        uf = getattr(ru, name)
        acc = [x[0]]
        for v in x[1:]:
            acc.append(uf(np.array([acc[-1]], bf), np.array([v], bf))[0])
        acc = np.array(acc, bf)
        got = uf.accumulate(x)
        assert got.dtype == bf and (bits(got) == bits(acc)).all(), name
        assert bits(uf.reduce(x)[None])[0] == bits(acc[-1:])[0], name
        red = uf.reduceat(x, [0, 10, 25])
        assert red.dtype == bf and bits(red[1:2])[0] == bits(uf.reduce(x[10:25])[None])[0]
        outer = uf.outer(x[:7], y[:5])
        check(name, outer.ravel(), np.repeat(x[:7], 5), np.tile(y[:5], 7))
        a = x.copy()
        uf.at(a, [1, 1, 3], y[:3])
        b = x.copy()
        for i, v in zip([1, 1, 3], y[:3]):
            b[i] = uf(np.array([b[i]], bf), np.array([v], bf))[0]
        assert (bits(a) == bits(b)).all(), name
    for name in UNARY:
        a = x.copy()
        getattr(ru, name).at(a, [0, 2])
        expected = x.copy()
        expected[[0, 2]] = getattr(ru, name)(x[[0, 2]])
        assert (bits(a) == bits(expected)).all()


def test_where_and_errors_leave_the_output_alone():
    bf = dt("bfloat16")
    x = np.array([-1, 2, -3, 4], bf)
    out = np.full(4, 7, bf)
    ru.relu(x, out=out, where=np.array([True, False, True, False]))
    assert out.astype(F32).tolist() == [0, 7, 0, 7]
    out8 = np.full(4, 7, np.int8)
    with pytest.raises(TypeError, match="Cannot cast ufunc 'relu' output"):
        ru.relu(x, out=out8)
    assert (out8 == 7).all()


# ---- import order: loaded lazily, either way ---------------------------------

@pytest.mark.parametrize("order", ["ml_dtypes first", "relu_ufunc first"])
def test_import_order(order):
    """import relu_ufunc does not import ml_dtypes; whichever comes first,
    relu(bfloat16) is bfloat16."""
    first, second = ("ml_dtypes", "relu_ufunc") if order == "ml_dtypes first" else (
        "relu_ufunc", "ml_dtypes")
    code = f"""
import sys
import {first}
if "{first}" == "relu_ufunc":
    assert "ml_dtypes" not in sys.modules, "import relu_ufunc imported ml_dtypes"
import {second}
import numpy as np, ml_dtypes, relu_ufunc as ru
x = np.array([-1.5, 2.5], ml_dtypes.bfloat16)
assert ru.relu(x).dtype == ml_dtypes.bfloat16, ru.relu(x).dtype
assert ru.leaky_relu(x, 0.1).dtype == ml_dtypes.bfloat16
print(ru.backend, ru.relu(x))
"""
    env = dict(os.environ, RELU_UFUNC_BACKEND=ru.backend)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [ru.backend, "[0", "2.5]"]


def test_inside_njit_a_typing_error_names_the_dtype():
    """Numba has no ML dtypes: an ML array cannot even be passed to @njit
    code, and Numba's TypingError says which dtype (docs/numba.md)."""
    numba = pytest.importorskip("numba")

    @numba.njit
    def f(x):
        return ru.relu(x)

    with pytest.raises(numba.core.errors.TypingError, match="Unsupported array dtype: bfloat16"):
        f(np.ones(3, dt("bfloat16")))
