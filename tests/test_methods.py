"""Every ufunc method, against the scalar formula applied one element at a time.

docs/contract.md: every method gives what applying the scalar formula step by step,
in the order NumPy documents, gives, bit for bit, on every backend.  The
reference here is deliberately naive: a Python loop that applies the formula
(``_reference``, on one element at a time) in that order:

- a call: each element of the broadcast inputs, the inputs read before any
  output is written (NumPy copies an input that overlaps the output);
- ``reduce``: ``acc = f(acc, a[i])`` from the first element (or ``initial``)
  along the one axis, skipping entries where ``where`` is False;
- ``accumulate``: ``out[i] = f(out[i - 1], a[i])``;
- ``reduceat``: ``reduce`` over each ``a[idx[i]:idx[i + 1]]``, or
  ``a[idx[i]]`` where the indices do not increase;
- ``outer``: ``f(a[i], b[j])``;
- ``at``: ``a[idx[k]] = f(a[idx[k]], b[k])`` for k in order, repeats too.

Layouts: contiguous, strided, negative strides, broadcast, transposed, 0-d,
misaligned, and outputs that are exactly or partly the inputs.  Each example
runs with every kernel build this CPU runs (Cython backend), and the results
of the other backend, where it loads, must be the same bits.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relu_ufunc as ru
from relu_ufunc import _reference
from relu_ufunc._spec import UFUNCS
from relu_ufunc.__main__ import cpu_level, cpu_levels
from conftest import assert_same_bits

BINARY = tuple(n for n, (nin, _) in UFUNCS.items() if nin == 2)
# (max_examples: the profile's, conftest.py)
SETTINGS = settings(deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- the implementations under test ---------------------------------------

# Each build of the kernels this CPU runs ([None]: the Numba backend has one).
LEVELS = cpu_levels() or [None]


def _other_backend():
    """The ufuncs of the backend that is not ru.backend, or None."""
    try:
        if ru.backend == "cython":
            from relu_ufunc import _numba_backend as other
        else:
            from relu_ufunc import _ufuncs as other
    except ImportError:
        return None
    return other


OTHER = _other_backend()


def run_everywhere(name, call):
    """call(ufunc) under every kernel build and on the other backend (where
    it has the dtypes); every result must be the same bits as the first,
    which is returned.  `call` must build its own fresh inputs."""
    results = []
    for level in LEVELS:
        with cpu_level(level), np.errstate(all="ignore"):
            results.append(call(getattr(ru, name)))
    if OTHER is not None:
        with np.errstate(all="ignore"):
            try:
                results.append(call(getattr(OTHER, name)))
            except TypeError:            # a dtype that backend has no loop for
                pass
    for r in results[1:]:
        assert_same_bits(r, results[0])
    return results[0]


# ---- the reference: the formula, one element at a time --------------------

def formula(name):
    ref = _reference.REFERENCE[name]

    def f(*values):
        with np.errstate(all="ignore"):
            return ref(*[np.asarray(v) for v in values])[()]
    return f


def elementwise(name, *args):
    f = formula(name)
    arrays = np.broadcast_arrays(*[np.array(a, copy=True) for a in args])
    dtype = f(*[a.flat[0] if a.size else a.dtype.type(0) for a in arrays]).dtype
    out = np.empty(arrays[0].shape, dtype)
    for idx in np.ndindex(out.shape):
        out[idx] = f(*[a[idx] for a in arrays])
    return out


def fold(f, values, initial=None, mask=None):
    acc = initial
    for k, v in enumerate(values):
        if mask is not None and not mask[k]:
            continue
        acc = v if acc is None else f(acc, v)
    return acc


# ---- strategies ------------------------------------------------------------

def types_of(name):
    return [t[0] for t in getattr(ru, name).types]


def pool(dtype):
    """Edge values and ordinary numbers of both signs."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.array([False, True])
    ordinary = np.random.default_rng(7).standard_normal(24) * 40
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        ordinary = np.clip(ordinary, info.min, info.max)
    return np.concatenate([_reference.special_values(dtype), ordinary.astype(dtype)])


