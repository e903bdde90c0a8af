"""relu_ufunc.cuda.  Without a GPU: the ImportError, get_array_module, and the
dtype resolution and kernels planned for the GPU.  With CuPy and a GPU: the
value table bit for bit against the CPU ufuncs, and the keywords."""
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _cuda_kernels, _cuda_plan, _reference
from conftest import random_values

NO_CUPY = "import sys; sys.modules['cupy'] = None\n"


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_without_cupy_names_the_extras():
    res = run(NO_CUPY + "import relu_ufunc.cuda")
    assert res.returncode != 0
    assert "relu-ufunc[cuda12]" in res.stderr and "relu-ufunc[cuda13]" in res.stderr


def test_get_array_module_for_numpy_does_not_import_cupy():
    res = run("import sys, numpy as np, relu_ufunc as ru\n"
              "print(ru.get_array_module(np.ones(2)) is ru, ru.get_array_module(1.0) is ru,"
              " 'cupy' in sys.modules)")
    assert res.stdout.split() == ["True", "True", "False"], res.stderr


def test_get_array_module_for_gpu_arrays_wants_relu_ufunc_cuda():
    res = run(NO_CUPY + "import relu_ufunc as ru\n"
              "class FakeGPUArray:\n    __cuda_array_interface__ = {}\n"
              "ru.get_array_module(FakeGPUArray())")
    assert "relu-ufunc[cuda12]" in res.stderr     # it went for relu_ufunc.cuda


def test_gpu_dtype_resolution_follows_numpy():
    r = _cuda_plan.resolve
    assert r("relu_backward", [np.dtype("i1"), np.dtype("u1")]) == np.int16
    assert r("relu_backward", [np.dtype("f4"), float]) == np.float32      # NEP 50
    assert r("relu_backward", [np.dtype("i1"), int]) == np.int8
    assert r("relu", [np.dtype("e")]) == np.float16
    assert r("relu", [float]) == np.float64 and r("relu", [int]) == np.int64
    assert r("leaky_relu", [np.dtype("e"), float]) == np.float16
    assert r("leaky_relu", [float, float]) == np.float64
    assert r("relu", [np.dtype("i1")], dtype=np.float32) == np.float32
    for name in _cuda_kernels.GPU_CHARS:
        for t in getattr(ru, name).types:
            if "g" not in t:
                dts = [np.dtype(t[0])] * (len(t) - 3)
                assert r(name, dts) == np.dtype(t[-1])
    for bad in ("g", "F", "U", "O", "M"):
        with pytest.raises(TypeError, match="not supported"):
            r("relu", [np.dtype(bad)])


def test_gpu_kernels_call_the_header_formulas():
    assert _cuda_kernels.kernel_spec("relu", np.float16, False) == (
        "uint16 x", "uint16 y", "y = relu_f16(x)", "relu_ufunc_relu_f16")
    assert _cuda_kernels.kernel_spec("relu_backward", np.float32, True) == (
        "float32 dy, float32 x, bool m", "float32 y", "if (m) y = relu_backward_f32(dy, x)",
        "relu_ufunc_relu_backward_f32_where")


def test_kernels_construct_with_cupy_without_a_device():
    """CuPy parses every planned kernel's parameters (no device needed)."""
    pytest.importorskip("cupy")
    import relu_ufunc.cuda as rc
    for name, chars in _cuda_kernels.GPU_CHARS.items():
        for c in chars:
            for masked in (False, True):
                k = rc._kernel(name, np.dtype(c), masked)
                assert k.nin == _cuda_plan.UFUNCS[name][0] + masked and k.nout == 1
    with pytest.raises(TypeError, match="use relu_ufunc.relu"):
        rc.relu(np.ones(3))


# ---- on a GPU -------------------------------------------------------------

def _gpu():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no GPU")
    except Exception as e:          # CUDA driver missing
        pytest.skip(f"no usable GPU: {e}")
    import relu_ufunc.cuda as rc
    return cp, rc


GPU_CHARS = "bBhHiIlLefd"
LEAKY_CHARS = "efd"


def _chars(name):
    return LEAKY_CHARS if name.startswith("leaky") else GPU_CHARS


def _args(name, rng, char, n):
    x = random_values(rng, char, n)
    if ru.__dict__[name].nin == 1:
        return [x]
    other = random_values(rng, char, n)
    return [other, x] if name == "relu_backward" else [x, other]


