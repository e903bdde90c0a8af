"""the contract's (docs/contract.md) value table, exactly: every dtype, compared bit for bit."""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._spec import SELECT_ONLY
from conftest import FLOAT_CHARS, INT_CHARS, assert_same_bits, loops

inf, nan = np.inf, np.nan

# docs/contract.md "Values, exactly": x, relu, relu_grad, relu_backward(dy, x)
X = [1.5, inf, 0.0, -0.0, -1.5, -inf, nan, -nan]
RELU = [1.5, inf, 0.0, 0.0, 0.0, 0.0, nan, nan]
GRAD = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, nan, nan]


def backward_row(dy):
    return [dy, dy, 0.0, 0.0, 0.0, 0.0, nan, nan]


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_relu_table(char):
    x = np.array(X, char)
    assert_same_bits(ru.relu(x), np.array(RELU, char))


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_relu_never_returns_negative_zero(char):
    out = ru.relu(np.array([-0.0, -1.0, -inf, -np.finfo(char).smallest_subnormal], char))
    assert not np.signbit(out).any()
    assert (out == 0).all()


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_relu_grad_table(char):
    assert_same_bits(ru.relu_grad(np.array(X, char)), np.array(GRAD, char))


@pytest.mark.parametrize("char", FLOAT_CHARS)
@pytest.mark.parametrize("dy", [2.5, -3.0, 0.0, -0.0, inf, -inf, nan])
def test_relu_backward_table(char, dy):
    x = np.array(X, char)
    dys = np.full(x.shape, dy, char)
    assert_same_bits(ru.relu_backward(dys, x), np.array(backward_row(dy), char))


def test_relu_backward_keeps_sign_of_dy():
    out = ru.relu_backward(-0.0, 1.0)
    assert out == 0 and np.signbit(out)


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_extremes(char):
    fi = np.finfo(char)
    pos = np.array([fi.max, fi.smallest_normal, fi.smallest_subnormal, fi.eps], char)
    assert_same_bits(ru.relu(pos), pos)
    assert_same_bits(ru.relu(-pos), np.zeros_like(pos))
    assert_same_bits(ru.relu_grad(pos), np.ones_like(pos))
    assert_same_bits(ru.relu_grad(-pos), np.zeros_like(pos))
    assert_same_bits(ru.relu_backward(pos[::-1], pos), pos[::-1])
    assert_same_bits(ru.relu_backward(pos, -pos), np.zeros_like(pos))


@pytest.mark.parametrize("char", INT_CHARS)
def test_integer_table(char):
    info = np.iinfo(char)
    x = np.array([info.min, -1, 0, 1, info.max] if info.min < 0 else [0, 1, 2, info.max], char)
    pos = x > 0
    assert_same_bits(ru.relu(x), np.where(pos, x, 0).astype(char))
    assert_same_bits(ru.relu_grad(x), pos.astype(char))
    dy = x[::-1].copy()
    assert_same_bits(ru.relu_backward(dy, x), np.where(pos, dy, 0).astype(char))


@pytest.mark.parametrize("char", "BHILQ")
def test_unsigned(char):
    x = np.array([0, 1, 7, np.iinfo(char).max], char)
    assert_same_bits(ru.relu(x), x)
    assert_same_bits(ru.relu_grad(x), (x != 0).astype(char))


@pytest.mark.parametrize("name,char", loops())
def test_output_dtype_equals_input_dtype(name, char):
    uf = getattr(ru, name)
    args = [np.ones(3, char)] * uf.nin
    out = uf(*args)
    assert out.dtype.char == char
    assert uf.resolve_dtypes((np.dtype(char),) * uf.nin + (None,))[-1].char == char


@pytest.mark.parametrize("name,char", [(n, c) for n, c in loops() if c in FLOAT_CHARS])
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
def test_nan_raises_no_fp_error(name, char, contiguous):
    """The loops leave the FP status flags clean: no RuntimeWarning on NaN,
    in both the vectorized contiguous kernel and the strided path.  The
    functions that only select do so for every input; leaky_relu, which
    multiplies, for NaN and finite x with a finite slope (where x is +inf
    its vectorized loop may raise "invalid" for a product it does not
    return, as the contract says: Numba 0.61's LLVM computes 0 * inf for
    the lanes whose product it discards)."""
    uf = getattr(ru, name)
    if name in SELECT_ONLY:
        x = np.array([nan, -nan, 1.0, -1.0, 0.0, -0.0, inf, -inf] * 9, char)
        args = [x] * uf.nin
    else:
        x = np.array([nan, -nan, 1.0, -1.0, 0.0, -0.0, 2.5, -inf] * 9, char)
        args = [x, np.full_like(x, 0.25)]
    if not contiguous:
        args = [np.repeat(a, 2)[::2] for a in args]
    with np.errstate(all="raise"):
        out = uf(*args)
    assert np.isnan(out[np.isnan(args[0])]).all()


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_backward_through_output_equals_backward_through_input(char, rng):
    """the contract: relu_backward(dy, relu(x)) == relu_backward(dy, x), so the forward
    pass can run in place and keep only its output."""
    from conftest import random_values
    x = random_values(rng, char, 500)
    dy = random_values(rng, char, 500)
    y = x.copy()
    ru.relu(y, out=y)
    assert_same_bits(ru.relu_backward(dy, y), ru.relu_backward(dy, x))


