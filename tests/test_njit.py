"""relu_ufunc inside @numba.njit code (relu_ufunc/_numba_ext.py, loaded by
Numba through the numba_extensions entry point).

Every result is checked against the ufunc called from Python, bit for bit
(NaN payloads aside, as docs/contract.md says): every dtype Numba compiles, any layout,
broadcasting, scalars, out= (in place too), where=, cache=True in a new
process, fastmath=True.  The suite runs on both backends (CI runs it with
RELU_UFUNC_BACKEND=numba too).
"""
import hashlib
import importlib
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time
import unittest.mock

import numpy as np
import pytest

import relu_ufunc
import relu_ufunc as ru
from relu_ufunc import relu as relu_imported
from conftest import random_values

numba = pytest.importorskip("numba")
from numba import njit  # noqa: E402
from numba.core.errors import TypingError  # noqa: E402

from relu_ufunc import _numba_ext  # noqa: E402
from relu_ufunc import _numba_calls, _numba_impls  # noqa: E402

NAMES = tuple(relu_ufunc._spec.UFUNCS)
# The type characters Numba compiles, per ufunc: the table's but float16 and
# longdouble ('q' is int64 as 'l' is, on the platforms NumPy 2 supports).
NJIT_CHARS = {name: "".join(c for c in chars if c not in "eg")
              for name, (_, chars) in relu_ufunc._spec.UFUNCS.items()}


def exactly(got, expected):
    """Same type, shape and bits; NaN where NaN is expected (payloads aside,
    as docs/contract.md allows: two NaN operands of a multiply may give either one's).  A scalar result is
    compared in NumPy's type: Numba returns its float32 as a Python float (the
    type inside @njit code is checked by test_scalar_types_inside_njit)."""
    if np.ndim(expected) == 0 and not isinstance(got, np.ndarray):
        got = np.asarray(got, np.asarray(expected).dtype)
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if got.dtype.kind == "f":
        nan = np.isnan(expected)
        assert np.array_equal(np.isnan(got), nan), f"\n got      {got!r}\n expected {expected!r}"
        got, expected = got[~nan], expected[~nan]
        got, expected = got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}")
    assert np.array_equal(got, expected), f"\n got      {got!r}\n expected {expected!r}"


def scalar_exactly(got, expected):
    """A scalar result: the same bits in NumPy's dtype."""
    assert np.ndim(expected) == 0 and np.ndim(got) == 0
    exactly(got, expected)


