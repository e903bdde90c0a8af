"""relu_ufunc.set_num_threads / threads: opt-in threads for large calls give
bit-identical results, and the setting behaves."""
import numpy as np
import pytest

import relu_ufunc as ru
from conftest import assert_same_bits, random_values


def test_default_is_one_thread():
    assert ru.get_num_threads() == 1


def test_context_manager_restores():
    with ru.threads(3):
        assert ru.get_num_threads() == 3
        with ru.threads(2):
            assert ru.get_num_threads() == 2
        assert ru.get_num_threads() == 3
    assert ru.get_num_threads() == 1
    with pytest.raises(RuntimeError):
        with ru.threads(2):
            raise RuntimeError("boom")
    assert ru.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_counts_raise_valueerror(bad):
    with pytest.raises(ValueError):
        ru.set_num_threads(bad)
    assert ru.get_num_threads() == 1


@pytest.mark.parametrize("bad", [1.5, "2", None])
def test_non_integers_raise_typeerror(bad):
    with pytest.raises(TypeError):
        ru.set_num_threads(bad)


def test_set_returns_old_value():
    assert ru.set_num_threads(4) == 1
    assert ru.set_num_threads(1) == 4


@pytest.mark.parametrize("char", "fd")
def test_threaded_calls_are_bit_identical(name, char, rng):
    uf = getattr(ru, name)
    n = 3_000_017                              # past the threshold, odd length
    x = random_values(rng, char, n)
    args = [x] if uf.nin == 1 else [x, x[::-1].copy()]
    with np.errstate(all="ignore"):
        single = uf(*args)
        for k in (2, 3, 7):
            with ru.threads(k):
                assert_same_bits(uf(*args), single)
                out = np.empty(n + 3, x.dtype)[3:]     # a misaligned output
                uf(*args, out=out)
                assert_same_bits(out, single)
                inplace = args[0].copy()
                uf(inplace, *args[1:], out=inplace)
                assert_same_bits(inplace, single)