def test_mixed_dtypes_resolve_like_np_add():
    pairs = [("b", "B"), ("b", "h"), ("B", "H"), ("e", "f"), ("f", "d"), ("b", "e"),
             ("l", "e"), ("i", "f"), ("L", "l")]
    if "g" in FLOAT_CHARS:
        pairs.append(("d", "g"))
    for a, b in pairs:
        x, y = np.ones(2, a), np.ones(2, b)
        assert ru.relu_backward(x, y).dtype == np.add(x, y).dtype, (a, b)


def test_nep50_python_scalars_do_not_upcast():
    x = np.ones(3, np.float32)
    assert ru.relu_backward(x, 2.0).dtype == np.float32
    assert ru.relu_backward(2.0, x).dtype == np.float32
    assert ru.relu_backward(np.ones(3, np.int8), 3).dtype == np.int8


# docs/contract.md, leaky_relu(x, a) and leaky_relu_grad(x, a), with a = 0.25 (exact)
LEAKY = [1.5, inf, 0.0, -0.0, -0.375, -inf, nan, nan]
LEAKY_GRAD = [1.0, 1.0, 0.25, 0.25, 0.25, 0.25, nan, nan]


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_leaky_relu_table(char):
    x = np.array(X, char)
    assert_same_bits(ru.leaky_relu(x, np.array(0.25, char)), np.array(LEAKY, char))
    assert_same_bits(ru.leaky_relu_grad(x, np.array(0.25, char)), np.array(LEAKY_GRAD, char))
    out = ru.leaky_relu(np.array(-0.0, char), np.array(0.1, char))
    assert out == 0 and np.signbit(out)                 # alpha * (-0.0) keeps its sign
    assert_same_bits(ru.leaky_relu(x, np.array(-2.0, char)),       # any alpha, even < 0
                     np.array([1.5, inf, -0.0, 0.0, 3.0, inf, nan, nan], char))


@pytest.mark.parametrize("char", FLOAT_CHARS)
def test_leaky_relu_rounds_once(char, rng):
    """alpha * x is the one rounding: equal to the product rounded once from
    exact arithmetic (float16 products are exact in float64)."""
    from conftest import random_values
    x = -np.abs(random_values(rng, char, 4000))
    alpha = np.abs(random_values(rng, char, 4000))
    with np.errstate(all="ignore"):
        got = ru.leaky_relu(x, alpha)
        if char == "e":
            expected = (x.astype(np.float64) * alpha.astype(np.float64)).astype(np.float16)
        else:
            expected = x * alpha
    assert_same_bits(got, expected)


def test_leaky_dtypes_resolve_like_arctan2_and_nep50():
    for a, b in [("b", "b"), ("h", "h"), ("l", "l"), ("e", "f"), ("b", "e"), ("f", "d")]:
        x, y = np.ones(2, a), np.ones(2, b)
        assert ru.leaky_relu(x, y).dtype == np.arctan2(x, y).dtype, (a, b)
    x32 = np.ones(3, np.float32)
    assert ru.leaky_relu(x32, 0.01).dtype == np.float32             # Python float: weak
    assert ru.leaky_relu_grad(x32, np.float32(0.01)).dtype == np.float32
    assert ru.leaky_relu(x32, np.full(3, 0.2, np.float32)).dtype == np.float32
    assert ru.leaky_relu(np.ones(3, np.float16), 0.5).dtype == np.float16


def test_prelu_is_broadcasting(rng):
    """PReLU, one slope per channel: leaky_relu(x, alpha[:, None])."""
    x = rng.standard_normal((3, 50))
    alpha = np.array([0.0, 0.1, 0.5])
    got = ru.leaky_relu(x, alpha[:, None])
    assert_same_bits(got, np.where(x > 0, x, alpha[:, None] * x))
    assert_same_bits(ru.leaky_relu_grad(x, alpha[:, None]),
                     np.where(x > 0, 1.0, np.broadcast_to(alpha[:, None], x.shape)))