@pytest.mark.parametrize("name", list(_cuda_kernels.GPU_CHARS))
def test_gpu_bit_identical_to_cpu(name):
    cp, rc = _gpu()
    rng = np.random.default_rng(3)
    for char in _chars(name):
        args = _args(name, rng, char, 4099)
        got = getattr(rc, name)(*[cp.asarray(a) for a in args])
        with np.errstate(all="ignore"):
            expected = getattr(ru, name)(*args)
        assert _reference.same_bits(cp.asnumpy(got), expected), (name, char)
        strided = getattr(rc, name)(*[cp.asarray(a)[::-3] for a in args])
        with np.errstate(all="ignore"):
            expected = getattr(ru, name)(*[a[::-3] for a in args])
        assert _reference.same_bits(cp.asnumpy(strided), expected), (name, char)


@pytest.mark.parametrize("name", list(_cuda_kernels.GPU_CHARS))
def test_gpu_whole_value_table(name):
    """Every special value (and, for two inputs, every pair of them), each
    dtype, bit for bit against the CPU ufunc: -0.0, NaN, +-inf, tiny, huge."""
    cp, rc = _gpu()
    for char in _chars(name):
        sv = _reference.special_values(np.dtype(char))
        if ru.__dict__[name].nin == 1:
            args = [sv]
        else:
            a, b = np.meshgrid(sv, sv)
            args = [a.ravel(), b.ravel()]
        with np.errstate(all="ignore"):
            expected = getattr(ru, name)(*args)
        got = cp.asnumpy(getattr(rc, name)(*[cp.asarray(a) for a in args]))
        assert _reference.same_bits(got, expected), (name, char, got, expected)


@pytest.mark.parametrize("name", list(_cuda_kernels.GPU_CHARS))
def test_gpu_vector_and_element_kernels_agree(name):
    """Contiguous 16-byte aligned arrays go through the vector kernel (with a
    tail done element by element), the rest through the element kernel: every
    length around the vector width, aligned and misaligned starts, a scalar
    alpha, and broadcasting, bit for bit against the CPU."""
    cp, rc = _gpu()
    rng = np.random.default_rng(7)
    for char in _chars(name):
        host = _args(name, rng, char, 300)
        dev = [cp.asarray(a) for a in host]
        width = _cuda_kernels.vector_width(char)
        for n in sorted({1, width - 1, width, width + 1, 2 * width + 3, 257}):
            for start in (0, 1, width):
                h = [a[start:start + n] for a in host]
                d = [a[start:start + n] for a in dev]
                cases = [(h, d)]
                if name.startswith("leaky"):
                    cases.append(([h[0], 0.25], [d[0], 0.25]))          # scalar alpha
                    cases.append(([h[0], h[1][:1]], [d[0], d[1][:1]]))  # broadcast
                for hargs, dargs in cases:
                    with np.errstate(all="ignore"):
                        expected = getattr(ru, name)(*hargs)
                    got = getattr(rc, name)(*dargs)
                    assert _reference.same_bits(cp.asnumpy(got), expected), (char, n, start)
                    out = cp.empty(n + start, got.dtype)[start:]             # out misaligned
                    getattr(rc, name)(*dargs, out=out)
                    assert _reference.same_bits(cp.asnumpy(out), expected), (char, n, start)


def test_gpu_overlapping_out_reads_the_input_as_it_was():
    """out shifted by one 16-byte vector against the input: as NumPy, the
    result is that of a copy of the input (threads would race otherwise)."""
    cp, rc = _gpu()
    x = random_values(np.random.default_rng(5), "f", 4099)
    for shift in (4, 1):
        d = cp.asarray(x)
        rc.relu(d[:-shift], out=d[shift:])
        expected = x.copy()
        ru.relu(expected[:-shift], out=expected[shift:])
        assert _reference.same_bits(cp.asnumpy(d), expected), shift


def test_gpu_float16_keeps_nan_and_positive_zero():
    cp, rc = _gpu()
    x = cp.asarray([np.nan, -0.0, 0.0, -1.0, 65504.0, -np.inf], cp.float16)
    y = cp.asnumpy(rc.relu(x))
    assert np.isnan(y[0]) and not np.signbit(y[1:4]).any() and (y[1:4] == 0).all()
    assert y[4] == 65504.0 and y[5] == 0


