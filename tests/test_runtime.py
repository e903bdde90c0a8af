"""GIL release, reference leaks, import hygiene, docstrings, the main job."""
import doctest
import gc
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._spec import UFUNCS
from relu_ufunc._docs import DOCS


def run_python(code, **env):
    import os
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("name", ["relu", "relu_backward"])
def test_gil_is_released_during_the_loop(name):
    """While one long call runs, another Python thread keeps running.

    With the GIL held for the whole call the counter could not move while
    the call is in progress; with it released it moves a lot."""
    uf = getattr(ru, name)
    x = np.random.default_rng(0).standard_normal(30_000_000)
    out = np.empty_like(x)
    args = (x,) * uf.nin
    uf(*args, out=out)                               # fault the pages in first
    counter = [0]
    started, stop = threading.Event(), threading.Event()

    def spin():
        started.set()
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    started.wait()
    try:
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)
        before = counter[0]
        uf(*args, out=out)
        during = counter[0] - before
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()
    assert during > 1000, during


def test_no_reference_or_memory_leak():
    x = np.linspace(-1, 1, 64)
    dy = np.ones(64)
    out = np.empty_like(x)
    calls = [lambda: ru.relu(x, out=out), lambda: ru.relu(x), lambda: ru.relu_grad(x),
             lambda: ru.relu_backward(dy, x, out=out), lambda: ru.relu(-1.0)]
    for f in calls:
        f()
    refs = [sys.getrefcount(a) for a in (x, dy, out)]
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(20_000):
        for f in calls:
            f()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert [sys.getrefcount(a) for a in (x, dy, out)] == refs
    assert grown < 64 * 1024, grown          # 1e5 calls; a leak would be MBs


def test_import_is_light():
    """On the Cython backend, `import relu_ufunc` imports neither Numba nor CuPy."""
    if ru.backend != "cython":
        pytest.skip("the Numba backend imports Numba by design")
    out = run_python("import sys, relu_ufunc\n"
                     "print(relu_ufunc.backend, 'numba' in sys.modules, 'cupy' in sys.modules)")
    assert out.split() == ["cython", "False", "False"]


@pytest.mark.parametrize("name", sorted(DOCS))
def test_docstrings(name):
    uf = getattr(ru, name)
    doc = uf.__doc__
    assert doc.startswith(name + "(")                 # NumPy's signature line
    assert DOCS[name] in doc
    for part in ("Dtypes", "float16", "Examples", ">>>"):
        assert part in doc


@pytest.mark.parametrize("name", sorted(DOCS))
def test_docstring_examples_run(name):
    test = doctest.DocTestParser().get_doctest(DOCS[name], {}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def test_main_job():
    out = run_python("import runpy; runpy.run_module('relu_ufunc', run_name='__main__')")
    assert f"backend: {ru.backend}" in out
    assert out.count("ok:") == len(UFUNCS)
    assert "np.maximum" in out and "ratio" in out


@pytest.mark.slow
def test_type_stubs_show_ufuncs(tmp_path):
    """py.typed and __init__.pyi make editors and mypy see numpy.ufunc objects."""
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "use.py"
    src.write_text("import relu_ufunc\n"
                   "reveal_type(relu_ufunc.relu)\n"
                   "reveal_type(relu_ufunc.relu_backward)\n"
                   "reveal_type(relu_ufunc.backend)\n")
    stdout, stderr, status = api.run([str(src), "--no-incremental",
                                      "--cache-dir", str(tmp_path / "cache")])
    assert stdout.count('"numpy.ufunc"') == 2, stdout + stderr
    assert "Literal['cython']" in stdout and "Literal['numba']" in stdout, stdout
