"""relu_ufunc.set_num_threads / threads: opt-in threads for large calls give
bit-identical results, and the setting behaves: threads() is per Python
thread and nests, set_num_threads is the process default for threads
without a setting of their own."""
import threading

import numpy as np
import pytest

import relu_ufunc as ru
from conftest import assert_same_bits, random_values

try:
    from relu_ufunc import _ufuncs
except ImportError:
    _ufuncs = None
# Whether calls can run on a team here (Cython backend built with threads).
TEAMS = ru.backend == "cython" and bool(_ufuncs.HAVE_THREADS)
needs_teams = pytest.mark.skipif(not TEAMS, reason="no threads in this build/backend")
BIG = 1 << 20           # float32 elements: 4 MiB out, a team of 2 when asked for


@pytest.fixture(autouse=True)
def clean_setting():
    """Every test starts and ends with default 1 and no own value here."""
    assert ru.get_num_threads() == 1 and ru._setting.get_own() == 0
    yield
    ru._setting.set_own(0)
    assert ru.set_num_threads(1) == 1, "a test left the process default changed"


def teams_run():
    return _ufuncs._team_stats()["teams_run"]


@pytest.fixture
def budget():
    """Set the thread budget (the private hook) for a test; restored after."""
    old = _ufuncs._set_thread_budget(_ufuncs._team_stats()["budget"])
    yield _ufuncs._set_thread_budget
    _ufuncs._set_thread_budget(old)
    assert _ufuncs._team_stats()["busy"] == 0, "a call left threads held"


@pytest.fixture(params=["backend", "python"])
def setting(request, monkeypatch):
    """The backend's setting, and the pure-Python one the Numba backend uses
    (so that both follow the same rules whichever backend runs here)."""
    if request.param == "python":
        monkeypatch.setattr(ru, "_setting", ru._PythonThreadSetting())
    return request.param


def test_default_is_one_thread(setting):
    assert ru.get_num_threads() == 1


def test_context_manager_restores(setting):
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


@pytest.mark.parametrize("bad", [0, -1, 2**31, 2**64])
def test_bad_counts_raise_valueerror(setting, bad):
    with pytest.raises(ValueError):
        ru.set_num_threads(bad)
    with pytest.raises(ValueError):
        with ru.threads(bad):
            pass
    assert ru.get_num_threads() == 1


@pytest.mark.parametrize("bad", [1.5, "2", None])
def test_non_integers_raise_typeerror(setting, bad):
    with pytest.raises(TypeError):
        ru.set_num_threads(bad)
    with pytest.raises(TypeError):
        with ru.threads(bad):
            pass
    assert ru.get_num_threads() == 1


def test_set_returns_old_value(setting):
    assert ru.set_num_threads(4) == 1
    assert ru.get_num_threads() == 4
    assert ru.set_num_threads(1) == 4


def test_set_num_threads_is_the_default_a_block_overrides(setting):
    """set_num_threads changes the default; this thread's threads() block
    keeps its own value, and sees the new default once it ends."""
    with ru.threads(3):
        assert ru.set_num_threads(2) == 1
        assert ru.get_num_threads() == 3
    assert ru.get_num_threads() == 2
    ru.set_num_threads(1)


def in_thread(fn):
    """fn() run on a new Python thread; its result, or its exception raised here."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e
    t = threading.Thread(target=target)
    t.start()
    t.join(60)
    assert not t.is_alive()
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_threads_block_is_per_thread(setting):
    """Another thread does not see this thread's block; it sees the default."""
    ru.set_num_threads(2)
    with ru.threads(5):
        assert in_thread(ru.get_num_threads) == 2
        assert in_thread(lambda: ru.set_num_threads(3)) == 2   # the default, from there
        assert ru.get_num_threads() == 5
    assert ru.get_num_threads() == 3
    ru.set_num_threads(1)