def test_gpu_keywords():
    cp, rc = _gpu()
    x = cp.asarray([-2.0, -0.0, 0.5, np.nan, np.inf, -np.inf], cp.float32)
    y = x.copy()
    assert rc.relu(y, out=y) is y                                       # in place
    assert _reference.same_bits(cp.asnumpy(y), ru.relu(cp.asnumpy(x)))
    z = cp.empty_like(x)
    assert rc.relu(x, out=(z,)) is z                                    # out as a tuple
    assert _reference.same_bits(cp.asnumpy(z), ru.relu(cp.asnumpy(x)))
    # where=: unselected entries of out keep their values, also through a cast
    for out_dtype in (cp.float32, cp.float64):
        out = cp.full(6, 7.0, out_dtype)
        mask = cp.asarray([True, False] * 3)
        assert rc.relu(x, out=out, where=mask) is out
        expected = np.full(6, 7.0, out_dtype)
        ru.relu(cp.asnumpy(x), out=expected, where=cp.asnumpy(mask))
        assert _reference.same_bits(cp.asnumpy(out), expected), out_dtype
    out = cp.full(6, 7.0, cp.float32)
    rc.relu(x, out=out, where=False)
    assert (out == 7).all()
    # dtype= and NumPy's type resolution
    assert rc.relu(cp.asarray([-1, 2], cp.int8), dtype=cp.float32).dtype == cp.float32
    assert rc.relu_backward(cp.ones(3, cp.float16), cp.ones(3, cp.float32)).dtype == cp.float32
    assert rc.relu_backward(cp.ones(3, cp.float32), 2.0).dtype == cp.float32     # NEP 50
    assert rc.leaky_relu(cp.asarray([-2.0, 3.0], cp.float16), 0.5).dtype == cp.float16
    assert cp.asnumpy(rc.leaky_relu(cp.asarray([-2.0, 3.0], cp.float16), 0.5)).tolist() == [-1, 3]
    # broadcasting, with out too
    assert rc.relu_backward(cp.ones((3, 1)), cp.ones((1, 4))).shape == (3, 4)
    out = cp.empty((3, 4))
    assert rc.relu_backward(cp.ones((3, 1)), -cp.ones(4), out=out) is out
    assert (out == 0).all() and not cp.signbit(out).any()
    # PReLU: one slope per channel
    x2 = cp.asarray([[-1.0, -1.0], [2.0, -4.0]])
    assert cp.asnumpy(rc.leaky_relu(x2, cp.asarray([0.1, 0.5]))).tolist() == [[-0.1, -0.5],
                                                                              [2.0, -2.0]]
    # non-contiguous 2-d inputs (transposed, sliced)
    m = cp.asarray(random_values(np.random.default_rng(1), "f", 60).reshape(6, 10))
    assert _reference.same_bits(cp.asnumpy(rc.relu(m.T[::2, 1:])),
                                ru.relu(cp.asnumpy(m).T[::2, 1:]))
    assert ru.get_array_module(x) is rc
    # Python scalars only: a 0-d array; a Python int with an array keeps its dtype
    zero = rc.relu(-2.0)
    assert zero.shape == () and zero.dtype == cp.float64 and float(zero) == 0
    assert rc.relu_backward(cp.asarray([5, 6], cp.int8), -1).tolist() == [0, 0]
    assert rc.relu_backward(cp.asarray([5, 6], cp.int8), -1).dtype == cp.int8


def test_gpu_bad_input_gets_numpy_errors_and_modifies_nothing():
    cp, rc = _gpu()
    x = cp.asarray([-1.0, 2.0], cp.float32)
    with pytest.raises(TypeError, match="relu_ufunc.relu"):
        rc.relu(np.ones(3))
    out = cp.full(3, 5.0, cp.float32)
    with pytest.raises(ValueError, match="non-broadcastable output"):
        rc.relu(x, out=out)
    assert (out == 5).all()
    out = cp.full(2, 5, cp.int8)
    with pytest.raises(TypeError, match="Cannot cast"):
        rc.relu(x, out=out)
    assert (out == 5).all()
    with pytest.raises(TypeError, match="not supported"):
        rc.leaky_relu(cp.asarray([1, 2], cp.complex64), 0.1)
    with pytest.raises(ValueError):
        rc.relu_backward(cp.ones(3), cp.ones(4))
    with pytest.raises(OverflowError):                  # as NumPy (NEP 50)
        rc.relu_backward(cp.ones(3, cp.int8), 300)


