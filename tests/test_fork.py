"""Worker processes started after a threaded call never hang, with every
multiprocessing start method, ProcessPoolExecutor and Dask's multiprocessing
scheduler, and give the parent's bits.

Each case runs tests/fork_scenario.py in a subprocess of its own session:
the scenario waits TIMEOUT seconds for its workers and reports a hang as a
failure (exit 3); should it hang itself, the test kills its whole process
group after OUTER_TIMEOUT seconds and fails.  Nothing is left running.
"""
import json
import multiprocessing
import os
import signal
import subprocess
import sys

import pytest

import relu_ufunc as ru

try:
    from relu_ufunc import _ufuncs
except ImportError:
    _ufuncs = None
# Whether calls can run on a team here (Cython backend built with threads).
TEAMS = ru.backend == "cython" and bool(_ufuncs.HAVE_THREADS)
SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fork_scenario.py")
TIMEOUT = 30            # seconds a worker may take to answer
OUTER_TIMEOUT = 150     # seconds for the whole scenario (spawned workers import NumPy)
METHODS = ["fork", "forkserver", "spawn"]
RUNNERS = ["process", "pool", "executor", "dask"]


def run_isolated(argv, timeout, what):
    """Run argv in a session of its own; kill the whole session when it ends
    or after `timeout` s (then fail, saying `what` did not finish), so that
    a hung forked child never outlives its test."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{what} did not finish in {timeout} s\n{out}\n{err}")
    finally:
        try:                    # whatever it left in its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out, err


def run_scenario(*args, timeout=OUTER_TIMEOUT):
    return run_isolated([sys.executable, SCENARIO, *map(str, args)], timeout,
                        f"the scenario {args}")


# The default run keeps one cell (fork, a plain Process: the case that used
# to hang); the rest of the matrix is marked slow and runs in CI.
MATRIX = [pytest.param(m, r, marks=() if (m, r) == ("fork", "process") else pytest.mark.slow)
          for m in METHODS for r in RUNNERS]


@pytest.mark.parametrize("method,runner", MATRIX)
def test_workers_started_after_a_threaded_call(method, runner):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    if runner == "dask":
        pytest.importorskip("dask.array")
    rc, out, err = run_scenario(method, runner, TIMEOUT)
    assert rc == 0, f"exit {rc} (3: a worker hung, 1: other bits)\n{out}\n{err}"
    report = json.loads(out.splitlines()[-1])
    children = report["children"]
    assert children and all(c["digest"] == report["parent"]["digest"] for c in children)
    assert all(c["pid"] != report["parent"]["pid"] for c in children)
    assert all(c["threads"] == 2 for c in children)
    if TEAMS:
        # The parent's call ran on a team (else there was nothing to survive).
        assert report["parent"]["team"]["team_started"]
        if method == "fork":
            # A child forked after a team runs every call on its own thread.
            assert all(c["team"]["fork_disabled"] for c in children)
        else:
            # A new process (spawn, or forked from the fork server, which
            # never ran a team) runs its call on a team.
            assert all(not c["team"]["fork_disabled"] and c["team"]["teams_run"] >= 1
                       for c in children)


FORK_CODE = """
import os, sys, numpy as np, relu_ufunc as ru
from relu_ufunc import _ufuncs
x = np.linspace(-1, 1, 1 << 20, dtype=np.float32)
expected = np.maximum(x, 0)
_ufuncs._set_thread_budget(max(2, _ufuncs._team_stats()["budget"]))   # 1-CPU machines

def in_child(fn):
    # fn() in a forked child; its exit status (the parent waits for it)
    pid = os.fork()
    if pid == 0:
        try:
            code = fn()
        except BaseException:
            import traceback; traceback.print_exc(); code = 99
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def call():
    # 0 if a threads(2) call gives the right bits; 10 + teams it ran
    before = _ufuncs._team_stats()["teams_run"]
    with ru.threads(2):
        y = ru.relu(x)
    if not np.array_equal(y, expected):
        return 1
    return 10 + _ufuncs._team_stats()["teams_run"] - before
"""


def run_code(code, timeout=120):
    rc, out, err = run_isolated([sys.executable, "-c", FORK_CODE + code], timeout,
                                "the code (a forked child hung?)")
    assert rc == 0, f"exit {rc}\n{out}\n{err}"
    return out


@pytest.mark.skipif(not TEAMS, reason="no threads in this build/backend")
def test_os_fork_before_and_after_a_team():
    """A child forked before this process ran any team keeps its threads; one
    forked after runs single-threaded, and so do its own children."""
    out = run_code("""
assert in_child(call) == 11, "forked before any team: the child runs one"
assert not _ufuncs._team_stats()["team_started"]   # the parent still has none
assert call() == 11                                 # now it has
assert in_child(call) == 10, "forked after a team: no team in the child"
assert in_child(lambda: in_child(call)) == 10, "nor in its child"
assert in_child(lambda: 20 + _ufuncs._team_stats()["fork_disabled"]) == 21
assert call() == 11 and not _ufuncs._team_stats()["fork_disabled"]   # the parent keeps its team
print("ok")
""")
    assert out.strip() == "ok"


@pytest.mark.skipif(not TEAMS, reason="no threads in this build/backend")
def test_fork_from_another_thread_after_a_team():
    """The team ran on one thread; another thread forks: the child (whose one
    thread is the forking thread) still never hangs."""
    out = run_code("""
import threading
assert call() == 11
box = []
t = threading.Thread(target=lambda: box.append(in_child(call))); t.start(); t.join()
assert box == [10], box
print("ok")
""")
    assert out.strip() == "ok"