def test_concurrent_blocks_each_see_their_own_value(setting):
    """Four threads inside threads() blocks at once, nested, each with its own
    count; the blocks end in an order that, with one process-wide value,
    would leave the last restored (stale) value behind.  The default is
    unchanged afterwards."""
    ru.set_num_threads(2)
    counts = [1, 2, 3, 4]
    inside = threading.Barrier(len(counts))
    seen, errors = {}, []
    # Thread k leaves its block only after thread k + 1 has left its own.
    left = [threading.Event() for _ in counts]

    def worker(k):
        try:
            n = counts[k]
            with ru.threads(n):
                inside.wait(30)
                seen[k] = [ru.get_num_threads()]
                with ru.threads(n + 10):
                    inside.wait(30)
                    seen[k].append(ru.get_num_threads())
                inside.wait(30)
                seen[k].append(ru.get_num_threads())
                if k + 1 < len(counts):
                    assert left[k + 1].wait(30)
            left[k].set()
            seen[k].append(ru.get_num_threads())
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            inside.abort()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(len(counts))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert seen == {k: [n, n + 10, n, 2] for k, n in enumerate(counts)}
    assert ru.get_num_threads() == 2 and in_thread(ru.get_num_threads) == 2
    assert ru.set_num_threads(1) == 2


def test_many_threads_toggling_blocks_leave_the_default(setting):
    """The issue's case: four threads, each many times `with threads(1 or 2)`
    around its own calls; the process default is what it was."""
    ru.set_num_threads(2)
    x = np.linspace(-1, 1, BIG, dtype=np.float32)
    expected = np.maximum(x, 0)
    errors = []

    def worker(k):
        try:
            for i in range(50):
                n = 1 + (i + k) % 2
                with ru.threads(n):
                    assert ru.get_num_threads() == n
                    if i % 10 == 0:
                        assert_same_bits(ru.relu(x), expected)
                    assert ru.get_num_threads() == n
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    assert ru.set_num_threads(1) == 2


@needs_teams
def test_calls_use_the_calling_threads_setting(budget):
    """The inner loop reads the setting of the thread that calls the ufunc:
    while another thread sits in a threads(2) block, a call here (default 1)
    runs alone, and a call from that thread runs on a team."""
    budget(2)
    x = np.ones(BIG, np.float32)
    entered, done = threading.Event(), threading.Event()

    def other():
        with ru.threads(2):
            entered.set()
            assert done.wait(30)
            before = teams_run()
            ru.relu(x)
            return teams_run() - before

    box = {}
    t = threading.Thread(target=lambda: box.setdefault("teams", other()))
    t.start()
    assert entered.wait(30)
    before = teams_run()
    ru.relu(x)
    assert teams_run() == before            # this thread: default 1, no team
    done.set()
    t.join(30)
    assert box["teams"] == 1                # that thread: its block's 2
    with ru.threads(2):
        before = teams_run()
        ru.relu(x)
        assert teams_run() == before + 1
    ru.set_num_threads(2)                   # the default reaches this thread too
    before = teams_run()
    ru.relu(x)
    assert teams_run() == before + 1
    ru.set_num_threads(1)