def test_gpu_kernels_compile_once_per_dtype():
    """The element kernel once per (function, dtype, where); the contiguous
    kernels once per dtype: every function's kernels share one module."""
    cp, rc = _gpu()
    rc._kernel.cache_clear()
    for _ in range(3):
        rc.relu(cp.ones(5, cp.float32))              # contiguous: raw kernel
        rc.relu(cp.ones(5, cp.float64))
        rc.relu(cp.ones(9, cp.float32)[1:])          # misaligned: raw kernel, element loop
        rc.relu(cp.ones(9, cp.float32)[::2])         # strided: element kernel
        rc.relu_backward(cp.ones(5, cp.float32), cp.ones(5, cp.float32))
    assert rc._kernel.cache_info().currsize == 1
    f32 = np.dtype(np.float32)
    relu, back = rc._raw_kernel("relu", f32, "a"), rc._raw_kernel("relu_backward", f32, "aa")
    assert relu.kernel is relu.kernel                # compiled once, then cached
    assert relu.kernel.module is back.kernel.module  # one module per dtype
    assert relu.kernel.module is not rc._raw_kernel("relu", np.dtype(np.float64), "a").kernel.module


def _torch():
    cp, rc = _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    return cp, rc, torch


def _host(t):
    return t.detach().cpu().numpy()


def test_gpu_torch_tensors_without_copy():
    cp, rc, torch = _torch()
    for dtype in (torch.float16, torch.float32, torch.float64):
        t = torch.tensor([-1.0, 2.0, -0.0, float("nan")], device="cuda", dtype=dtype)
        got = rc.relu(t)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.device == t.device
        assert got.data_ptr() != t.data_ptr()
        rc.relu(t, out=t)                        # writes the tensor's own memory
        r = _host(t)
        assert r[:3].tolist() == [0.0, 2.0, 0.0] and np.isnan(r[3]) and not np.signbit(r[2])
        assert _reference.same_bits(_host(got), r)


def test_gpu_torch_tensors_every_function_and_path():
    """Bit for bit against the CPU ufuncs: the fast path (contiguous), the
    general one (strided, broadcast, where=), out= a tensor, alpha a float,
    and torch and CuPy arrays mixed."""
    cp, rc, torch = _torch()
    rng = np.random.default_rng(17)
    for name in _cuda_kernels.GPU_CHARS:
        for char in _chars(name):
            if char in "HILQ":           # torch's uint16/32/64 lack most kernels
                continue
            host = _args(name, rng, char, 1001)
            dev = [torch.as_tensor(a).cuda() for a in host]
            with np.errstate(all="ignore"):
                expected = getattr(ru, name)(*host)
                strided = getattr(ru, name)(*[a[::2] for a in host])
            got = getattr(rc, name)(*dev)
            assert isinstance(got, torch.Tensor), (name, char)
            assert _reference.same_bits(_host(got), expected), (name, char)
            out = torch.empty_like(dev[0])
            assert getattr(rc, name)(*dev, out=out) is out
            assert _reference.same_bits(_host(out), expected), (name, char)
            got = getattr(rc, name)(*[a[::2] for a in dev])
            assert isinstance(got, torch.Tensor) and got.is_contiguous()
            assert _reference.same_bits(_host(got), strided), (name, char)
            if len(dev) == 2:
                mixed = getattr(rc, name)(cp.asarray(host[0]), dev[1])
                assert isinstance(mixed, torch.Tensor)
                assert _reference.same_bits(_host(mixed), expected), (name, char)
    t = torch.tensor([-2.0, 3.0], device="cuda")
    assert _host(rc.leaky_relu(t, 0.5)).tolist() == [-1.0, 3.0]
    o = torch.full((2, 2), 7.0, device="cuda")
    rc.relu_backward(torch.ones(2, 1, device="cuda"), torch.tensor([-1.0, 1.0], device="cuda"),
                     out=o, where=torch.tensor([True, False], device="cuda"))
    assert _host(o).tolist() == [[0.0, 7.0], [0.0, 7.0]]


