"""The builds and store paths of the contiguous kernels (relu_ufunc/_contig.h).

Every kernel is built for each CPU level (baseline, AVX2, AVX-512), and this
machine runs the highest it has unless told otherwise, so each test here runs
once per level this CPU supports.  A long run is stored in one sequential
pass, in page order in place, or in page order with streaming stores.  Every
loop, on runs of a few groups of four pages plus a tail (long enough for a
sequential run to prefetch), from aligned and misaligned starts, bit for bit against the reference.  The streaming
threshold is lowered for the test, so that arrays far smaller than the cache
take the streaming path too."""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _reference
from conftest import assert_same_bits, call_args, loops, random_values

pytestmark = pytest.mark.skipif(ru.backend != "cython", reason="the Cython loops' store paths")

GROUP_BYTES = 4 * 4096                  # four pages, one turn of the page order
# Sequential runs with this much output prefetch ahead, in 256-byte pieces.
PREFETCHED_BYTES = 128 << 10


def _levels():
    if ru.backend != "cython":
        return [0]
    from relu_ufunc import _ufuncs
    return list(range(_ufuncs.MAX_CPU_LEVEL + 1))


@pytest.fixture(params=_levels(), autouse=True)
def cpu_level(request):
    """Every test here runs with each build of the kernels this CPU can run."""
    from relu_ufunc import _ufuncs
    old = _ufuncs._set_cpu_level(request.param)
    yield request.param
    _ufuncs._set_cpu_level(old)


@pytest.fixture(params=["sequential", "streamed"])
def stores(request):
    from relu_ufunc import _ufuncs
    old = _ufuncs._set_stream_threshold(1 if request.param == "streamed" else 1 << 62)
    yield request.param
    _ufuncs._set_stream_threshold(old)


def expected(name, args):
    with np.errstate(all="ignore"):
        return _reference.REFERENCE[name](*args)


def assert_into(name, args, out):
    """name(*args, out=out) writes the reference's values into out."""
    with np.errstate(all="ignore"):
        getattr(ru, name)(*args, out=out)
    assert_same_bits(out, expected(name, args))


@pytest.mark.parametrize("name, char", loops())
def test_long_runs_every_loop(name, char, stores, rng):
    itemsize = np.dtype(char).itemsize
    n = (PREFETCHED_BYTES + 2 * GROUP_BYTES) // itemsize + 77
    for start in (0, 1):                             # 1: y starts off its line
        x = random_values(rng, char, n + start)[start:]
        args = call_args(name, x, rng)
        out = np.empty(n + start, x.dtype)[start:]
        assert_into(name, args, out)
        if len(args) == 2:                           # one input a single value
            scalar = args[1][0] if name.startswith("leaky") else args[0][0]
            sargs = (args[0], scalar) if name.startswith("leaky") else (scalar, args[1])
            assert_into(name, sargs, out)


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


@pytest.mark.parametrize("name, char", loops())
def test_short_and_strided_runs(name, char, rng):
    """The aligning head, the unrolled loop and its tail, on short runs from
    aligned and misaligned starts; and strided data, which goes through the
    same kernel in gathered blocks."""
    for n in (1, 2, 7, 31, 64, 65, 130, 257, 1031):
        for start in (0, 1, 3):
            x = random_values(rng, char, n + start)[start:]
            assert_into(name, call_args(name, x, rng), np.empty(n + start, x.dtype)[start:])
    x = random_values(rng, char, 3 * 700)[::3]
    assert_into(name, call_args(name, x, rng), np.empty(2 * 700, x.dtype)[::2])


def test_cpu_level_setting():
    """The private switch takes only levels this CPU runs, and says so."""
    from relu_ufunc import _ufuncs
    top = _ufuncs.MAX_CPU_LEVEL
    assert 0 <= top < len(_ufuncs.CPU_LEVELS)
    level = _ufuncs._cpu_level()
    for bad in (-1, top + 1):
        with pytest.raises(ValueError, match="levels 0 to"):
            _ufuncs._set_cpu_level(bad)
        assert _ufuncs._cpu_level() == level
