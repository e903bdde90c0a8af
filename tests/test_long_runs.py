"""The builds and store paths of the contiguous kernels (relu_ufunc/_loops.h.in).

Every kernel is built for each CPU level (baseline, AVX2, AVX-512), and this
machine runs the highest it has unless told otherwise, so each test here runs
once per level this CPU supports.  A contiguous run stores plainly, or
streams its stores past the cache from the size the store plan gives.  The
plan is forced here (the private _set_stream_from), so that arrays far
smaller than the cache take each path: every loop, on runs of many 256-byte
pieces plus a tail, from aligned and misaligned starts, bit for bit against
the reference.  The plan itself is checked against its own measurements."""
import ctypes
import mmap
import os
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _reference
from relu_ufunc._spec import SELECT_ONLY
from conftest import assert_same_bits, call_args, loops, random_values

pytestmark = pytest.mark.skipif(ru.backend != "cython", reason="the Cython loops' store paths")

RUN_BYTES = 3 * 4096                    # many 256-byte streamed pieces


def _levels():
    if ru.backend != "cython":
        return [0]
    from relu_ufunc import _ufuncs
    return list(range(_ufuncs.MAX_CPU_LEVEL + 1))


@pytest.fixture(params=_levels(), autouse=True)
def cpu_level(request):
    """Every test here runs with each build of the kernels this CPU can run."""
    from relu_ufunc import _ufuncs
    old = _ufuncs._set_cpu_level(request.param)
    yield request.param
    _ufuncs._set_cpu_level(old)


@pytest.fixture(params=["plain", "streamed", "streamed, prefetching"])
def stores(request):
    """Each store path: plain, streamed without a prefetch, and streamed with
    the inputs prefetched ahead (a distance the store plan may choose)."""
    from relu_ufunc import _ufuncs
    old = _ufuncs._set_stream_from(None if request.param == "plain" else 1)
    old_ahead = _ufuncs._set_stream_ahead(1024 if request.param.endswith("prefetching") else 0)
    yield request.param
    _ufuncs._set_stream_from(old)
    _ufuncs._set_stream_ahead(old_ahead)


def expected(name, args):
    with np.errstate(all="ignore"):
        return _reference.REFERENCE[name](*args)


def assert_into(name, args, out):
    """name(*args, out=out) writes the reference's values into out."""
    with np.errstate(all="ignore"):
        getattr(ru, name)(*args, out=out)
    assert_same_bits(out, expected(name, args))


@pytest.mark.parametrize("name, char", loops())
def test_long_runs_every_loop(name, char, stores, rng):
    itemsize = np.dtype(char).itemsize
    n = RUN_BYTES // itemsize + 77
    for start in (0, 1):                             # 1: y starts off its line
        x = random_values(rng, char, n + start)[start:]
        args = call_args(name, x, rng)
        out = np.empty(n + start, x.dtype)[start:]
        assert_into(name, args, out)
        if len(args) == 2:                           # one input a single value
            scalar = args[1][0] if name.startswith("leaky") else args[0][0]
            sargs = (args[0], scalar) if name.startswith("leaky") else (scalar, args[1])
            assert_into(name, sargs, out)


@pytest.mark.parametrize("name, char", loops())
def test_long_runs_in_place(name, char, stores, rng):
    """In place, every input may be the output (stores stay plain)."""
    itemsize = np.dtype(char).itemsize
    n = RUN_BYTES // itemsize + 5
    x = random_values(rng, char, n)
    args = call_args(name, x, rng)
    ref = expected(name, args)
    for k in range(len(args)):
        a = [arg.copy() for arg in args]
        with np.errstate(all="ignore"):
            got = getattr(ru, name)(*a, out=a[k])
        assert got is a[k]
        assert_same_bits(got, ref)


def test_streamed_output_overlapping_input_is_not_streamed(stores):
    """A shifted view of the input as out: NumPy copies the input first, so
    the values are those of the unshifted input."""
    x = random_values(np.random.default_rng(1), "f", 4_000)
    ref = expected("relu", (x[:-16],))
    y = x.copy()
    ru.relu(y[:-16], out=y[16:])
    assert_same_bits(y[16:], ref)