def test_gpu_torch_runs_on_torchs_current_stream_without_a_sync():
    """On a side stream the GPU sleeps, then a copy fills t.  A kernel on any
    other stream would read t before the copy (the sentinel 7.0); on torch's
    current stream it reads the copy.  And each call returns while the sleep
    still runs: no host synchronization."""
    cp, rc, torch = _torch()
    sleep = getattr(torch.cuda, "_sleep", None)
    if sleep is None:
        pytest.skip("torch.cuda._sleep is gone")
    h = random_values(np.random.default_rng(4), "f", 4099)
    src = torch.tensor(h, device="cuda")
    side = torch.cuda.Stream()
    cases = {"fast": (lambda t: rc.relu(t), ru.relu(h)),
             "fast, out=": (lambda t: rc.relu(t, out=torch.empty_like(t)), ru.relu(h)),
             "general (strided)": (lambda t: rc.relu(t[::2]), ru.relu(h[::2])),
             "two inputs": (lambda t: rc.relu_backward(t, t), ru.relu_backward(h, h))}
    for why, (call, want) in cases.items():
        t = torch.full_like(src, 7.0)
        with torch.cuda.stream(side):
            call(t)                    # compile; torch caches blocks for this stream
        torch.cuda.synchronize()
        with torch.cuda.stream(side):
            sleep(5 * 10**8)           # a few hundred ms of GPU time
            t.copy_(src)
            got = call(t)
            assert not side.query(), f"{why}: the call waited for the GPU"
        side.synchronize()
        assert _reference.same_bits(_host(got), want), why


def test_gpu_torch_tensors_that_require_grad_are_refused():
    cp, rc, torch = _torch()
    t = torch.tensor([-1.0, 2.0], device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match=r"x is a tensor that requires grad.*not an autograd"):
        rc.relu(t)
    with pytest.raises(RuntimeError, match="out is a tensor that requires grad"):
        rc.relu(t.detach(), out=t)
    with pytest.raises(RuntimeError, match="dy is a tensor that requires grad"):
        rc.relu_backward(t, t.detach())
    assert _host(rc.relu(t.detach())).tolist() == [0.0, 2.0]
    with pytest.raises(TypeError, match="CUDA tensors"):
        rc.relu(torch.ones(3))


def test_gpu_fast_path_takes_the_common_calls(monkeypatch):
    """CuPy arrays of one dtype and shape, contiguous (aligned or not), with
    out= or not, positional out, in place, alpha a float: one raw launch,
    never the general path; bit for bit against the CPU ufuncs."""
    cp, rc = _gpu()

    def general(*args):
        raise AssertionError(f"general path for {args[0]}")
    rng = np.random.default_rng(11)
    for name in _cuda_kernels.GPU_CHARS:
        for char in _chars(name):
            host = _args(name, rng, char, 1003)
            for start in (0, 1):
                h = [a[start:] for a in host]
                d = [cp.asarray(a)[start:] for a in host]
                cases = [(h, d)]
                if name != "relu" and ru.__dict__[name].nin == 2 and char in "efd":
                    cases.append(([h[0], 0.25], [d[0], 0.25]))
                for hargs, dargs in cases:
                    with np.errstate(all="ignore"):
                        expected = getattr(ru, name)(*hargs)
                    monkeypatch.setattr(rc, "_general", general)
                    got = getattr(rc, name)(*dargs)
                    out = cp.empty(got.shape, got.dtype)
                    assert getattr(rc, name)(*dargs, out=out) is out
                    pos = cp.empty(got.shape, got.dtype)
                    assert getattr(rc, name)(*dargs, pos) is pos
                    inplace = dargs[0].copy()
                    assert getattr(rc, name)(inplace, *dargs[1:], out=inplace) is inplace
                    monkeypatch.undo()
                    for r in (got, out, pos, inplace):
                        assert _reference.same_bits(cp.asnumpy(r), expected), (name, char, start)
    x = cp.zeros(0, cp.float32)
    monkeypatch.setattr(rc, "_general", general)
    assert rc.relu(x).shape == (0,) and rc.relu(x, out=x) is x
    assert float(rc.relu(cp.full((), -1.0, cp.float32))) == 0


def test_gpu_general_path_takes_the_rest(monkeypatch):
    cp, rc = _gpu()
    seen = []
    general = rc._general
    monkeypatch.setattr(rc, "_general", lambda *a: seen.append(a[0]) or general(*a))
    x = cp.arange(-4, 4, dtype=cp.float32)
    rc.relu(x[::2])                                            # strided
    rc.relu(x, out=cp.zeros(8, cp.float32), where=x > 0)       # where=
    rc.relu(x, dtype=cp.float64)                               # dtype=
    rc.relu_backward(x, x[:1])                                 # broadcasting
    rc.relu_backward(x, x.astype(cp.float64))                  # two dtypes
    rc.relu(x > 0)                                             # bool: the int8 loop
    rc.relu(x, out=cp.zeros(8, cp.float64))                    # out of another dtype
    rc.relu(x[:-1], out=x[1:])                                 # overlapping out
    rc.leaky_relu(x, 1)                                        # int alpha
    assert len(seen) == 9


