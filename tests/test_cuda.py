"""relu_ufunc.cuda.  Without a GPU: the ImportError, get_array_module, and the
dtype resolution and kernels planned for the GPU.  With CuPy and a GPU: the
value table bit for bit against the CPU ufuncs, and the keywords."""
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc import _cuda_plan, _reference
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
    for name in _cuda_plan.GPU_CHARS:
        for t in getattr(ru, name).types:
            if "g" not in t:
                dts = [np.dtype(t[0])] * (len(t) - 3)
                assert r(name, dts) == np.dtype(t[-1])
    for bad in ("g", "F", "U", "O", "M"):
        with pytest.raises(TypeError, match="not supported"):
            r("relu", [np.dtype(bad)])


def test_gpu_kernels_call_the_header_formulas():
    assert _cuda_plan.kernel_spec("relu", np.float16, False) == (
        "uint16 x", "uint16 y", "y = relu_f16(x)", "relu_ufunc_relu_f16")
    assert _cuda_plan.kernel_spec("relu_backward", np.float32, True) == (
        "float32 dy, float32 x, bool m", "float32 y", "if (m) y = relu_backward_f32(dy, x)",
        "relu_ufunc_relu_backward_f32_where")


def test_kernels_construct_with_cupy_without_a_device():
    """CuPy parses every planned kernel's parameters (no device needed)."""
    pytest.importorskip("cupy")
    import relu_ufunc.cuda as rc
    for name, chars in _cuda_plan.GPU_CHARS.items():
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


@pytest.mark.parametrize("name", list(_cuda_plan.GPU_CHARS))
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


@pytest.mark.parametrize("name", list(_cuda_plan.GPU_CHARS))
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


@pytest.mark.parametrize("name", list(_cuda_plan.GPU_CHARS))
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
        width = _cuda_plan.vector_width(char)
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
    cp, rc = _gpu()
    rc._kernel.cache_clear()
    rc._vector_kernel.cache_clear()
    for _ in range(3):
        rc.relu(cp.ones(5, cp.float32))              # vector kernel
        rc.relu(cp.ones(5, cp.float64))
        rc.relu(cp.ones(9, cp.float32)[1:])          # misaligned: element kernel
    assert rc._kernel.cache_info().currsize == 1
    assert rc._vector_kernel.cache_info().currsize == 2


def test_gpu_torch_tensors_without_copy():
    cp, rc = _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    for dtype in (torch.float16, torch.float32, torch.float64):
        t = torch.tensor([-1.0, 2.0, -0.0, float("nan")], device="cuda", dtype=dtype)
        got = rc.relu(t)
        assert got.dtype == np.dtype(str(dtype).split(".")[1])
        rc.relu(t, out=t)                        # writes the tensor's own memory
        r = t.cpu().numpy()
        assert r[:3].tolist() == [0.0, 2.0, 0.0] and np.isnan(r[3]) and not np.signbit(r[2])
        assert _reference.same_bits(cp.asnumpy(got), r)


def test_gpu_numba_device_arrays_without_copy():
    cp, rc = _gpu()
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("numba.cuda without a GPU")
    d = cuda.to_device(np.asarray([-1.0, 3.0], np.float32))
    rc.relu(d, out=d)
    assert d.copy_to_host().tolist() == [0.0, 3.0]
