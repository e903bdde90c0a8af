"""Large arrays: the streaming-store path (outputs larger than 3/4 of a
CPU's share of the last-level cache) and more than 2**31 elements.  Marked slow; each skips
where the machine lacks the memory."""
import os

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _reference
from conftest import assert_same_bits


def need_gib(gib):
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError):
        free = 0
    if free < gib:
        pytest.skip(f"needs {gib} GiB free memory, {free:.1f} available")


def l3_bytes():
    try:
        return max(os.sysconf("SC_LEVEL3_CACHE_SIZE"), 0)
    except (ValueError, OSError):
        return 0


def check_sampled(got, expected_fn, *args, every=9973):
    """Compare the head, the tail and a strided sample (a full reference copy
    of arrays this size would double the memory)."""
    for sl in (slice(0, 100_000), slice(-100_000, None), slice(None, None, every)):
        assert_same_bits(got[sl], expected_fn(*[a[sl] for a in args]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["relu", "relu_grad", "relu_backward", "leaky_relu"])
def test_streaming_store_path(name):
    n = max(3 * l3_bytes() // 4 // 4 + 12345, 50_000_000)   # float32 past the threshold
    need_gib(3.5 * n * 4 / 2**30 + 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    x[::1000] = np.nan
    x[1::1000] = -0.0
    uf = getattr(ru, name)
    if name == "relu_backward":
        dy = rng.standard_normal(n, dtype=np.float32)
        args = (dy, x)
    elif name == "leaky_relu":
        args = (x, np.float32(0.1))
    else:
        args = (x,)
    out = np.empty(n, np.float32)
    uf(*args, out=out[:])
    ref = _reference.REFERENCE[name]
    if name == "leaky_relu":
        check_sampled(out, lambda a: ref(a, np.float32(0.1)), x)
    else:
        check_sampled(out, ref, *args)
    if name == "relu":                 # in place: regular stores, same values
        ru.relu(x, out=x)
        assert_same_bits(x, out)


@pytest.mark.slow
def test_more_than_2_31_elements():
    n = 2**31 + 17
    need_gib(2 * n / 2**30 + 1)
    x = np.empty(n, np.int8)
    x[:] = -3
    x[::2] = 5
    x[-1] = -7
    ru.relu(x, out=x)
    assert x[0] == 5 and x[1] == 0 and x[-1] == 0 and x[-2] == 0
    assert x[2**31 + 1] == 0 and x[2**31] == 5
    # 5 at the even indices, but the last index (even too) held -7
    assert int(np.count_nonzero(x)) == (n + 1) // 2 - 1
