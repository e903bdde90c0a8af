import importlib
import os
import pathlib
import sys

import numpy as np
import pytest
from hypothesis import settings

# The property tests' examples per test.  CI's ARM64 cell runs under qemu,
# some 30 times slower than natively, and passes --hypothesis-profile=emulated:
# there test_methods' 40 examples per test took 470 of the cell's 500 s of
# tests.  The value tables and the exhaustive ml_dtypes tests run whole
# there; only the number of random draws shrinks.
settings.register_profile("relu", max_examples=40)
settings.register_profile("emulated", max_examples=10)
settings.load_profile("relu")

import relu_ufunc
from relu_ufunc import _reference

from relu_ufunc._spec import UFUNCS

# The markers live here, not in pyproject.toml, so that the tests keep them
# when they run without the repository's configuration: copied elsewhere, or
# from an installed sdist.  (--strict-markers then still knows them.)
MARKERS = [
    "slow: heavy, and not in the default run (pyproject.toml deselects it): several GiB "
    "of memory (skipped where that is not free), subprocess matrices, Numba caches in "
    "fresh processes, nvcc, mypy, the benchmark suite; CI runs them: python -m pytest -m slow",
]


def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)


# Where the test extras are installed (CI's README run sets this), a test
# that skips because a module is missing is a failure: it would otherwise
# report a check as done that never ran.  test_install.py skipped so in every
# CI run until Cython joined the test extras.  The GPU's packages are not test
# extras (CI has no GPU), so their tests still skip.
EXTRAS_REQUIRED = os.environ.get("RELU_UFUNC_TEST_EXTRAS") == "required"
NOT_TEST_EXTRAS = ("cupy", "torch")


def _fail_if_an_extra_is_missing(report):
    """Turn `report`, a skip for a module that is not there, into a failure."""
    if EXTRAS_REQUIRED and report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2].removeprefix("Skipped: ")
        module = reason.partition("could not import '")[2].partition("'")[0]
        if module and module.split(".")[0] not in NOT_TEST_EXTRAS:
            report.outcome = "failed"
            report.longrepr = (f"RELU_UFUNC_TEST_EXTRAS=required, but {reason} "
                               f"(pip install '.[test]' installs it)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_if_an_extra_is_missing(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_if_an_extra_is_missing(outcome.get_result())      # a module-level importorskip


# The source tree these tests sit in, if they sit in one (a git checkout or an
# unpacked sdist: both have setup.py and the package beside tests/).
SOURCE_ROOT = pathlib.Path(__file__).resolve().parents[1]
IN_SOURCE_TREE = ((SOURCE_ROOT / "setup.py").is_file()
                  and (SOURCE_ROOT / "relu_ufunc" / "_spec.py").is_file())


def source_file(relpath):
    """The path of `relpath` (examples/mlp.py, README.md) in the source tree.
    Tests run outside one (tests/ copied or installed alone) skip, and say
    so; inside one, a missing file is a failure, never a skip."""
    if not IN_SOURCE_TREE:
        pytest.skip(f"{relpath} is part of the source tree; these tests run outside one "
                    f"({SOURCE_ROOT} has no setup.py and relu_ufunc/ beside tests/)",
                    allow_module_level=True)
    path = SOURCE_ROOT / relpath
    assert path.is_file(), f"{path} is missing from the source tree"
    return path


def source_module(name):
    """Import `name` (benchmarks.run, benchmarks.gpu), which is not installed,
    from the source tree, whatever the working directory; as source_file,
    outside a source tree the test (or a test module) skips."""
    source_file(name.replace(".", "/") + ".py")
    if str(SOURCE_ROOT) not in sys.path:
        sys.path.insert(0, str(SOURCE_ROOT))
    return importlib.import_module(name)

UFUNC_NAMES = tuple(UFUNCS)
# The type characters this backend has loops for (Numba has no longdouble).
_HAVE = "".join(t[0] for t in relu_ufunc.relu.types)
FLOAT_CHARS = "".join(c for c in "efdg" if c in _HAVE)
INT_CHARS = "".join(c for c in "bBhHiIlLqQ" if c in _HAVE)


def loops():
    """Every (ufunc name, type character) pair the backend has a loop for."""
    return [(name, t[0]) for name in UFUNC_NAMES for t in getattr(relu_ufunc, name).types]


def assert_same_bits(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert _reference.same_bits(got, expected), f"\n got      {got!r}\n expected {expected!r}"


def random_values(rng, dtype, n):
    """randn-like data (half negative) with the dtype's edge values mixed in."""
    dtype = np.dtype(dtype)
    if dtype.kind == "V":          # an ml_dtypes format: any bit pattern
        return rng.integers(0, 256 ** dtype.itemsize, n).astype(f"u{dtype.itemsize}").view(dtype)
    raw = rng.standard_normal(n) * 50
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        raw = np.clip(raw, info.min, info.max)
    x = raw.astype(dtype)
    special = _reference.special_values(dtype)
    k = min(n, special.size)
    if k:
        x[rng.choice(n, k, replace=False)] = rng.choice(special, k)
    return x


def call_args(name, x, rng):
    """Inputs for ufunc `name` built around x: (x,), (dy, x) or (x, alpha)."""
    uf = getattr(relu_ufunc, name)
    if uf.nin == 1:
        return (x,)
    other = random_values(rng, x.dtype, x.size).reshape(x.shape) if x.size else x.copy()
    return (other, x) if name == "relu_backward" else (x, other)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=UFUNC_NAMES)
def name(request):
    return request.param