def _reset_inputs(cp, stream, arrays, values):
    with stream:
        for a, v in zip(arrays, values):
            a[...] = cp.asarray(v)


def _graph_calls(cp, rc, rng, n=4099):
    """(inputs, their host values, calls with out=, expected results)."""
    x_h, dy_h = random_values(rng, "f", n), random_values(rng, "f", n)
    h16, hs = random_values(rng, "e", n), random_values(rng, "f", 2 * n)
    x, dy, x16, xs = (cp.asarray(a) for a in (x_h, dy_h, h16, hs))
    outs = [cp.empty(n, cp.float32) for _ in range(6)] + [cp.empty(n, cp.float16)]
    calls = [lambda: rc.relu(x, out=outs[0]),
             lambda: rc.relu_grad(x, out=outs[1]),
             lambda: rc.relu_backward(dy, x, out=outs[2]),
             lambda: rc.leaky_relu(x, 0.1, out=outs[3]),
             lambda: rc.leaky_relu_grad(x, dy, out=outs[4]),
             lambda: rc.relu(xs[::2], out=outs[5]),             # the general path
             lambda: rc.relu(x16, out=outs[6])]

    def expected(x_h, dy_h, h16, hs):
        with np.errstate(all="ignore"):
            return [ru.relu(x_h), ru.relu_grad(x_h), ru.relu_backward(dy_h, x_h),
                    ru.leaky_relu(x_h, np.float32(0.1)), ru.leaky_relu_grad(x_h, dy_h),
                    ru.relu(hs[::2]), ru.relu(h16)]
    return (x, dy, x16, xs), (x_h, dy_h, h16, hs), calls, outs, expected


def _capture(cp, stream, calls, mode=None):
    stream.begin_capture(mode)
    try:
        for c in calls:
            c()
    except BaseException:
        try:
            stream.end_capture()
        except Exception:
            pass
        raise
    return stream.end_capture()


def test_gpu_calls_with_out_replay_in_a_cuda_graph():
    """rc.*(..., out=y) captured in a CuPy graph; replaying it on new inputs
    gives the CPU ufuncs' bits, and replaying it again the same bits."""
    cp, rc = _gpu()
    rng = np.random.default_rng(21)
    inputs, values, calls, outs, expected = _graph_calls(cp, rc, rng)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        for c in calls:                          # compile outside the capture
            c()
        stream.synchronize()
        graph = _capture(cp, stream, calls)
    for trial in range(2):
        new = [random_values(rng, v.dtype, v.size) for v in values]
        _reset_inputs(cp, stream, inputs, new)
        graph.launch(stream=stream)
        stream.synchronize()
        first = [cp.asnumpy(o) for o in outs]
        for k, (got, want) in enumerate(zip(first, expected(*new))):
            assert _reference.same_bits(got, want), (trial, k)
        graph.launch(stream=stream)
        stream.synchronize()
        for k, (got, again) in enumerate(zip(first, [cp.asnumpy(o) for o in outs])):
            assert _reference.same_bits(again, got), (trial, k)


def test_gpu_calls_with_out_allocate_nothing_and_never_sync():
    """Captured in global mode, where CUDA refuses any synchronizing or
    unsafe call (cudaMalloc, a sync, a blocking copy) from any thread, with an
    allocator that raises: the calls with out= do neither."""
    cp, rc = _gpu()
    inputs, values, calls, outs, expected = _graph_calls(cp, rc, np.random.default_rng(5))

    def no_alloc(size):
        raise AssertionError(f"relu_ufunc.cuda allocated {size} bytes")
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        for c in calls:
            c()
        stream.synchronize()
        with cp.cuda.using_allocator(no_alloc):
            graph = _capture(cp, stream, calls, cp.cuda.runtime.streamCaptureModeGlobal)
        graph.launch(stream=stream)
        stream.synchronize()
    for k, (got, want) in enumerate(zip(outs, expected(*values))):
        assert _reference.same_bits(cp.asnumpy(got), want), k