@needs_teams
def test_small_calls_never_start_a_team(budget):
    x = np.ones((256 << 10) // 4 - 16, np.float32)  # just under 2 chunks of 128 KiB
    with ru.threads(8):
        before = teams_run()
        ru.relu(x)
        ru.relu(x[::2])                     # strided: never a team
        assert teams_run() == before


@pytest.mark.parametrize("char", "fd")
def test_threaded_calls_are_bit_identical(name, char, rng):
    uf = getattr(ru, name)
    n = 3_000_017                              # past the threshold, odd length
    x = random_values(rng, char, n)
    args = [x] if uf.nin == 1 else [x, x[::-1].copy()]
    old = _ufuncs._set_thread_budget(64) if TEAMS else None   # 3 and 7 on any machine
    try:
        threaded_calls_are_bit_identical(uf, args)
    finally:
        if TEAMS:
            _ufuncs._set_thread_budget(old)


def threaded_calls_are_bit_identical(uf, args):
    n = args[0].size
    with np.errstate(all="ignore"):
        single = uf(*args)
        for k in (2, 3, 7):
            with ru.threads(k):
                assert_same_bits(uf(*args), single)
                assert not TEAMS or _ufuncs._last_team() == k, "the call ran on no team"
                out = np.empty(n + 3, args[0].dtype)[3:]     # a misaligned output
                uf(*args, out=out)
                assert_same_bits(out, single)
                inplace = args[0].copy()
                uf(inplace, *args[1:], out=inplace)
                assert_same_bits(inplace, single)


@needs_teams
def test_budget_caps_the_team(budget):
    """A call gets at most the budget's threads: one when the budget is 1,
    and as many as it asks for (up to one per 128 KiB) within it."""
    budget(2)
    x = np.ones(BIG, np.float32)                      # 32 chunks of 128 KiB
    with ru.threads(4):
        ru.relu(x)
        assert _ufuncs._last_team() == 2
        budget(3)
        ru.relu(x)
        assert _ufuncs._last_team() == 3
        budget(1)
        ru.relu(x)
        assert _ufuncs._last_team() == 1
        budget(64)
        ru.relu(x)
        assert _ufuncs._last_team() == 4
        ru.relu(x[: 3 * (128 << 10) // 4])            # 3 chunks: 3 threads
        assert _ufuncs._last_team() == 3
    assert _ufuncs._team_stats()["busy"] == 0


@needs_teams
def test_a_call_finding_the_budget_used_runs_alone(budget):
    """While another thread's calls hold the whole budget (2), a call here
    that asks for 2 threads runs on this thread alone, and gives the same
    bits; once they are done, it gets its team again."""
    budget(2)
    big = np.ones(1 << 25, np.float32)                # 128 MiB: tens of ms a call
    x = np.linspace(-1, 1, BIG, dtype=np.float32)
    stop, errors = threading.Event(), []

    def hold():
        try:
            with ru.threads(2):
                while not stop.is_set():
                    ru.relu(big, out=big)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=hold)
    t.start()
    alone = []
    try:
        with ru.threads(2):
            for _ in range(3):            # A's call may end just as ours starts
                for _ in range(10**5):
                    if _ufuncs._team_stats()["busy"] >= 2:
                        break
                assert_same_bits(ru.relu(x), np.maximum(x, 0))
                alone.append(_ufuncs._last_team())
                if alone[-1] == 1:
                    break
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert 1 in alone, f"teams of {alone} while the budget was held"
    with ru.threads(2):
        ru.relu(x)
        assert _ufuncs._last_team() == 2


@needs_teams
def test_concurrent_calls_give_back_their_threads(budget):
    """Four threads, each with threads(2), many large calls at once: right
    bits, and afterwards nothing is held (a leak would turn teams off for
    good)."""
    budget(2)
    xs = [np.linspace(-1, 1, BIG, dtype=np.float32) * (k + 1) for k in range(4)]
    errors = []

    def worker(x):
        try:
            expected = np.maximum(x, 0)
            with ru.threads(2):
                for _ in range(30):
                    assert_same_bits(ru.relu(x), expected)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(x,)) for x in xs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    assert _ufuncs._team_stats()["busy"] == 0
    with ru.threads(2):
        ru.relu(xs[0])
        assert _ufuncs._last_team() == 2


def test_numba_backend_accepts_the_setting():
    """On the Numba backend the setting follows the same rules, and the loops
    (single-threaded there) give the same values."""
    pytest.importorskip("numba")
    import subprocess
    import sys
    import os
    code = """
import threading, numpy as np, relu_ufunc as ru
assert ru.backend == "numba", ru.backend
x = np.linspace(-1, 1, 1 << 20, dtype=np.float32)
with ru.threads(2):
    assert ru.get_num_threads() == 2
    y = ru.relu(x)
    seen = []
    t = threading.Thread(target=lambda: seen.append(ru.get_num_threads())); t.start(); t.join()
    assert seen == [1], seen
assert ru.get_num_threads() == 1 and ru.set_num_threads(3) == 1 and ru.get_num_threads() == 3
assert np.array_equal(y, np.maximum(x, 0))
print("ok")
"""
    env = dict(os.environ, RELU_UFUNC_BACKEND="numba")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