@pytest.mark.parametrize("name, char", loops())
def test_short_and_strided_runs(name, char, rng):
    """The aligning head, the unrolled loop and its tail, on short runs from
    aligned and misaligned starts; and strided data, through the strided
    kernel straight into a contiguous y, and through its L1 blocks (runs
    longer than one block) into a strided y."""
    for n in (1, 2, 7, 31, 64, 65, 130, 257, 1031):
        for start in (0, 1, 3):
            x = random_values(rng, char, n + start)[start:]
            assert_into(name, call_args(name, x, rng), np.empty(n + start, x.dtype)[start:])
    x = random_values(rng, char, 3 * 700)[::3]
    assert_into(name, call_args(name, x, rng), np.empty(2 * 700, x.dtype)[::2])
    assert_into(name, call_args(name, x, rng), np.empty(700, x.dtype))


def _at_stride(a, k, rng):
    """a as a view at a stride of k elements (reversed for k < 0), the
    elements between holding random values, edge values and NaNs among
    them."""
    if a.ndim == 0 or a.size == 1:
        return a
    buf = random_values(rng, a.dtype, a.size * abs(k))
    view = buf[::k] if k > 0 else buf[::-1][::-k]
    view[...] = a
    return view


@pytest.mark.parametrize("name, char", loops())
def test_strided_output_touches_only_its_elements(name, char, rng):
    """A strided y (written from L1 blocks) gets exactly its elements: at
    strides where a 64-byte window holds 2 or more of them (2 to 64 /
    itemsize - 1 elements: where a vector store would have to be masked)
    and past that, positive and negative, on runs that end inside a window
    and span blocks, with contiguous inputs and with inputs at y's stride.
    The results are the reference's, every element of y between them keeps
    its bits, and a select-only function raises no FP error, whatever the
    elements between its inputs' hold (signalling NaNs among them): the
    windows kernels (relu_f_windows_avx512, relu_f_windows_avx2) compute
    those too, and store y's lanes only.  With a mask that also took the
    lane after each element, 42 of these failed, and no other test; with
    the AVX2 kernel's stride-2 loop also writing the element after each,
    the same 42 at the AVX2 level."""
    itemsize = np.dtype(char).itemsize
    lanes = 64 // itemsize
    sentinel = np.frombuffer(bytes(range(0x5A, 0x5A + itemsize)) * 4096, char)
    errors = "raise" if name in SELECT_ONLY else "ignore"
    for k in sorted({2, 3, 5, 7, lanes - 1, lanes, lanes + 1, -2, -3}):
        for n in (1, 3, 17, 255, 257, 600):
            x = random_values(rng, char, n)
            args = call_args(name, x, rng)
            ref = expected(name, args)
            for same_stride in (False, True):
                a = [_at_stride(v, k, rng) for v in args] if same_stride else args
                for start in (0, 1):
                    buf = np.resize(sentinel, n * abs(k) + 2)
                    view, where = buf[start:], np.arange(buf.size)[start:]
                    if k < 0:
                        view, where = view[::-1], where[::-1]
                    y = view[::abs(k)][:n]
                    with np.errstate(all=errors):
                        getattr(ru, name)(*a, out=y)
                    assert_same_bits(y, ref)
                    others = np.ones(buf.size, bool)
                    others[where[::abs(k)][:n]] = False
                    assert_same_bits(buf[others], np.resize(sentinel, buf.size)[others])


