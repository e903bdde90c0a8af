"""add_relu(x, b) = relu(x + b), in one pass: bit for bit relu(np.add(x, b))
for every dtype, np.add's FP flags, broadcasting of a bias, in place, and
the ufunc methods of a function that is not associative (docs/contract.md)."""
import functools

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _reference
from relu_ufunc._spec import UFUNCS

CHARS = [c for c in UFUNCS["add_relu"][1] if c != "g" or ru.backend == "cython"]


def bits(a):
    a = np.ascontiguousarray(a)
    if a.dtype == np.longdouble:
        return a.view(np.uint8).reshape(a.shape + (-1,))[..., :10]   # x87: 80 bits used
    return a.view(f"u{a.itemsize}")


def expect_exactly(got, x, b):
    """got == relu(np.add(x, b)) bit for bit, except where x and b are both
    NaN: NaN there, payload the machine's (IEEE 754 leaves it open)."""
    with np.errstate(all="ignore"):
        expected = ru.relu(np.add(x, b))
    assert got.dtype == expected.dtype and got.shape == expected.shape
    both_nan = np.zeros(got.shape, bool)
    if got.dtype.kind == "f":
        both_nan = np.broadcast_to(np.isnan(x) & np.isnan(b), got.shape)
        assert np.isnan(got[both_nan]).all()
    same = (bits(got) == bits(expected))
    if same.ndim > got.ndim:
        same = same.all(axis=-1)
    assert (same | both_nan).all(), (x, b, got, expected)


@pytest.mark.parametrize("char", CHARS)
def test_every_pair_of_edge_values_is_relu_of_np_add(char):
    """Every pair of the dtype's edge values (zeros of both signs, ±inf, NaN
    of both signs, extremes, subnormals, wrapping integers)."""
    v = _reference.special_values(char)
    x, b = np.meshgrid(v, v)
    with np.errstate(all="ignore"):
        got = ru.add_relu(x, b)
    expect_exactly(got, x, b)
    if got.dtype.kind == "f":
        assert not np.signbit(got[~np.isnan(got)]).any()      # never -0.0


@pytest.mark.parametrize("char", "efd")
def test_fp_flags_are_np_adds(char):
    """Each pair raises under errstate(all="raise") exactly where np.add
    does: inf + -inf is invalid, max + max overflows; the relu adds none."""
    v = _reference.special_values(char)
    for xv in v:
        for bv in v:
            x, b = np.array([xv] * 17), np.array([bv] * 17)
            x, b = x.astype(char), b.astype(char)
            outcomes = []
            for f in (np.add, ru.add_relu):
                try:
                    with np.errstate(all="raise"):
                        f(x, b)
                    outcomes.append(None)
                except FloatingPointError as e:
                    outcomes.append(str(e).split()[0])
            if (ru.backend == "numba" and char == "e" and outcomes[0] == "overflow"
                    and np.float32(xv) + np.float32(bv) < 0):
                # The contract's one exception: the Numba backend adds float16
                # in float32 and applies the relu before rounding, so a sum
                # below -65504 gives +0 without np.add's overflow warning.
                assert outcomes[1] is None
                continue
            assert outcomes[0] == outcomes[1], (xv, bv, outcomes)


@pytest.mark.parametrize("char", CHARS)
def test_random_data_and_layouts(char, rng):
    from conftest import random_values
    x = random_values(rng, char, 7 * 33).reshape(7, 33)
    b = random_values(rng, char, 33)
    with np.errstate(all="ignore"):
        for xx, bb in [(x, b), (x[:, ::3], b[::3]), (x[::-1], b[::-1]), (x.T, x[:, 0]),
                       (x, b[0]), (x[0, 0], b)]:
            expect_exactly(ru.add_relu(xx, bb), xx, bb)


def test_bias_per_column_in_place_and_out():
    """A layer: z of (batch, features), b of (features,), out=z in place."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((64, 40)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    expected = np.maximum(z + b, 0)
    assert ru.add_relu(z, b, out=z) is z
    assert np.array_equal(z, expected)
    out = np.empty((64, 40))
    ru.add_relu(expected, b, out=out)                    # cast out, as np.add
    assert np.array_equal(out, ru.add_relu(expected, b).astype(np.float64))


def test_dtypes_resolve_as_np_add():
    for a, b in [(np.int8, np.uint8), (np.int16, np.float16), (np.float32, np.int64),
                 (np.uint64, np.int64), (np.float16, np.float32)]:
        x, y = np.ones(3, a), np.ones(3, b)
        assert ru.add_relu(x, y).dtype == np.add(x, y).dtype, (a, b)
    x32 = np.ones(3, np.float32)
    assert ru.add_relu(x32, 0.5).dtype == np.float32                  # NEP 50
    assert ru.add_relu(np.int8([100]), 100)[0] == np.int8(-56) * 0    # wraps, then relu
    assert ru.add_relu(np.int8([100]), 27)[0] == 127
    with pytest.raises(TypeError):
        ru.add_relu(np.ones(3, complex), 1.0)


def test_methods_fold_left():
    """Not associative: reduce and accumulate fold left, relu(relu(a0 + a1)
    + a2)...; reduceat, outer and at as for any binary ufunc."""
    a = np.array([1.0, -3.0, 0.5, 4.0, -10.0, 2.0])

    def fold(v):
        return functools.reduce(lambda s, t: max(s + t, 0.0), v[1:], v[0])
    assert ru.add_relu.reduce(a) == fold(a)
    assert list(ru.add_relu.accumulate(a)) == [fold(a[:k + 1]) for k in range(len(a))]
    assert list(ru.add_relu.reduceat(a, [0, 2, 4])) == [fold(a[0:2]), fold(a[2:4]),
                                                        fold(a[4:])]
    assert np.array_equal(ru.add_relu.outer(a[:3], a[3:]),
                          np.maximum(a[:3, None] + a[3:], 0))
    y = np.zeros(4)
    ru.add_relu.at(y, [0, 0, 2], [1.0, -5.0, 3.0])            # unbuffered, in order
    assert list(y) == [0.0, 0.0, 3.0, 0.0]
    assert ru.add_relu.identity is None
    with pytest.raises(ValueError):
        ru.add_relu.reduce(np.array([]))