@st.composite
def arrays(draw, dtype, shape):
    """An array of `shape` in one of several layouts, same values whatever
    the layout: contiguous, every other element, reversed, transposed,
    broadcast along an axis, starting off its natural alignment, or a field
    of a packed record array (a stride that is not a whole number of
    elements)."""
    values = pool(dtype)
    size = int(np.prod(shape))
    data = np.array(draw(st.lists(st.sampled_from(range(values.size)),
                                  min_size=size, max_size=size)), int)
    a = values[data].reshape(shape)
    layout = draw(st.sampled_from(["contiguous", "strided", "reversed", "transposed",
                                   "broadcast", "misaligned", "field"]))
    if layout == "strided":
        big = np.empty(tuple(2 * s for s in shape), a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in shape) + (Ellipsis,)]
    elif layout == "reversed":
        view = np.empty(shape, a.dtype)[tuple(slice(None, None, -1) for _ in shape) + (Ellipsis,)]
    elif layout == "transposed" and len(shape) > 1:
        view = np.empty(shape[::-1], a.dtype).T
    elif layout == "broadcast" and len(shape) > 0 and shape[0] > 0:
        row = a[:1]
        return np.broadcast_to(row, shape)
    elif layout == "misaligned":
        raw = np.empty(size * a.itemsize + 1, np.uint8)[1:]
        view = raw.view(a.dtype).reshape(shape)
    elif layout == "field":
        view = np.empty(shape, [("v", a.dtype), ("pad", "u1")])["v"]
    else:
        view = np.empty(shape, a.dtype)
    view[...] = a
    return view


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=6):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def inputs(draw, name, shape, dtype):
    uf = getattr(ru, name)
    return [draw(arrays(dtype, shape)) for _ in range(uf.nin)]


# ---- call ------------------------------------------------------------------

@pytest.mark.parametrize("name", UFUNCS)
@SETTINGS
@given(data=st.data())
def test_call_any_layout(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    shape = data.draw(shapes())
    args = inputs(data.draw, name, shape, dtype)
    expected = elementwise(name, *args)
    got = run_everywhere(name, lambda uf: uf(*args))
    assert_same_bits(got, expected)


@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data())
def test_call_broadcast_and_scalar_operand(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = data.draw(arrays(dtype, shape))
    b = data.draw(arrays(dtype, shape[-1:]))      # a row, broadcast over a
    s = data.draw(arrays(dtype, ()))              # one value, stride 0
    for args in ((a, b), (b, a), (a, s), (s, a)):
        expected = elementwise(name, *args)
        assert_same_bits(run_everywhere(name, lambda uf: uf(*args)), expected)


@pytest.mark.parametrize("name", UFUNCS)
@SETTINGS
@given(data=st.data())
def test_call_output_is_an_input(name, data):
    """out= exactly an input, or overlapping one in part (shifted, or
    reversed): the inputs are read as they were before the call."""
    dtype = data.draw(st.sampled_from(types_of(name)))
    n = data.draw(st.integers(1, 600))
    shift = data.draw(st.integers(-3, 3))
    which = data.draw(st.integers(0, getattr(ru, name).nin - 1))
    reverse = data.draw(st.booleans())
    base = data.draw(arrays(dtype, (n + 3 + 3,)))
    others = [data.draw(arrays(dtype, (n,))) for _ in range(getattr(ru, name).nin - 1)]

    def setup():
        buf = np.array(base, copy=True)
        args = list(others)
        args.insert(which, buf[3:3 + n])
        out = buf[3 + shift:3 + shift + n]
        if reverse:
            out = out[::-1]
        return buf, args, out

    _, args, _ = setup()
    expected = elementwise(name, *args)

    def call(uf):
        buf, args, out = setup()
        res = uf(*args, out=out)
        assert res is out
        return np.array(out, copy=True)

    assert_same_bits(run_everywhere(name, call), expected)


# ---- reduce, accumulate, reduceat -----------------------------------------

@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data())
def test_reduce(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    shape = data.draw(shapes(min_dims=1, min_side=1, max_side=7))
    a = data.draw(arrays(dtype, shape))
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdims = data.draw(st.booleans())
    kwargs = {"axis": axis, "keepdims": keepdims}
    initial = mask = None
    if data.draw(st.booleans()):
        initial = pool(dtype)[data.draw(st.integers(0, pool(dtype).size - 1))]
        kwargs["initial"] = initial
        if data.draw(st.booleans()):
            mask = data.draw(arrays(np.bool_, shape))
            kwargs["where"] = mask
    f = formula(name)
    moved = np.moveaxis(a, axis, -1)
    mmask = None if mask is None else np.moveaxis(np.broadcast_to(mask, shape), axis, -1)
    expected = np.empty(moved.shape[:-1], a.dtype)
    for idx in np.ndindex(expected.shape):
        expected[idx] = fold(f, moved[idx], initial, None if mmask is None else mmask[idx])
    if keepdims:
        expected = np.expand_dims(expected, axis)
    got = run_everywhere(name, lambda uf: np.asarray(uf.reduce(a, **kwargs)))
    assert_same_bits(got, expected)


@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data())
def test_accumulate(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    shape = data.draw(shapes(min_dims=1, min_side=1, max_side=7))
    a = data.draw(arrays(dtype, shape))
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    f = formula(name)
    expected = np.moveaxis(np.array(a, copy=True), axis, -1)
    for idx in np.ndindex(expected.shape[:-1]):
        for i in range(1, expected.shape[-1]):
            expected[idx + (i,)] = f(expected[idx + (i - 1,)], expected[idx + (i,)])
    expected = np.moveaxis(expected, -1, axis)
    assert_same_bits(run_everywhere(name, lambda uf: uf.accumulate(a, axis=axis)), expected)


@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data())
def test_reduceat(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    n = data.draw(st.integers(1, 40))
    rows = data.draw(st.integers(1, 3))
    a = data.draw(arrays(dtype, (rows, n)))
    idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8))
    f = formula(name)
    expected = np.empty((rows, len(idx)), a.dtype)
    for r in range(rows):
        for k, i in enumerate(idx):
            j = idx[k + 1] if k + 1 < len(idx) else n
            expected[r, k] = fold(f, a[r, i:j]) if i < j else a[r, i]
    got = run_everywhere(name, lambda uf: uf.reduceat(a, idx, axis=1))
    assert_same_bits(got, expected)


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("n", [2, 5, 100, 257, 1000])
def test_long_reductions(name, n):
    """Past one L1 block (256), and long enough for any vector path: every
    dtype, reduce and accumulate along a contiguous and a strided axis."""
    rng = np.random.default_rng(n)
    f = formula(name)
    for dtype in types_of(name):
        p = pool(dtype)
        a = p[rng.integers(0, p.size, n)]
        a = a[rng.permutation(n)]
        acc = [a[0]]
        for v in a[1:]:
            acc.append(f(acc[-1], v))
        acc = np.array(acc, a.dtype)
        two = np.stack([a, a])
        for got in (run_everywhere(name, lambda uf: np.asarray(uf.reduce(a))),
                    run_everywhere(name, lambda uf: uf.reduce(two.T, axis=0))[:1]):
            assert_same_bits(got.reshape(-1), acc[-1:])
        assert_same_bits(run_everywhere(name, lambda uf: uf.accumulate(a)), acc)
        assert_same_bits(run_everywhere(name, lambda uf: uf.accumulate(two, axis=1))[1], acc)


