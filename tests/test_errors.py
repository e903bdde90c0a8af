"""Bad input gets NumPy's own TypeError, and nothing is modified."""
import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._spec import UFUNCS

BAD = {
    "complex": np.array([1 + 2j, -1j]),
    "str": np.array(["a", "b"]),
    "bytes": np.array([b"a", b"b"]),
    "object": np.array([1.0, None], dtype=object),
    "datetime": np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
    "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("name", UFUNCS)
def test_bad_dtypes_raise_numpy_typeerror(name, kind):
    uf = getattr(ru, name)
    bad = BAD[kind]
    before = bad.copy()
    good = np.ones(bad.shape)
    out = np.full(bad.shape, 9.0)
    arg_sets = [(bad,)] if uf.nin == 1 else [(bad, good), (good, bad)]
    for args in arg_sets:
        with pytest.raises(TypeError, match="ufunc|loop|not supported"):
            uf(*args)
        with pytest.raises(TypeError):
            uf(*args, out=out)
    assert np.array_equal(bad, before)
    assert (out == 9.0).all()


@pytest.mark.parametrize("name", ["relu", "relu_grad"])
def test_none_and_python_objects(name):
    uf = getattr(ru, name)
    with pytest.raises(TypeError):
        uf(None)
    with pytest.raises(TypeError):
        uf("text")
    with pytest.raises(TypeError):
        uf(1 + 1j)


def test_wrong_number_of_arguments():
    with pytest.raises(TypeError):
        ru.relu_backward(np.ones(2))
    with pytest.raises(TypeError):
        ru.relu(np.ones(2), np.ones(2), np.ones(2))


def test_complex_is_not_silently_cast():
    x = np.array([-1 + 0j])
    with pytest.raises(TypeError):
        ru.relu(x, dtype=np.float64)     # would need an unsafe cast
