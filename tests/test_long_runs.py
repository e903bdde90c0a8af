"""The ways a long contiguous run is stored (relu_ufunc/_contig.h): one
sequential pass, page order in place, and page order with streaming stores.
Every loop, on runs of a few groups of four pages plus a tail, from aligned
and misaligned starts, bit for bit against the reference.  The streaming
threshold is lowered for the test, so that arrays far smaller than the cache
take the streaming path too."""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _reference
from conftest import assert_same_bits, call_args, loops, random_values

pytestmark = pytest.mark.skipif(ru.backend != "cython", reason="the Cython loops' store paths")

GROUP_BYTES = 4 * 4096                  # four pages, one turn of the page order


@pytest.fixture(params=["sequential", "streamed"])
def stores(request):
    from relu_ufunc import _ufuncs
    old = _ufuncs._set_stream_threshold(1 if request.param == "streamed" else 1 << 62)
    yield request.param
    _ufuncs._set_stream_threshold(old)


def expected(name, args):
    with np.errstate(all="ignore"):
        return _reference.REFERENCE[name](*args)


@pytest.mark.parametrize("name, char", loops())
def test_long_runs_every_loop(name, char, stores, rng):
    itemsize = np.dtype(char).itemsize
    n = 2 * GROUP_BYTES // itemsize + 77
    for start in (0, 1):                             # 1: y starts off its line
        x = random_values(rng, char, n + start)[start:]
        args = call_args(name, x, rng)
        uf = getattr(ru, name)
        out = np.empty(n + start, x.dtype)[start:]
        with np.errstate(all="ignore"):
            uf(*args, out=out)
        assert_same_bits(out, expected(name, args))
        if uf.nin == 2:                              # one input a single value
            scalar = args[1][0] if name.startswith("leaky") else args[0][0]
            sargs = (args[0], scalar) if name.startswith("leaky") else (scalar, args[1])
            with np.errstate(all="ignore"):
                uf(*sargs, out=out)
            assert_same_bits(out, expected(name, sargs))


@pytest.mark.parametrize("name, char", loops())
def test_long_runs_in_place(name, char, rng):
    """In place, every input may be the output: page order, plain stores."""
    itemsize = np.dtype(char).itemsize
    n = 3 * GROUP_BYTES // itemsize + 5
    x = random_values(rng, char, n)
    args = call_args(name, x, rng)
    ref = expected(name, args)
    for k in range(len(args)):
        a = [arg.copy() for arg in args]
        with np.errstate(all="ignore"):
            got = getattr(ru, name)(*a, out=a[k])
        assert got is a[k]
        assert_same_bits(got, ref)


def test_streamed_output_overlapping_input_is_not_streamed(stores):
    """A shifted view of the input as out: NumPy copies the input first, so
    the values are those of the unshifted input."""
    x = random_values(np.random.default_rng(1), "f", 40_000)
    ref = expected("relu", (x[:-16],))
    y = x.copy()
    ru.relu(y[:-16], out=y[16:])
    assert_same_bits(y[16:], ref)