# One jitted caller per ufunc and call form, made once: compiling is the
# slow part of this file, about half of each suite's time.  They are cached
# on disk (cache=True), so the README's second run, on the Numba backend,
# loads the machine code the first run compiled instead of compiling it
# again: that code is the same on both backends (it calls the loops and
# formulas by symbol name, and each backend registers its own under those
# names: relu_ufunc/_numba_calls.py), and it still runs here, against the
# Numba backend's loops.  Numba keys an entry on this file and the caller's
# closure (the ufunc), not on relu_ufunc's own code, so the folder is named
# after a hash of everything the compiled code depends on: a change to
# relu_ufunc, Numba, llvmlite, NumPy or Python compiles afresh.
def _numba_cache_dir():
    package = pathlib.Path(relu_ufunc.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in ("numba", "llvmlite", "numpy"):
        digest.update(importlib.metadata.version(dist).encode() + b"\0")
    digest.update(sys.version.encode())
    folder = pathlib.Path(__file__).parent / "__pycache__" / f"numba-{digest.hexdigest()[:16]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None                     # a read-only checkout: compile every time
    # Each change to relu_ufunc leaves a folder (some 7 MB) that no run will
    # read again; those untouched for a day go.  (Not younger ones: another
    # Python's run in this checkout may be using its own right now.)
    for old in folder.parent.glob("numba-*"):
        if old != folder and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    return str(folder)


NUMBA_CACHE_DIR = _numba_cache_dir()
_JITTED = {}


def jitted(name, form):
    key = (name, form)
    if key not in _JITTED:
        if NUMBA_CACHE_DIR is None:
            _JITTED[key] = njit(_caller(getattr(ru, name), form))
        else:
            # Numba picks an entry's folder when caching is enabled, from
            # config.CACHE_DIR; set only for these callers, so that the
            # subprocesses and the cache=True tests below see Numba's default.
            with unittest.mock.patch.object(numba.core.config, "CACHE_DIR", NUMBA_CACHE_DIR):
                _JITTED[key] = njit(cache=True)(_caller(getattr(ru, name), form))
    return _JITTED[key]


def _caller(uf, form):
    """A plain function calling uf in one of the forms (`three`: three calls
    in one function, one compilation per dtype)."""
    if uf.nin == 1:
        def call(a):
            return uf(a)

        def out(a, out):
            return uf(a, out=out)

        def where(a, out, w):
            return uf(a, out=out, where=w)

        def three(a, b, s):
            return uf(a), uf(b), uf(s)
    else:
        def call(a, b):
            return uf(a, b)

        def out(a, b, out):
            return uf(a, b, out=out)

        def where(a, b, out, w):
            return uf(a, b, out=out, where=w)

        def three(a1, a2, b1, b2, s1, s2):
            return uf(a1, a2), uf(b1, b2), uf(s1, s2)
    return {"call": call, "out": out, "where": where, "three": three}[form]


def inputs(name, dtype, rng, shape):
    """Arguments for ufunc `name`: edge values mixed in; the leaky pair's
    alpha ordinary numbers."""
    x = random_values(rng, dtype, int(np.prod(shape))).reshape(shape)
    if name in ("relu_backward", "add_relu"):
        return [random_values(rng, dtype, x.size).reshape(shape), x]
    if name.startswith("leaky"):
        return [x, rng.uniform(-0.5, 0.5, shape).astype(dtype)]
    return [x]


# ---- registration and laziness ----------------------------------------------

def test_entry_point_is_declared():
    eps = importlib.metadata.entry_points(group="numba_extensions", name="init")
    assert "relu_ufunc._numba_ext:init" in [ep.value for ep in eps]


def test_import_relu_ufunc_never_imports_numba():
    if relu_ufunc.backend == "numba":
        pytest.skip("the Numba backend imports Numba by design")
    env = {k: v for k, v in os.environ.items() if k != "RELU_UFUNC_BACKEND"}
    res = subprocess.run([sys.executable, "-c", "import sys, relu_ufunc\n"
                          "print(relu_ufunc.backend, 'numba' in sys.modules, "
                          "'relu_ufunc._numba_ext' in sys.modules, 'llvmlite' in sys.modules)"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["cython", "False", "False", "False"]


def test_fresh_process_jits_relu_through_the_entry_point_alone():
    """No explicit init: Numba loads the extension at its first compilation.
    On the Numba backend that happens during `import relu_ufunc` itself."""
    res = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import numpy as np, relu_ufunc
        from numba import njit
        @njit
        def f(x):
            return relu_ufunc.relu(x)
        print(f(np.array([-1.0, 2.0])).tolist(), f(-3.0))
        """)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[0] == "[0.0, 2.0] 0.0"
    assert "failed to load" not in res.stderr


def test_symbols_are_registered_all_or_none(monkeypatch):
    """A failure while the addresses are looked up registers nothing (cached
    code with half its symbols would crash), and init can run again."""
    added = []
    monkeypatch.setattr(_numba_ext._llvm, "add_symbol", lambda *a: added.append(a))
    monkeypatch.setattr(_numba_ext, "_done", False)
    real = _numba_ext.ufunc_loops
    seen = []

    def failing(uf):
        seen.append(uf.__name__)
        if len(seen) == 3:
            raise RuntimeError("lookup failed")
        return real(uf)
    monkeypatch.setattr(_numba_ext, "ufunc_loops", failing)
    with pytest.raises(RuntimeError, match="lookup failed"):
        _numba_ext.init()
    assert added == [] and not _numba_ext._done


def test_every_symbol_has_an_address():
    symbols = _numba_ext._symbols(relu_ufunc)
    formulas = _numba_ext.formulas()
    assert len(symbols) == 3 * len(formulas) + 1       # and the driver
    assert symbols[_numba_calls.DRIVE_SYMBOL] == _numba_impls._DRIVER[0].address
    assert all(symbols.values())
    # the loops are the ufunc's own
    for name, nin, suffix, char in formulas:
        function, _ = _numba_ext.ufunc_loops(getattr(ru, name))[char * nin + "->" + char]
        assert symbols[_numba_ext.loop_symbol(name, suffix)] == function


def test_ufunc_loops_match_python_attributes():
    for name in NAMES:
        uf = getattr(ru, name)
        loops = _numba_ext.ufunc_loops(uf)
        assert list(loops) == uf.types
        assert all(function for function, _ in loops.values())


def test_compiled_extension_exports_every_scalar_formula():
    ufuncs = pytest.importorskip("relu_ufunc._ufuncs")
    expected = {_numba_ext.scalar_symbol(n, s) for n, _, s, _ in _numba_ext.formulas()}
    assert set(ufuncs.__pyx_capi__) == expected


# ---- the ways to name the functions ------------------------------------------

@njit
def _by_module_attribute(x):
    return relu_ufunc.relu(x)


@njit
def _by_alias(x):
    return ru.relu(x)


@njit
def _by_name(x):
    return relu_imported(x)


def test_however_imported():
    x = np.array([-1.5, -0.0, 0.0, 2.5, np.nan, -np.inf, np.inf])
    for f in (_by_module_attribute, _by_alias, _by_name):
        exactly(f(x), ru.relu(x))


# ---- values: every dtype, bit for bit ---------------------------------------

# Each dtype is a Numba compile of its own (about 0.3 s a function); the
# default run keeps one integer type of each signedness and width class
# (int8, uint8, uint64) and every float, and CI's slow pass runs the rest.
_MIDDLE_INTEGERS = "hHiIlL"


@pytest.mark.parametrize("name,char", [
    pytest.param(n, c, marks=pytest.mark.slow if c in _MIDDLE_INTEGERS else ())
    for n in NAMES for c in NJIT_CHARS[n] if c != "q"])
def test_every_dtype_bit_for_bit(name, char):
    """Contiguous arrays (the C loop), strided 2-D views (the loop per run)
    and scalars (the one-value formula), against the ufunc from Python."""
    rng = np.random.default_rng(ord(char))
    uf = getattr(ru, name)
    flat = inputs(name, char, rng, (301,))
    grid = [a[::-2, ::3] for a in inputs(name, char, rng, (9, 13))]
    scalars = [a[a.size // 2] for a in flat]
    with np.errstate(all="ignore"):
        got = jitted(name, "three")(*_three_args(flat, grid, scalars))
        expected = (uf(*flat), uf(*grid), uf(*scalars))
    exactly(got[0], expected[0])
    exactly(got[1], expected[1])
    scalar_exactly(got[2], expected[2])


def _three_args(flat, grid, scalars):
    if len(flat) == 1:
        return flat[0], grid[0], scalars[0]
    return flat[0], flat[1], grid[0], grid[1], scalars[0], scalars[1]


def test_every_special_value_every_function_float32_and_float64():
    """The value table of docs/contract.md, every pair of special values."""
    for dtype in ("float32", "float64"):
        special = relu_ufunc._reference.special_values(dtype)
        a, b = np.meshgrid(special, special)
        for name in NAMES:
            uf = getattr(ru, name)
            args = [a.ravel()] if uf.nin == 1 else [b.ravel(), a.ravel()]
            with np.errstate(all="ignore"):
                exactly(jitted(name, "call")(*args), uf(*args))


# ---- layouts and broadcasting -----------------------------------------------

def _layouts(rng, dtype):
    base = random_values(rng, dtype, 4 * 5 * 6).reshape(4, 5, 6)
    return {
        "C 3-d": base,
        "F 2-d": np.asfortranarray(base[0]),
        "transposed 3-d": base.transpose(2, 0, 1),
        "negative strides": base[::-1, :, ::-2],
        "strided 1-d": base.ravel()[::7],
        "reversed 1-d": base.ravel()[::-1],
        "0-d": np.array(base[1, 2, 3]),
        "empty": base[:, :0],
        "one element": base[:1, :1, :1],
    }


@pytest.mark.parametrize("dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow),
                                   pytest.param("int16", marks=pytest.mark.slow)])
def test_layouts_unary(dtype):
    rng = np.random.default_rng(3)
    for label, x in _layouts(rng, dtype).items():
        for name in ("relu", "relu_grad"):
            exactly(jitted(name, "call")(x), getattr(ru, name)(x))


def test_fortran_input_gives_fortran_output_in_one_call():
    x = np.asfortranarray(np.random.default_rng(4).standard_normal((30, 20)))
    y = jitted("relu", "call")(x)
    assert y.flags.f_contiguous
    exactly(y, ru.relu(x))


def test_broadcasting_binary():
    rng = np.random.default_rng(5)
    x = random_values(rng, "float64", 4 * 5).reshape(4, 5)
    col = rng.uniform(-1, 1, (4, 1))                    # PReLU: one alpha per row
    row = rng.uniform(-1, 1, 5)
    cases = [(x, col), (col, x), (x, row), (row, x), (x[:, :1], row), (x, x[::-1]),
             (x.T, col.T), (x[None], x[:, None]), (np.array(0.25), x)]
    for name in ("relu_backward", "leaky_relu"):
        uf = getattr(ru, name)
        for a, b in cases:
            with np.errstate(all="ignore"):
                exactly(jitted(name, "call")(a, b), uf(a, b))


def test_one_loop_call_for_any_single_run():
    """The driver gives an operand to one loop call when its elements are
    one evenly strided run in C or Fortran order (or one value, broadcast),
    and cuts it into runs otherwise."""
    run = _numba_impls.run_of
    a = np.empty((4, 5, 6))
    assert run(a.shape, a.strides, False) == (True, 8)
    f = np.asfortranarray(a)
    assert run(f.shape, f.strides, True) == (True, 8)
    assert run(f.shape, f.strides, False)[0] is False
    assert run(a.shape, a[::-1, ::-1, ::-1].strides, False) == (True, -8)
    assert run((4, 5, 6), (0, 0, 0), False) == (True, 0)
    assert run(a[:, :, ::2].shape, a[:, :, ::2].strides, False) == (True, 16)
    assert run(a[:, ::2].shape, a[:, ::2].strides, False)[0] is False
    assert run((4, 1, 6), (48, 999, 8), False) == (True, 8)   # a length-1 axis's stride is moot


def test_large_new_output_is_madvised_as_numpy_does_and_right():
    """A new output of 4 MiB or more gets NumPy's MADV_HUGEPAGE (where NumPy
    does it), so its first touch costs what it costs from Python."""
    x = np.random.default_rng(7).standard_normal(600_000)
    exactly(jitted("relu", "call")(x), ru.relu(x))
    exactly(jitted("leaky_relu", "call")(x, 0.5), ru.leaky_relu(x, 0.5))
    impl = _numba_ext._resolve("relu", (numba.typeof(x),), None, True)
    assert impl.kind == "contiguous"
    assert impl.facts["hugepage"] == _numba_ext._numpy_uses_hugepages()
    if sys.platform.startswith("linux") and np.__version__ >= "2":
        assert _numba_ext._numpy_uses_hugepages() == np._core.multiarray._get_madvise_hugepage()


def test_each_call_form_gets_its_prewritten_implementation():
    """_numba_impls: which implementation typing picks (and so which path
    the call runs), with no source generated."""
    def kind(name, *args, out=None, where=True):
        ins = tuple(numba.typeof(a) for a in args)
        typed_out = None if out is None else numba.typeof(out)
        typed_where = where if where is True else numba.typeof(where)
        return _numba_ext._resolve(name, ins, typed_out, typed_where).kind
    x, y = np.ones((3, 4)), np.empty((3, 4))
    assert kind("relu", 1.5) == kind("relu", np.array(1.5)) == "scalars"
    assert kind("relu", x) == kind("leaky_relu", x, 0.1) == kind("relu", x.T) == "contiguous"
    assert kind("relu", x, out=y) == kind("relu", x[::2], out=y[::2]) == "strided"
    assert kind("relu_backward", x, x[0]) == kind("relu", x[:, ::2]) == "strided"
    assert kind("relu", x, out=y.astype(np.float32)) == "elementwise"
    assert kind("relu", x.astype(np.float32), out=y) == "elementwise"
    assert kind("relu", x, out=y, where=x > 0) == "elementwise"
    assert kind("relu", x, out=y[0]) == "too_few_dims"
    assert not hasattr(_numba_ext, "_make_impl") and "exec(" not in open(
        _numba_ext.__file__).read() + open(_numba_impls.__file__).read()


def test_broadcast_mismatch_raises_valueerror():
    with pytest.raises(ValueError, match="broadcast"):
        jitted("relu_backward", "call")(np.ones(3), np.ones(4))


def test_scalar_alpha_keeps_float32_as_numpy_2_does():
    """NEP 50: a Python float does not upcast float32 data (Numba's own
    casting would give float64)."""
    x = np.array([-2.0, -0.0, 1.5, np.nan], np.float32)
    for name in ("leaky_relu", "leaky_relu_grad", "relu_backward"):
        got = jitted(name, "call")(x, 0.1)
        exactly(got, getattr(ru, name)(x, 0.1))
        assert got.dtype == np.float32


# ---- dtype resolution as NumPy's --------------------------------------------

@pytest.mark.parametrize("a,b", [
    (np.array([-3, 0, 5], np.int8), np.array([0, 1, 2], np.uint8)),      # int16
    (np.array([-3.0, 0.0, 5.0], np.float32), np.array([1.0, -1.0, 2.0])),  # float64
    (np.array([-3, 0, 5], np.int32), np.array([1, 1, 1], np.int64)),
    (np.array([True, False, True]), np.array([-1, 0, 1], np.int8)),
    (np.array([-3, 0, 5], np.int64), 2),                                   # int64
    (np.array([-3, 0, 5], np.int8), 2),                                    # NEP 50: int8
    (np.array([-3.0, 0.5, 5.0], np.float32), 2),
])
def test_mixed_dtypes_resolve_as_numpy(a, b):
    for name in ("relu_backward", "leaky_relu"):
        uf = getattr(ru, name)
        try:
            expected = uf(a, b)
        except TypeError:
            continue
        if expected.dtype == np.float16:
            with pytest.raises(TypingError, match="float16"):
                jitted(name, "call")(a, b)
            continue
        exactly(jitted(name, "call")(a, b), expected)
        exactly(jitted(name, "call")(b, a), uf(b, a))


def test_bool_input_takes_int8_loop_as_numpy():
    x = np.array([True, False])
    exactly(jitted("relu", "call")(x), ru.relu(x))


@pytest.mark.parametrize("args", [(-2.5,), (3,), (-3,), (np.float32(-1.5),), (np.int8(-7),),
                                  (-0.0,), (np.uint16(9),)])
def test_scalar_in_scalar_out(args):
    for name in ("relu", "relu_grad"):
        scalar_exactly(jitted(name, "call")(*args), getattr(ru, name)(*args))


@njit
def _scalar_types(x32, i8, f):
    # each result in a 1-element array, whose dtype shows the scalar's type
    return (np.array([ru.relu(x32)]), np.array([ru.leaky_relu(x32, 0.1)]),
            np.array([ru.relu_backward(i8, 3)]), np.array([ru.relu(f)]),
            np.array([ru.relu_grad(i8)]), np.array([ru.leaky_relu(i8, f)]))


def test_scalar_types_inside_njit():
    got = _scalar_types(np.float32(-1.5), np.int8(-3), -2.0)
    expected = (ru.relu(np.float32(-1.5)), ru.leaky_relu(np.float32(-1.5), 0.1),
                ru.relu_backward(np.int8(-3), 3), ru.relu(-2.0), ru.relu_grad(np.int8(-3)),
                ru.leaky_relu(np.int8(-3), -2.0))
    for g, e in zip(got, expected):
        exactly(g, np.array([e]))


@pytest.mark.parametrize("args", [(-0.0, 0.1), (np.float32(-2), 0.1), (-2, 0.5),
                                  (np.float32(-2), np.float32(0.5)), (float("nan"), 0.1)])
def test_binary_scalars(args):
    for name in ("leaky_relu", "leaky_relu_grad", "relu_backward"):
        uf = getattr(ru, name)
        scalar_exactly(jitted(name, "call")(*args), uf(*args))


# ---- out= and where= ----------------------------------------------------------

X = np.array([-2.0, -0.0, 0.0, 0.5, 3.0, np.nan, -np.inf, np.inf])


def test_out_returns_out_and_matches():
    out = np.full_like(X, 7.0)
    res = jitted("relu", "out")(X, out)
    assert res is out or np.shares_memory(res, out)
    exactly(out, ru.relu(X))


@njit
def _out_tuple(x, out):
    return ru.relu_grad(x, out=(out,))


@njit
def _out_positional(x, out):
    return ru.relu(x, out)


def test_out_as_tuple_and_positional():
    out = np.empty_like(X)
    _out_tuple(X, out)
    exactly(out, ru.relu_grad(X))
    out = np.empty_like(X)
    _out_positional(X, out)
    exactly(out, ru.relu(X))


@njit
def _in_place(x):
    ru.relu(x, out=x)


@njit
def _backward_in_place(dy, x, which):
    if which == 0:
        ru.relu_backward(dy, x, out=dy)
    else:
        ru.relu_backward(dy, x, out=x)


def test_in_place():
    x = X.copy()
    _in_place(x)
    exactly(x, ru.relu(X))
    x2 = np.random.default_rng(1).standard_normal((6, 7))[:, ::2]       # a strided view
    expected = ru.relu(x2)
    _in_place(x2)
    exactly(x2, expected)
    dy = np.arange(8.0) - 4
    for which in (0, 1):
        args = [dy.copy(), X.copy()]
        expected = ru.relu_backward(*args)
        _backward_in_place(args[0], args[1], which)
        exactly(args[which], expected)


@njit
def _shifted(x):
    ru.relu_backward(x[:-1], x[1:], out=x[1:])


@njit
def _shifted_unary(x):
    ru.relu(x[:-1], out=x[1:])


def test_overlapping_out_reads_inputs_as_they_were():
    x = np.random.default_rng(2).standard_normal(50)
    expected = x.copy()
    ru.relu_backward(expected[:-1], expected[1:], out=expected[1:])
    got = x.copy()
    _shifted(got)
    exactly(got, expected)
    expected, got = x.copy(), x.copy()
    ru.relu(expected[:-1], out=expected[1:])
    _shifted_unary(got)
    exactly(got, expected)


@njit
def _reversed_into_itself(x, m):
    ru.relu(x[::-1], out=x)
    ru.relu_backward(m.T, m, out=m)


def test_strided_overlap_reads_inputs_as_they_were():
    """The driver's copy of an input that overlaps out= unevenly (reversed,
    transposed): the loop and the element-by-element path."""
    rng = np.random.default_rng(12)
    x, m = rng.standard_normal(41), rng.standard_normal((7, 7))
    ex, em = x.copy(), m.copy()
    ru.relu(ex[::-1], out=ex)
    ru.relu_backward(em.T, em, out=em)
    _reversed_into_itself(x, m)
    exactly(x, ex)
    exactly(m, em)
    w = np.zeros(24, np.uint8)[1:17].view(np.float64)       # unaligned: element by element
    w[:] = rng.standard_normal(2)
    expected = w.copy()
    ru.relu(expected[::-1].copy(), out=expected)
    jitted("relu", "out")(w[::-1], w)
    exactly(w, expected)


def test_out_of_another_dtype_is_cast_as_numpy_casts():
    x32 = np.array([-2.0, 1.5, np.nan, -0.0], np.float32)
    out64 = np.empty(4)
    jitted("relu", "out")(x32, out64)
    exactly(out64, ru.relu(x32, out=np.empty(4)))
    i8 = np.array([-3, 4, 0, 127], np.int8)
    out32 = np.empty(4, np.int32)
    jitted("relu", "out")(i8, out32)
    exactly(out32, ru.relu(i8, out=np.empty(4, np.int32)))
    out16 = np.empty(4, np.float32)                 # float64 -> float32: same kind
    jitted("relu_backward", "out")(X[:4], X[4:], out16)
    exactly(out16, ru.relu_backward(X[:4], X[4:], out=np.empty(4, np.float32)))


def test_out_cast_not_allowed_is_a_typing_error():
    with pytest.raises(TypingError, match="same_kind"):
        jitted("relu", "out")(X, np.empty(X.shape, np.int64))


def test_out_wrong_shape_raises_and_leaves_out_alone():
    out = np.full(3, 7.0)
    with pytest.raises(ValueError):
        jitted("relu", "out")(X, out)
    assert (out == 7.0).all()


def test_where_leaves_other_entries_alone():
    rng = np.random.default_rng(6)
    mask = rng.random((5, 8)) < 0.5
    for dtype, names in (("float64", NAMES), ("float32", ["leaky_relu"]),
                         ("int32", ["relu_backward"])):
        for name in names:
            uf = getattr(ru, name)
            args = inputs(name, dtype, rng, (5, 8))
            expected = np.full((5, 8), 7, dtype)
            got = expected.copy()
            with np.errstate(all="ignore"):
                uf(*args, out=expected, where=mask)
                jitted(name, "where")(*args, got, mask)
            exactly(got, expected)


def test_where_broadcasts_and_where_scalar():
    mask = np.array([True, False, True, False, True, False, True, False])
    row = np.tile(X, (3, 1))
    expected = np.full_like(row, 7.0)
    got = expected.copy()
    ru.relu(row, out=expected, where=mask)
    jitted("relu", "where")(row, got, mask)
    exactly(got, expected)
    for flag in (True, False):
        got = np.full_like(X, 7.0)
        jitted("relu", "where")(X, got, flag)
        exactly(got, ru.relu(X, out=np.full_like(X, 7.0), where=flag))


def test_where_with_casting():
    i8 = np.array([-3, 4, 0, 127], np.int8)
    u8 = np.array([1, 2, 3, 4], np.uint8)
    mask = np.array([True, True, False, True])
    expected = np.full(4, 9, np.int16)
    got = expected.copy()
    ru.relu_backward(u8, i8, out=expected, where=mask)
    jitted("relu_backward", "where")(u8, i8, got, mask)
    exactly(got, expected)


def test_unaligned_arrays():
    raw = np.zeros(8 * 9 + 1, np.uint8)
    x = raw[1:].view(np.float64)
    x[:] = X.tolist() + [1.0]
    assert not x.flags.aligned
    exactly(jitted("relu", "call")(x), ru.relu(x))
    out = np.zeros(8 * 9 + 1, np.uint8)[1:].view(np.float64)
    jitted("relu_backward", "out")(x, x[::-1], out)
    exactly(out, ru.relu_backward(x, x[::-1]))


# ---- fastmath, and the C loop --------------------------------------------------

@njit(fastmath=True)
def _fast(x, alpha):
    return (ru.relu(x), ru.relu_grad(x), ru.relu_backward(x, x), ru.leaky_relu(x, alpha),
            ru.leaky_relu_grad(x, alpha), ru.relu(x[1]), ru.relu(x[2]), ru.relu_grad(x[2]))


def test_fastmath_changes_no_value():
    x = np.array([1.0, -0.0, np.nan, -np.nan, -np.inf, np.inf, -2.0, 3.0])
    got = _fast(x, 0.25)
    expected = (ru.relu(x), ru.relu_grad(x), ru.relu_backward(x, x), ru.leaky_relu(x, 0.25),
                ru.leaky_relu_grad(x, 0.25))
    for g, e in zip(got[:5], expected):
        exactly(g, e)
    assert np.isnan(got[0][2]) and np.isnan(got[0][3])
    assert got[0][1] == 0 and not np.signbit(got[0][1])       # -0.0 gives +0.0
    assert got[5] == 0 and not np.signbit(got[5])
    assert np.isnan(got[6]) and np.isnan(got[7])


@njit
def _for_ir(x):
    return ru.relu(x)


def test_contiguous_arrays_call_the_ufunc_loop_and_scalars_the_formula():
    """Not Numba's array-expression rewrite (a fused loop calling the
    function once per element): the compiled code calls the loop's symbol."""
    _for_ir(np.ones(3))
    _for_ir(1.5)
    ir = {tuple(sig): _for_ir.inspect_llvm(sig) for sig in _for_ir.signatures}
    array_ir = next(v for k, v in ir.items() if isinstance(k[0], numba.types.Array))
    scalar_ir = next(v for k, v in ir.items() if k[0] == numba.types.float64)
    assert "relu_ufunc_relu_f64_loop" in array_ir
    assert "@relu_ufunc_relu_f64(" not in array_ir
    assert "@relu_ufunc_relu_f64(" in scalar_ir


