"""Randomized differential tests against the plain-NumPy reference, over many
shapes, lengths, strides, memory layouts and dtypes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import relu_ufunc as ru
from relu_ufunc import _reference
from conftest import FLOAT_CHARS, assert_same_bits, call_args, loops, random_values


def check(name, *args, **kwargs):
    with np.errstate(over="ignore", invalid="ignore"):   # alpha * x may overflow
        got = getattr(ru, name)(*args, **kwargs)
    assert_same_bits(got, _reference.REFERENCE[name](*args))
    return got


@pytest.mark.parametrize("name,char", loops())
def test_lengths_cover_simd_tails(name, char, rng):
    # 1..67 covers every remainder of 8/16/32/64-lane vectors plus a body.
    for n in list(range(0, 68)) + [1000, 4099]:
        x = random_values(rng, char, n)
        check(name, *call_args(name, x, rng))


@pytest.mark.parametrize("name,char", loops())
def test_layouts(name, char, rng):
    base = random_values(rng, char, 2 * 3 * 37 * 2).reshape(6, 74)
    views = {
        "zero-d": base[0, 0].reshape(()),
        "fortran": np.asfortranarray(base),
        "transposed": base.T,
        "step-2": base[:, ::2],
        "negative-step": base[::-1, ::-3],
        "3-d": base.reshape(2, 3, 74)[:, ::-1, 5:],
    }
    for label, x in views.items():
        got = check(name, *call_args(name, x, rng))
        assert got.shape == x.shape, label


@pytest.mark.parametrize("name,char", loops())
def test_misaligned_byteswapped_readonly(name, char, rng):
    x = random_values(rng, char, 301)
    buf = np.zeros(x.nbytes + 1, np.uint8)
    misaligned = buf[1:].view(x.dtype)
    misaligned[...] = x
    assert not misaligned.flags.aligned or x.itemsize == 1
    swapped = x.astype(x.dtype.newbyteorder())
    readonly = x.copy()
    readonly.flags.writeable = False
    for arr in (misaligned, swapped, readonly):
        args = call_args(name, arr, rng)
        with np.errstate(over="ignore", invalid="ignore"):
            got = getattr(ru, name)(*args)
        expected = _reference.REFERENCE[name](*[np.asarray(a, x.dtype) for a in args])
        assert_same_bits(got, expected)


@pytest.mark.parametrize("char", "bhl" + FLOAT_CHARS)
def test_broadcasting(char, rng):
    dy = random_values(rng, char, 5).reshape(5, 1)
    x = random_values(rng, char, 7).reshape(1, 7)
    got = check("relu_backward", dy, x)
    assert got.shape == (5, 7)
    check("relu_backward", dy[0, 0], x)           # 0-d with 2-d
    check("relu_backward", random_values(rng, char, 7), x[0, 0])


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_empty(char):
    for shape in [(0,), (3, 0), (0, 5, 2)]:
        x = np.empty(shape, char)
        assert ru.relu(x).shape == shape
        assert ru.relu_backward(x, x).shape == shape


floats = st.sampled_from([np.float16, np.float32, np.float64])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=floats)
def test_hypothesis_unary(data, dtype):
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=9),
                             elements=st.floats(allow_nan=True, allow_infinity=True,
                                                width=np.dtype(dtype).itemsize * 8)))
    with np.errstate(all="raise"):
        check("relu", x)
        check("relu_grad", x)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), dtype=floats, name=st.sampled_from(["relu_backward", "leaky_relu",
                                                          "leaky_relu_grad"]))
def test_hypothesis_binary_broadcast(data, dtype, name):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=6))
    elems = st.floats(width=np.dtype(dtype).itemsize * 8)
    dy = data.draw(hnp.arrays(dtype, shapes.input_shapes[0], elements=elems))
    x = data.draw(hnp.arrays(dtype, shapes.input_shapes[1], elements=elems))
    got = check(name, dy, x)
    assert got.shape == shapes.result_shape


@settings(max_examples=100, deadline=None)
@given(x=hnp.arrays(st.sampled_from(["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8"]),
                    st.integers(0, 40)))
def test_hypothesis_integers(x):
    check("relu", x)
    check("relu_grad", x)
    check("relu_backward", x[::-1], x)