@pytest.fixture
def last_page_readable():
    """A page of memory whose next page cannot be read (PROT_NONE): a read
    past its end faults."""
    if not sys.platform.startswith("linux"):
        pytest.skip("mprotect through ctypes: Linux")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    mem = mmap.mmap(-1, 2 * mmap.PAGESIZE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    assert libc.mprotect(address + mmap.PAGESIZE, mmap.PAGESIZE, 0) == 0, ctypes.get_errno()
    yield np.frombuffer(mem, np.uint8, count=mmap.PAGESIZE)


@pytest.mark.parametrize("name, char", [(n, c) for n, c in loops()
                                        if n in SELECT_ONLY and np.dtype(c).itemsize <= 8])
def test_strided_output_reads_nothing_past_its_last_element(name, char, last_page_readable, rng):
    """Every operand at y's stride, the last element of the inputs the last
    of a page whose next page cannot be read: the windows kernels read the
    elements between (the AVX2 build's stride-2 loop whole vectors of them)
    and must stop at the span's last element, or this faults."""
    uf = getattr(ru, name)
    x = last_page_readable.view(char)
    x[...] = random_values(rng, char, x.size)
    for k in (2, 4):
        view = x[k - 1::k]                  # its last element is the page's last
        for n in (1, 7, 33, view.size):
            args = [view[-n:]] * uf.nin
            y = np.zeros(n * k, char)[::k]
            with np.errstate(all="ignore"):
                uf(*args, out=y)
            assert_same_bits(y, expected(name, args))


def test_cpu_level_setting():
    """The private switch takes only levels this CPU runs, and says so."""
    from relu_ufunc import _ufuncs
    top = _ufuncs.MAX_CPU_LEVEL
    assert 0 <= top < len(_ufuncs.CPU_LEVELS)
    level = _ufuncs._cpu_level()
    for bad in (-1, top + 1):
        with pytest.raises(ValueError, match="levels 0 to"):
            _ufuncs._set_cpu_level(bad)
        assert _ufuncs._cpu_level() == level


def _plan_rule(sizes, plan_sizes=7):
    """The rule _loops.h.in states, on the plan's own measurements (smallest
    size first): measured from 64 MiB down while streaming was at least 15%
    faster, so every size but the smallest measured won, and the smallest
    measured lost unless it was 1 MiB; stream from the smallest that won,
    None where 64 MiB did not."""
    mib = 1 << 20
    assert [s for s, _, _ in sizes] == [mib << k for k in range(plan_sizes - len(sizes), plan_sizes)]
    won = [streamed < 0.85 * plain for _, plain, streamed in sizes]
    assert all(won[1:]), "measured on below a size where streaming lost"
    if len(sizes) < plan_sizes:
        assert not won[0], "stopped at a size where streaming won"
    winners = [s for (s, _, _), w in zip(sizes, won) if w]
    return winners[0] if winners else None


def _unmeasured(setter):
    """_ufuncs with one measured setting back to unmeasured (the private
    setter given -1), and the setting as it was after."""
    from relu_ufunc import _ufuncs
    if not _ufuncs.HAVE_STREAM:
        pytest.skip("this build has no streaming stores")
    old = getattr(_ufuncs, setter)(-1)
    yield _ufuncs
    getattr(_ufuncs, setter)(old)


@pytest.fixture
def fresh_plans():
    """Every team size's plan unmeasured, and the plans as they were after."""
    yield from _unmeasured("_set_stream_from")


@pytest.mark.parametrize("threads", [1, 2])
def test_store_plan_follows_its_measurements(fresh_plans, threads):
    """Each team size has a plan of its own, measured on that many threads,
    that follows the rule from its own measurements."""
    _ufuncs = fresh_plans
    assert _ufuncs._store_plan(measure=False, threads=threads) == (-1, [])
    stream_from, sizes = _ufuncs._store_plan(threads=threads)
    assert sizes and sizes[-1][0] == _ufuncs.PLAN_FROM << 6       # from 64 MiB down
    assert all(p > 0 and q > 0 for _, p, q in sizes)
    assert stream_from == _plan_rule(sizes)
    other = 3 - threads
    assert _ufuncs._store_plan(measure=False, threads=other) == (-1, [])


def test_a_large_call_measures_the_plan_of_its_team(fresh_plans):
    """A call with 1 MiB of output measures the plan of the team it runs on,
    once; a smaller call never measures."""
    _ufuncs = fresh_plans
    ru.relu(np.ones(_ufuncs.PLAN_FROM // 4 - 16, np.float32))
    assert _ufuncs._stream_from() == -1
    ru.relu(np.ones(_ufuncs.PLAN_FROM // 4, np.float32))
    assert _ufuncs._stream_from() != -1
    assert _ufuncs._stream_from(threads=2) == -1
    if _ufuncs.HAVE_THREADS and len(os.sched_getaffinity(0)) >= 2:      # a team can start
        with ru.threads(2):
            ru.relu(np.ones(_ufuncs.PLAN_FROM // 4, np.float32))
        assert _ufuncs._stream_from(threads=2) != -1


def test_setting_the_plan_sets_every_team_size(fresh_plans):
    _ufuncs = fresh_plans
    _ufuncs._set_stream_from(12345)
    assert [_ufuncs._stream_from(k) for k in (1, 2, 7, 64, 500)] == [12345] * 5
    _ufuncs._set_stream_from(None)
    assert [_ufuncs._stream_from(k) for k in (1, 2, 500)] == [None] * 3


def test_plan_rule():
    mib = 1 << 20
    sizes = lambda ratios: [(mib << k, 1.0, r) for k, r in enumerate(ratios, 7 - len(ratios))]
    assert _plan_rule(sizes([2.0, 0.8, 0.5, 0.6, 0.6, 0.6, 0.6])) == 2 * mib
    assert _plan_rule(sizes([0.8, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6])) == mib
    assert _plan_rule(sizes([0.9, 0.6, 0.6, 0.6, 0.6])) == 8 * mib     # 0.9: no win
    assert _plan_rule(sizes([0.9])) is None
    assert _plan_rule(sizes([1.0, 0.5])) == 64 * mib
    with pytest.raises(AssertionError):
        _plan_rule(sizes([0.5, 0.6]))                  # went on below a win: not the rule
    with pytest.raises(AssertionError):
        _plan_rule(sizes([0.5, 1.0, 0.5]))             # went on below a loss


def _ahead_rule(tried):
    """The distance the plan chooses from its measurements [(bytes ahead,
    seconds)]: the fastest, where it was at least 5% faster than none (0)."""
    none = dict(tried)[0]
    best, seconds = min(tried, key=lambda t: t[1])
    return best if seconds < 0.95 * none else 0


def test_ahead_rule():
    assert _ahead_rule([(0, 1.0), (512, 0.8), (1024, 0.7), (2048, 0.9)]) == 1024
    assert _ahead_rule([(0, 1.0), (512, 0.96), (1024, 0.97), (2048, 0.99)]) == 0
    assert _ahead_rule([(0, 0.9), (512, 1.0), (1024, 1.0), (2048, 1.0)]) == 0


@pytest.fixture
def fresh_ahead():
    """The prefetch distance unmeasured, and as it was after."""
    yield from _unmeasured("_set_stream_ahead")


def test_prefetch_distance_follows_its_measurements(fresh_ahead):
    """Measured once, each distance tried, none included, at 64 MiB; the
    stream kernels then run at the one the rule gives."""
    _ufuncs = fresh_ahead
    assert _ufuncs._stream_ahead(measure=False) == (-1, [])
    chosen, tried = _ufuncs._stream_ahead()
    assert [d for d, _ in tried] == [0, 512, 1024, 2048]
    assert all(s > 0 for _, s in tried)
    assert chosen == _ahead_rule(tried)
    assert _ufuncs._stream_ahead() == (chosen, tried)         # not measured again


def test_the_store_plan_measures_the_prefetch_distance_first(fresh_plans, fresh_ahead):
    """The plan's streamed passes run at the distance calls will run at."""
    _ufuncs = fresh_plans
    _ufuncs._store_plan()
    chosen, tried = _ufuncs._stream_ahead(measure=False)
    assert chosen == _ahead_rule(tried) and len(tried) == 4


def test_a_set_plan_measures_the_prefetch_distance_at_its_first_streamed_call(
        fresh_plans, fresh_ahead):
    """Where the plan was set (RELU_UFUNC_STREAM_FROM), no plan measures the
    distance: the first call that streams does; a call that does not stream
    never does."""
    _ufuncs = fresh_plans
    x = np.ones(4096, np.float32)
    _ufuncs._set_stream_from(None)
    ru.relu(x)
    assert _ufuncs._stream_ahead(measure=False) == (-1, [])
    _ufuncs._set_stream_from(1)
    ru.relu(x)
    chosen, tried = _ufuncs._stream_ahead(measure=False)
    assert chosen == _ahead_rule(tried) and len(tried) == 4


@pytest.mark.parametrize("nbytes", [-2, (1 << 20) + 1, 1.5])
def test_prefetch_distance_setting_rejects_nonsense(nbytes):
    from relu_ufunc import _ufuncs
    with pytest.raises((ValueError, TypeError)):
        _ufuncs._set_stream_ahead(nbytes)


@pytest.mark.parametrize("value, expected", [("never", None), ("123456", 123456)])
def test_stream_from_environment(value, expected):
    code = "from relu_ufunc import _ufuncs; print(_ufuncs._stream_from())"
    env = dict(os.environ, RELU_UFUNC_STREAM_FROM=value, RELU_UFUNC_BACKEND="cython")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    from relu_ufunc import _ufuncs
    assert out == str(expected if _ufuncs.HAVE_STREAM else None)


def test_stream_from_environment_rejects_nonsense():
    code = "import relu_ufunc"
    env = dict(os.environ, RELU_UFUNC_STREAM_FROM="lots", RELU_UFUNC_BACKEND="cython")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert "RELU_UFUNC_STREAM_FROM='lots'" in res.stderr