# ---- typing errors --------------------------------------------------------------

def test_float16_is_a_typing_error_naming_it():
    for args in ([np.ones(3, np.float16)], [np.float16(1)]):
        with pytest.raises(TypingError, match="float16"):
            jitted("relu", "call")(*args)
    with pytest.raises(TypingError, match="float16"):      # two int8 resolve to float16
        jitted("leaky_relu", "call")(np.ones(3, np.int8), np.ones(3, np.int8))


def test_longdouble_is_numbas_typing_error_naming_it():
    with pytest.raises(TypingError, match="float128|longdouble"):
        jitted("relu", "call")(np.ones(3, np.longdouble))


def test_complex_is_numpys_no_loop_error():
    with pytest.raises(TypingError, match="relu_ufunc.relu.*(loop|not supported)"):
        jitted("relu", "call")(np.ones(3, np.complex128))


# ---- cache=True in a new process ------------------------------------------------

CACHED_MODULE = """
import numpy as np
import relu_ufunc as ru
from numba import njit


@njit(cache=True, fastmath=True)
def layer(x, alpha):
    h = ru.leaky_relu(x, alpha)
    ru.relu(h, out=h)
    g = ru.relu_backward(np.ones_like(x), h)
    return h, g, ru.relu(-1.5) + ru.relu_grad(2.0), ru.relu(x[:, ::2])
"""

