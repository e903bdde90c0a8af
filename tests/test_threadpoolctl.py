"""threadpoolctl lists relu_ufunc and its limits apply to it, per thread;
``import relu_ufunc`` does not import threadpoolctl."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import relu_ufunc as ru

threadpoolctl = pytest.importorskip("threadpoolctl")
if not hasattr(threadpoolctl, "register"):
    pytest.skip("threadpoolctl < 3.5 has no register()", allow_module_level=True)
try:
    from relu_ufunc import _ufuncs
except ImportError:
    _ufuncs = None
CYTHON = ru.backend == "cython"
needs_cython = pytest.mark.skipif(not CYTHON, reason="the Numba backend has no native pool")
TEAMS = CYTHON and bool(_ufuncs.HAVE_THREADS)
BIG = 1 << 20


def run(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "RELU_UFUNC_BACKEND"}
    full_env.update(env)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=full_env, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def ours():
    return [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "relu_ufunc"]


@pytest.fixture(autouse=True)
def clean_setting():
    assert ru.get_num_threads() == 1 and ru._setting.get_own() == 0
    old = _ufuncs._set_thread_budget(max(2, _ufuncs._team_stats()["budget"])) if TEAMS else None
    yield
    if TEAMS:
        _ufuncs._set_thread_budget(old)
    ru._setting.set_own(0)
    assert ru.set_num_threads(1) == 1, "a test left the process default changed"


def test_import_does_not_import_threadpoolctl():
    out = run("import sys, relu_ufunc; print('threadpoolctl' in sys.modules)")
    assert out.strip() == "False"


@needs_cython
@pytest.mark.parametrize("first", ["relu_ufunc", "threadpoolctl"])
def test_threadpool_info_lists_relu_ufunc_whichever_is_imported_first(first):
    second = {"relu_ufunc": "threadpoolctl", "threadpoolctl": "relu_ufunc"}[first]
    out = run(f"""
import os
import {first}
import {second}
import relu_ufunc, threadpoolctl
from importlib.machinery import SourceFileLoader
info = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "relu_ufunc"]
assert len(info) == 1, info
i = info[0]
assert i["user_api"] == "openmp" and i["num_threads"] == 1, i
assert i["version"] == relu_ufunc.__version__, i
assert os.path.samefile(i["filepath"], relu_ufunc._ufuncs.__file__), i
# threadpoolctl keeps its own loader (the hook wrapped it only while importing)
assert type(threadpoolctl.__loader__) is SourceFileLoader, threadpoolctl.__loader__
assert threadpoolctl.__spec__.loader is threadpoolctl.__loader__
print("ok")
""")
    assert out.strip() == "ok"


@needs_cython
def test_threadpool_info_shows_this_threads_setting():
    assert [i["num_threads"] for i in ours()] == [1]
    with ru.threads(3):
        assert [i["num_threads"] for i in ours()] == [3]
    ru.set_num_threads(2)
    assert [i["num_threads"] for i in ours()] == [2]
    ru.set_num_threads(1)


@needs_cython
@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_threadpool_limits_turns_threads_off_in_its_block(user_api):
    x = np.linspace(-1, 1, BIG, dtype=np.float32)
    ru.set_num_threads(2)
    with threadpoolctl.threadpool_limits(1, user_api=user_api):
        assert ru.get_num_threads() == 1
        assert [i["num_threads"] for i in ours()] == [1]
        ru.relu(x)
        assert not TEAMS or _ufuncs._last_team() == 1
    assert ru.get_num_threads() == 2
    y = ru.relu(x)
    assert not TEAMS or _ufuncs._last_team() == 2
    assert np.array_equal(y, np.maximum(x, 0))
    ru.set_num_threads(1)


@needs_cython
def test_blas_limits_leave_relu_ufunc_alone():
    ru.set_num_threads(2)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert ru.get_num_threads() == 2
    ru.set_num_threads(1)


@needs_cython
def test_limits_restore_exactly_what_the_thread_had():
    """After the block, a thread that used the default uses the default again
    (it follows a later set_num_threads); one inside threads(4) has 4."""
    with threadpoolctl.threadpool_limits(3):
        assert ru.get_num_threads() == 3
    assert ru._setting.get_own() == 0
    ru.set_num_threads(2)
    assert ru.get_num_threads() == 2
    with ru.threads(4):
        with threadpoolctl.threadpool_limits(1):
            assert ru.get_num_threads() == 1
        assert ru.get_num_threads() == 4 and ru._setting.get_own() == 4
    assert ru.get_num_threads() == 2
    ru.set_num_threads(1)


@needs_cython
def test_limits_are_per_thread():
    """threadpool_limits in one thread leaves the others' calls alone."""
    ru.set_num_threads(2)
    entered, done, seen = threading.Event(), threading.Event(), []

    def limited():
        with threadpoolctl.threadpool_limits(1):
            seen.append(ru.get_num_threads())
            entered.set()
            assert done.wait(30)

    t = threading.Thread(target=limited)
    t.start()
    assert entered.wait(30)
    try:
        assert ru.get_num_threads() == 2
        if TEAMS:
            ru.relu(np.ones(BIG, np.float32))
            assert _ufuncs._last_team() == 2
    finally:
        done.set()
        t.join(30)
    assert seen == [1]
    ru.set_num_threads(1)


@needs_cython
def test_controller_select_and_wrap():
    controller = threadpoolctl.ThreadpoolController()
    mine = controller.select(internal_api="relu_ufunc")
    assert len(mine.lib_controllers) == 1
    with mine.limit(limits=5):
        assert ru.get_num_threads() == 5
    assert ru.get_num_threads() == 1

    @threadpoolctl.threadpool_limits.wrap(limits=2)
    def inside():
        return ru.get_num_threads()
    assert inside() == 2 and ru.get_num_threads() == 1


def test_numba_backend_is_not_listed():
    pytest.importorskip("numba")
    out = run("""
import relu_ufunc, threadpoolctl
assert relu_ufunc.backend == "numba"
print([i["internal_api"] for i in threadpoolctl.threadpool_info()].count("relu_ufunc"))
with threadpoolctl.threadpool_limits(1):
    pass
""", RELU_UFUNC_BACKEND="numba")
    assert out.strip() == "0"