def test_gpu_user_kernel_fuses_bias_and_relu_with_the_header():
    """The GPU docs' pattern: a user's ElementwiseKernel that includes the
    header (by -I get_include(), or as text) and calls relu_f32(x + b).  Its
    result has the bits of rc.relu(x + b), in one pass."""
    cp, rc = _gpu()
    rng = np.random.default_rng(8)
    x = cp.asarray(random_values(rng, "f", 64 * 33).reshape(64, 33))
    b = cp.asarray(random_values(rng, "f", 33))
    dy = cp.asarray(random_values(rng, "f", 64 * 33).reshape(64, 33))
    header = open(f"{ru.get_include()}/relu_ufunc.h").read()
    kernels = [cp.ElementwiseKernel("float32 x, float32 b", "float32 y", "y = relu_f32(x + b)",
                                    "user_bias_relu_include", preamble='#include "relu_ufunc.h"',
                                    options=("-I" + ru.get_include(),)),
               cp.ElementwiseKernel("float32 x, float32 b", "float32 y", "y = relu_f32(x + b)",
                                    "user_bias_relu_text", preamble=header)]
    for k in kernels:
        got = k(x, b)
        assert _reference.same_bits(cp.asnumpy(got), cp.asnumpy(rc.relu(x + b)))
    back = cp.ElementwiseKernel("float32 dy, float32 x, float32 b", "float32 dx",
                                "dx = relu_backward_f32(dy, x + b)", "user_bias_relu_backward",
                                preamble=header)
    assert _reference.same_bits(cp.asnumpy(back(dy, x, b)),
                                cp.asnumpy(rc.relu_backward(dy, x + b)))
    x64, b64 = x.astype(cp.float64), b.astype(cp.float64)
    leaky = cp.ElementwiseKernel("float64 x, float64 b, float64 alpha", "float64 y",
                                 "y = leaky_relu_f64(x + b, alpha)", "user_bias_leaky",
                                 preamble=header)
    assert _reference.same_bits(cp.asnumpy(leaky(x64, b64, 0.1)),
                                cp.asnumpy(rc.leaky_relu(x64 + b64, 0.1)))


def test_gpu_cupy_fuse_gets_a_clear_error():
    cp, rc = _gpu()

    @cp.fuse()
    def bias_relu(x, b):
        return rc.relu(x + b)
    with pytest.raises(TypeError, match=r"cannot be traced by cupy\.fuse"):
        bias_relu(cp.ones(3, cp.float32), cp.ones(3, cp.float32))
    assert cp.asnumpy(cp.add(cp.ones(2), 1)).tolist() == [2.0, 2.0]   # CuPy still works


def test_gpu_numba_device_arrays_without_copy():
    cp, rc = _gpu()
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("numba.cuda without a GPU")
    d = cuda.to_device(np.asarray([-1.0, 3.0], np.float32))
    rc.relu(d, out=d)
    assert d.copy_to_host().tolist() == [0.0, 3.0]


@pytest.mark.parametrize("name", list(_cuda_kernels.GPU_CHARS))
def test_gpu_bfloat16_every_pattern(name):
    """ml_dtypes' bfloat16 on the GPU: every one of its 2^16 bit patterns
    (against random partners for two inputs, and a Python float alpha),
    contiguous (the fast path) and reversed (the general path), bit for bit
    the CPU ufunc's and of its dtype (docs/gpu.md)."""
    cp, rc = _gpu()
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(5)
    x = np.arange(2 ** 16, dtype=np.uint16).view(bf)
    other = rng.integers(0, 2 ** 16, x.size).astype(np.uint16).view(bf)
    nin = ru.__dict__[name].nin
    calls = [[x]] if nin == 1 else [[other, x] if name == "relu_backward" else [x, other]]
    if name.startswith("leaky"):
        calls.append([x, 0.01])
    for args in calls:
        dev = [cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        with np.errstate(all="ignore"):
            expected = getattr(ru, name)(*args)
        got = getattr(rc, name)(*dev)
        assert got.dtype == bf
        assert _reference.same_bits(cp.asnumpy(got), expected), name
        rev = [a[::-1] if isinstance(a, np.ndarray) else a for a in args]
        with np.errstate(all="ignore"):
            expected = getattr(ru, name)(*rev)
        got = getattr(rc, name)(*[a[::-1] if not isinstance(a, float) else a for a in dev])
        assert _reference.same_bits(cp.asnumpy(got), expected), (name, "reversed")