CACHED_RUN = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import cached
x = np.array([[-1.0, 2.0, -0.0, np.nan], [3.0, -4.0, np.inf, -np.inf]])
h, g, s, v = cached.layer(x, 0.1)
stats = cached.layer.stats
print(repr((h.tolist(), g.tolist(), s, v.tolist())))
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


@pytest.mark.slow
def test_cache_true_hits_in_fresh_processes_on_either_backend(tmp_path):
    """Compiled once; a fresh process loads it from the cache without
    compiling, on the same backend and on the other one (the symbols have
    the same names and meaning on both)."""
    (tmp_path / "cached.py").write_text(CACHED_MODULE)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = relu_ufunc.backend
    backends = [first, first]
    try:
        importlib.import_module("relu_ufunc._ufuncs")
        backends.append({"cython": "numba", "numba": "cython"}[first])
    except ImportError:
        pass

    def run(backend):
        res = subprocess.run([sys.executable, "-c", CACHED_RUN, str(tmp_path)],
                             capture_output=True, text=True,
                             env=dict(env, RELU_UFUNC_BACKEND=backend))
        assert res.returncode == 0, res.stderr
        values, counts = res.stdout.strip().split("\n")
        return values, tuple(counts.split())

    runs = [run(b) for b in backends]
    assert [counts for _, counts in runs] == [("0", "1")] + [("1", "0")] * (len(runs) - 1)
    x = np.array([[-1.0, 2.0, -0.0, np.nan], [3.0, -4.0, np.inf, -np.inf]])
    h = ru.relu(ru.leaky_relu(x, 0.1))
    expected = (h.tolist(), ru.relu_backward(np.ones_like(x), h).tolist(),
                float(ru.relu(-1.5) + ru.relu_grad(2.0)), ru.relu(x[:, ::2]).tolist())
    assert all(values == repr(expected) for values, _ in runs)


# ---- the Numba twins (no compiled extension) --------------------------------

def test_numba_twins_give_the_loops_values():
    """Where the extension is missing, the one-value formulas are @cfunc twins
    of the Numba backend's own; on every pair of special values each gives
    what the ufunc gives.  (CI's no-compiler run calls them from @njit.)"""
    from numba import cfunc
    from numba.np import numpy_support
    try:
        from relu_ufunc import _numba_loops
    except ImportError:
        pytest.skip("relu_ufunc._numba_loops is generated by setup.py")
    for name, nin, suffix, char in _numba_ext.formulas():
        t = numpy_support.from_dtype(np.dtype(char))
        twin = cfunc(t(*[t] * nin), nopython=True, cache=True)(_numba_loops.TWINS[(name, char)])
        vals = relu_ufunc._reference.special_values(char)
        a, b = np.meshgrid(vals, vals)
        args = [a.ravel()] if nin == 1 else [b.ravel(), a.ravel()]
        with np.errstate(all="ignore"):
            expected = getattr(ru, name)(*args)
        got = np.array([twin.ctypes(*[v.item() for v in vs]) for vs in zip(*args)], char)
        exactly(got, expected)
