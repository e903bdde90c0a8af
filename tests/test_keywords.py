"""Every ufunc keyword docs/contract.md lists, on the real ufuncs."""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._spec import UFUNCS
from relu_ufunc import _reference
from conftest import assert_same_bits, random_values

X = np.array([-2.0, -0.0, 0.0, 0.5, 3.0, np.nan, -np.inf, np.inf])


def test_true_ufuncs():
    for name in UFUNCS:
        uf = getattr(ru, name)
        assert isinstance(uf, np.ufunc)
        assert uf.__name__ == name
        assert uf.nout == 1
    assert (ru.relu.nin, ru.relu_grad.nin, ru.relu_backward.nin) == (1, 1, 2)
    assert (ru.leaky_relu.nin, ru.leaky_relu_grad.nin) == (2, 2)


def test_out_in_place():
    x = X.copy()
    res = ru.relu(x, out=x)
    assert res is x
    assert_same_bits(x, _reference.relu(X))


def test_out_tuple_form():
    out = np.empty_like(X)
    res = ru.relu_grad(X, out=(out,))
    assert res is out
    assert_same_bits(out, _reference.relu_grad(X))


def test_out_in_place_binary_both_positions():
    dy = np.arange(8.0) - 4
    for pos in (0, 1):
        args = [dy.copy(), X.copy()]
        expected = _reference.relu_backward(*args)
        ru.relu_backward(*args, out=args[pos])
        assert_same_bits(args[pos], expected)


def test_out_wrong_shape_raises_and_leaves_out_alone():
    out = np.full(3, 7.0)
    with pytest.raises(ValueError):
        ru.relu(X, out=out)
    assert (out == 7.0).all()


def test_out_needs_allowed_cast():
    out = np.zeros(X.shape, np.int64)
    with pytest.raises(TypeError):     # float64 -> int64 is not same_kind
        ru.relu(X, out=out)
    assert (out == 0).all()
    ru.relu(X[:5], out=out[:5], casting="unsafe")
    assert list(out[:5]) == [0, 0, 0, 0, 3]


def test_where_leaves_other_entries_alone():
    out = np.full(X.shape, 42.0)
    mask = np.array([True, False] * 4)
    ru.relu(X, out=out, where=mask)
    assert_same_bits(out[mask], _reference.relu(X[mask]))
    assert (out[~mask] == 42.0).all()
    dy = np.full(X.shape, 5.0)
    out2 = np.full(X.shape, -1.0)
    ru.relu_backward(dy, X, out=out2, where=~mask)
    assert_same_bits(out2[~mask], _reference.relu_backward(dy, X)[~mask])
    assert (out2[mask] == -1.0).all()


def test_where_broadcasts():
    out = np.zeros((2, 8))
    ru.relu(X, out=out, where=np.array([[True], [False]]))
    assert_same_bits(out[0], _reference.relu(X))
    assert (out[1] == 0).all()


def test_dtype_keyword():
    x8 = np.array([-3, 0, 5], np.int8)
    got = ru.relu(x8, dtype=np.float32)
    assert got.dtype == np.float32 and list(got) == [0, 0, 5]
    assert ru.relu(X, dtype=np.float16).dtype == np.float16
    assert ru.relu_backward(x8, x8, dtype=np.float64).dtype == np.float64


def test_signature_keyword():
    x8 = np.array([-3, 0, 5], np.int8)
    assert ru.relu(x8, signature=("d", "d")).dtype == np.float64
    assert ru.relu_backward(x8, x8, signature=(None, None, "f")).dtype == np.float32


def test_casting_keyword():
    with pytest.raises(TypeError):
        ru.relu(X, dtype=np.float32, casting="safe")
    with pytest.raises(TypeError):
        ru.relu(X, dtype=np.float32, casting="no")
    assert ru.relu(X, dtype=np.float32, casting="same_kind").dtype == np.float32


def test_order_keyword():
    x = np.arange(12.0).reshape(3, 4) - 6
    assert ru.relu(x, order="F").flags.f_contiguous
    assert ru.relu(np.asfortranarray(x), order="C").flags.c_contiguous
    assert ru.relu(np.asfortranarray(x)).flags.f_contiguous      # order="K"


class Tagged(np.ndarray):
    pass


def test_subok_keyword():
    x = X.view(Tagged)
    assert type(ru.relu(x)) is Tagged
    assert type(ru.relu(x, subok=False)) is np.ndarray


def test_scalars_in_numpy_scalars_out():
    r = ru.relu(-1.5)
    assert type(r) is np.float64 and r == 0 and not np.signbit(r)
    r = ru.relu(np.float32(2.5))
    assert type(r) is np.float32 and r == 2.5
    r = ru.relu(-7)
    assert isinstance(r, np.integer) and r == 0
    r = ru.relu_grad(np.float16(3))
    assert type(r) is np.float16 and r == 1
    r = ru.relu_backward(4.0, np.float32(1.0))
    assert type(r) is np.float32 and r == 4
    r = ru.relu(np.array(-0.0))          # 0-d array in, NumPy scalar out
    assert type(r) is np.float64 and not np.signbit(r)


def test_ufunc_at():
    a = X.copy()
    idx = [0, 1, 3, 5, 6]
    ru.relu.at(a, idx)
    expected = X.copy()
    expected[idx] = _reference.relu(X[idx])
    assert_same_bits(a, expected)

    dy = np.arange(8.0) + 1
    ru.relu_backward.at(dy, [0, 3, 4], X[[0, 3, 4]])
    assert list(dy) == [0, 2, 3, 4, 5, 6, 7, 8]


def test_overlapping_out(rng):
    base = random_values(rng, "f", 1000)
    for src, dst in [(slice(0, -1), slice(1, None)), (slice(1, None), slice(0, -1)),
                     (slice(None, None, -1), slice(None))]:
        buf = base.copy()
        expected = _reference.relu(buf[src])
        ru.relu(buf[src], out=buf[dst])
        assert_same_bits(buf[dst], expected)
        buf = base.copy()
        x = base[::-1].copy()
        expected = _reference.relu_backward(buf[src], x[dst])
        ru.relu_backward(buf[src], x[dst], out=buf[dst])
        assert_same_bits(buf[dst], expected)


def test_outer_and_reduce_are_the_ufunc_machinery():
    dy, x = np.array([1.0, 2.0]), np.array([-1.0, 0.0, 3.0])
    assert_same_bits(ru.relu_backward.outer(dy, x),
                     _reference.relu_backward(dy[:, None], x[None, :]))
