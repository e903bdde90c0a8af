"""The two CPU backends: bit-identical values, and how one is chosen."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc
from relu_ufunc import _reference
from conftest import UFUNC_NAMES, random_values

BLOCK_EXTENSION = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "relu_ufunc._ufuncs":
            raise ImportError("blocked by the test")
sys.meta_path.insert(0, Block())
"""


def run(code, backend=None):
    env = {k: v for k, v in os.environ.items() if k != "RELU_UFUNC_BACKEND"}
    if backend is not None:
        env["RELU_UFUNC_BACKEND"] = backend
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env)


@pytest.fixture(scope="module")
def both():
    cython = pytest.importorskip("relu_ufunc._ufuncs")
    pytest.importorskip("numba")
    from relu_ufunc import _numba_backend
    return cython, _numba_backend


@pytest.mark.parametrize("name", UFUNC_NAMES)
def test_backends_bit_identical(both, name):
    cython, numba_backend = both
    fc, fn = getattr(cython, name), getattr(numba_backend, name)
    shared = sorted({t[0] for t in fc.types} & {t[0] for t in fn.types})
    from relu_ufunc._spec import UFUNCS
    assert set(shared) == set(UFUNCS[name][1]) - {"g"}
    rng = np.random.default_rng(7)
    for char in shared:
        x = random_values(rng, char, 2003)
        for args in ([x] * fc.nin, [x[::-1].copy(), x][:fc.nin] if fc.nin == 2 else [x],
                     [a[::3] for a in [x] * fc.nin]):
            with np.errstate(all="ignore"):      # alpha * x may overflow
                a, b = fc(*args), fn(*args)
            assert a.dtype == b.dtype
            assert _reference.same_bits(a, b), (name, char)
            if a.dtype.kind == "f":     # identical bits, NaN payloads aside
                nan = np.isnan(a)
                assert np.array_equal(a[~nan].view(f"u{a.itemsize}"),
                                      b[~nan].view(f"u{b.itemsize}"))


def test_numba_backend_is_true_ufuncs_without_longdouble(both):
    _, nb = both
    for name in UFUNC_NAMES:
        uf = getattr(nb, name)
        assert isinstance(uf, np.ufunc) and uf.__name__ == name
        assert not any("g" in t for t in uf.types)
        with pytest.raises(TypeError):
            uf(*[np.ones(3, np.longdouble)] * uf.nin)
    out = np.full(4, 9.0)
    nb.relu(np.array([-1.0, 2.0, -3.0, 4.0]), out=out, where=[True, False, True, False])
    assert list(out) == [0.0, 9.0, 0.0, 9.0]


# What importing the extension raises where it was never built.
NOT_BUILT = BLOCK_EXTENSION.replace(
    'raise ImportError("blocked by the test")',
    'raise ModuleNotFoundError("No module named %r" % name, name=name)')

FALL_BACK = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import relu_ufunc
msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print(relu_ufunc.backend, len(msgs))
print(msgs[0])
import numpy as np
print(relu_ufunc.relu(np.array([-1.0, 2.0])).tolist())
"""


def test_extension_not_built_falls_back_to_numba_with_one_warning_that_says_so():
    pytest.importorskip("numba")
    res = run(NOT_BUILT + FALL_BACK)
    assert res.returncode == 0, res.stderr
    backend, message, values = res.stdout.split("\n")[:3]
    assert backend == "numba 1" and values == "[0.0, 2.0]"
    assert "extension is missing" in message and "was not built" in message
    assert "C compiler" in message and "reinstall relu_ufunc" in message
    assert "circular" not in message and "partially initialized" not in message


def test_extension_that_fails_to_import_falls_back_with_the_reason():
    pytest.importorskip("numba")
    res = run(BLOCK_EXTENSION + FALL_BACK)
    assert res.returncode == 0, res.stderr
    backend, message, values = res.stdout.split("\n")[:3]
    assert backend == "numba 1" and values == "[0.0, 2.0]"
    assert "cannot be imported (blocked by the test)" in message
    assert "not built" not in message


def test_package_without_extension_or_numba_says_not_built_and_what_to_install(tmp_path):
    """A copy of the package without the compiled file, as pip installs it
    where no C compiler is: the error says the extension was not built (not
    a circular import) and names both ways out."""
    src = pathlib.Path(relu_ufunc.__file__).parent
    shutil.copytree(src, tmp_path / "relu_ufunc",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # -S: no .pth files, so an editable install's finder cannot supply the
    # extension from the checkout; NumPy comes from PYTHONPATH instead.
    env = {k: v for k, v in os.environ.items() if k != "RELU_UFUNC_BACKEND"}
    env["PYTHONPATH"] = str(pathlib.Path(np.__file__).parents[1])
    res = subprocess.run([sys.executable, "-S", "-c", "import sys; sys.modules['numba'] = None\n"
                          "import relu_ufunc"], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: relu_ufunc cannot load"), res.stderr
    assert "was not built" in last and "C compiler" in last
    assert "relu-ufunc[numba]" in last
    assert "partially initialized" not in last


def test_forced_cython_without_extension_is_importerror():
    res = run(BLOCK_EXTENSION + "import relu_ufunc", backend="cython")
    assert res.returncode != 0
    assert "ImportError: RELU_UFUNC_BACKEND=cython" in res.stderr
    assert "blocked by the test" in res.stderr


def test_forced_numba_without_numba_is_importerror():
    res = run("import sys; sys.modules['numba'] = None\nimport relu_ufunc", backend="numba")
    assert res.returncode != 0
    assert "RELU_UFUNC_BACKEND=numba" in res.stderr and "relu-ufunc[numba]" in res.stderr


def test_neither_backend_says_what_to_install():
    res = run(BLOCK_EXTENSION + "sys.modules['numba'] = None\nimport relu_ufunc")
    assert res.returncode != 0
    assert "install a C compiler" in res.stderr and "Numba" in res.stderr


@pytest.mark.parametrize("value", ["bogus", "Cython", "numba "])
def test_invalid_backend_names_the_valid_ones(value):
    res = run("import relu_ufunc", backend=value)
    assert res.returncode != 0
    assert "'cython', 'numba'" in res.stderr


def test_forced_backends_are_used():
    pytest.importorskip("numba")
    forced = ["numba"] + (["cython"] if _has_extension() else [])
    for backend in forced:
        res = run("import relu_ufunc; print(relu_ufunc.backend)", backend=backend)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == backend


def _has_extension():
    try:
        import relu_ufunc._ufuncs  # noqa: F401
    except ImportError:
        return False
    return True