def test_reduce_where_without_initial_is_numpys_error():
    with pytest.raises(ValueError, match="initial"):
        ru.relu_backward.reduce(np.ones(3), where=[True, False, True])
    with pytest.raises(ValueError):
        ru.relu_backward.reduce(np.ones((2, 2)), axis=None)    # not reorderable


# ---- outer and at ----------------------------------------------------------

@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data())
def test_outer(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    a = data.draw(arrays(dtype, data.draw(shapes(min_dims=1, max_dims=2))))
    b = data.draw(arrays(dtype, data.draw(shapes(min_dims=1, max_dims=2))))
    f = formula(name)
    expected = np.empty(a.shape + b.shape, a.dtype)
    for i in np.ndindex(a.shape):
        for j in np.ndindex(b.shape):
            expected[i + j] = f(a[i], b[j])
    assert_same_bits(run_everywhere(name, lambda uf: uf.outer(a, b)), expected)


@pytest.mark.parametrize("name", UFUNCS)
@SETTINGS
@given(data=st.data())
def test_at(name, data):
    dtype = data.draw(st.sampled_from(types_of(name)))
    n = data.draw(st.integers(1, 12))
    a = data.draw(arrays(dtype, (n,)))
    idx = data.draw(st.lists(st.integers(-n, n - 1), max_size=16))
    nin = getattr(ru, name).nin
    b = data.draw(arrays(dtype, (len(idx),))) if nin == 2 else None
    f = formula(name)
    expected = np.array(a, copy=True)
    for k, i in enumerate(idx):
        expected[i] = f(expected[i]) if nin == 1 else f(expected[i], b[k])

    def call(uf):
        target = np.array(a, copy=True)
        uf.at(target, np.array(idx, np.intp), *([] if b is None else [b]))
        return target

    assert_same_bits(run_everywhere(name, call), expected)
