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


def test_gpu_bit_identical_to_cpu():
    cp, rc = _gpu()
    rng = np.random.default_rng(3)
    for name in ("relu", "relu_grad", "relu_backward"):
        for char in GPU_CHARS:
            x = random_values(rng, char, 4099)
            args = [x] if name != "relu_backward" else [random_values(rng, char, 4099), x]
            got = getattr(rc, name)(*[cp.asarray(a) for a in args])
            assert _reference.same_bits(cp.asnumpy(got), getattr(ru, name)(*args)), (name, char)
            strided = getattr(rc, name)(*[cp.asarray(a)[::3] for a in args])
            expected = getattr(ru, name)(*[a[::3] for a in args])
            assert _reference.same_bits(cp.asnumpy(strided), expected), (name, char)


def test_gpu_keywords():
    cp, rc = _gpu()
    x = cp.asarray([-2.0, -0.0, 0.5, np.nan, np.inf, -np.inf], cp.float32)
    y = x.copy()
    assert rc.relu(y, out=y) is y
    assert _reference.same_bits(cp.asnumpy(y), ru.relu(cp.asnumpy(x)))
    out = cp.full(6, 7.0, cp.float32)
    mask = cp.asarray([True, False] * 3)
    rc.relu(x, out=out, where=mask)
    assert (cp.asnumpy(out)[1::2] == 7).all()
    assert rc.relu(cp.asarray([-1, 2], cp.int8), dtype=cp.float32).dtype == cp.float32
    assert rc.relu_backward(cp.ones((3, 1)), cp.ones((1, 4))).shape == (3, 4)
    assert rc.relu_backward(cp.ones(3, cp.float32), 2.0).dtype == cp.float32
    with pytest.raises(TypeError, match="relu_ufunc.relu"):
        rc.relu(np.ones(3))
    assert ru.get_array_module(x) is rc


def test_gpu_torch_tensors_without_copy():
    cp, rc = _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = torch.tensor([-1.0, 2.0], device="cuda")
    rc.relu(t, out=t)
    assert t.tolist() == [0.0, 2.0]
