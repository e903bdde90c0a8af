"""relu_ufunc.cuda's host-side logic, without a GPU: which calls take the fast
path and what it launches, the checks on PyTorch tensors and the choice of
stream, and the raw kernels' sources (compiled by NVRTC where CuPy ships it).

The fast path is tested on two kinds of arrays: a small stand-in class with
the attributes the decision reads, and, where CuPy is installed, real
cupy.ndarray objects over made-up device pointers (CuPy builds arrays and
views without touching a device).  The kernels are recorders."""
import subprocess
import sys
import types

import numpy as np
import pytest

from relu_ufunc import _cuda_kernels, _cuda_plan, _reference
from relu_ufunc._spec import ML_TYPES, UFUNCS

try:     # the GPU has kernels for ml_dtypes' bfloat16 once ml_dtypes is imported
    import ml_dtypes  # noqa: F401  (a test extra: CI always has it)
except ImportError:
    ml_dtypes = None

F4, F2, F8, I1 = (np.dtype(c) for c in ("float32", "float16", "float64", "int8"))
BASE = 0x7F0000000000          # a made-up device address, 256-byte aligned


class Recorder:
    """Stands in for a cupy.RawKernel: records each launch."""

    def __init__(self, label):
        self.label, self.calls = label, []

    def __call__(self, grid, block, args):
        self.calls.append((grid, block, args))


class FakeMemory:
    def __init__(self, ptr, device_id):
        self.ptr, self.device_id = ptr, device_id


class FakeArray:
    """The attributes of a cupy.ndarray that the fast path reads."""

    def __init__(self, shape, dtype, ptr, contiguous=True, device=0):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.size = int(np.prod(self.shape))
        self._c_contiguous = contiguous
        self.data = FakeMemory(ptr, device)


class FakeSubclass(FakeArray):
    pass


def ptr(a):
    """The device pointer the kernel gets for an array."""
    return a.data.ptr


class FakeKind:
    ndarray = FakeArray

    def array(self, n, dtype, offset=0, device=0, shape=None):
        return FakeArray(shape or (n,), dtype, BASE + offset, device=device)

    def strided(self, n, dtype):
        return FakeArray((n,), dtype, BASE, contiguous=False)

    def subclass(self, n, dtype):
        return FakeSubclass((n,), dtype, BASE)


class CupyKind:
    """Real cupy.ndarray objects over made-up device memory."""

    def __init__(self, cp):
        self.cp = cp
        self.ndarray = cp.ndarray

    def _memory(self, offset, nbytes, device):
        from cupy.cuda import memory
        return memory.MemoryPointer(memory.UnownedMemory(BASE + offset, nbytes, None, device), 0)

    def array(self, n, dtype, offset=0, device=0, shape=None, cls=None):
        dtype = np.dtype(dtype)
        return (cls or self.cp.ndarray)(shape or (n,), dtype,
                                        memptr=self._memory(offset, n * dtype.itemsize, device))

    def strided(self, n, dtype):
        return self.array(2 * n, dtype)[::2]

    def subclass(self, n, dtype):
        class Sub(self.cp.ndarray):
            pass
        return self.array(n, dtype, cls=Sub)


@pytest.fixture(params=["fake", "cupy"])
def kind(request):
    if request.param == "fake":
        return FakeKind()
    return CupyKind(pytest.importorskip("cupy"))


def tables(name):
    """The fast-path tables of `name`, with recorders for kernels."""
    arrays = {d: _cuda_plan.fast_entry(Recorder((name, d.name, "a" * UFUNCS[name][0])), d)
              for d in _cuda_plan.fast_dtypes(name)}
    scalars = {d: _cuda_plan.fast_entry(Recorder((name, d.name, "as")), d)
               for d in _cuda_plan.fast_dtypes(name, scalar=True)}
    return arrays, scalars


def make(kind, name, device=0):
    arrays, scalars = tables(name)
    made = []

    def empty(shape, dtype):
        y = kind.array(int(np.prod(shape)), dtype, offset=1 << 20, shape=shape)
        made.append(y)
        return y
    fast = _cuda_plan.make_cupy_fast(UFUNCS[name][0], kind.ndarray, arrays, scalars,
                                     lambda: device, empty)
    return (lambda *inputs_and_out: fast(inputs_and_out[:-1], inputs_and_out[-1])), arrays, \
        scalars, made


def launches(table):
    return [c for entry in table.values() for c in entry[0].calls]


@pytest.mark.parametrize("n", [1, 511, 512, 513, 10**6])
def test_fast_relu_launches_once_with_a_grid_from_n(kind, n):
    fast, arrays, _, made = make(kind, "relu")
    x = kind.array(n, F4)
    y = fast(x, None)
    assert made == [y] and y.shape == x.shape and y.dtype == F4
    (grid, block, args), = arrays[F4][0].calls
    assert block == (128,) and grid == (-(-n // 512),)      # 128 threads x 4 floats
    assert args[0] == ptr(x) and args[1] == ptr(y) and args[2] == n and type(args[2]) is int
    assert launches(arrays) == arrays[F4][0].calls


def test_fast_grid_follows_the_vector_width(kind):
    fast, arrays, _, _ = make(kind, "relu")
    for dtype, per_block in [(I1, 128 * 16), (F2, 128 * 8), (F8, 128 * 2)]:
        fast(kind.array(10**5, dtype), None)
        (grid, _, _), = arrays[dtype][0].calls
        assert per_block == _cuda_kernels.per_block(dtype)
        assert grid == (-(-10**5 // per_block),) == _cuda_kernels.grid(10**5, per_block)


def test_fast_out_in_place_disjoint_or_adjacent(kind):
    fast, arrays, _, made = make(kind, "relu")
    n = 100
    x = kind.array(n, F4)
    assert fast(x, x) is x                                     # in place
    y = kind.array(n, F4, offset=4 * n)                        # right after x
    assert fast(x, y) is y
    y = kind.array(n, F4, offset=1 << 16)                      # far away
    assert fast(x, y) is y
    x2 = kind.array(n, F4, offset=4 * n)                       # out right before x2
    assert fast(x2, x) is x
    assert len(arrays[F4][0].calls) == 4 and made == []


def test_fast_refuses_what_needs_the_general_path(kind):
    fast, arrays, _, made = make(kind, "relu")
    n = 100
    x = kind.array(n, F4)
    refused = {
        "partial overlap ahead": (x, kind.array(n, F4, offset=4)),
        "partial overlap behind": (kind.array(n, F4, offset=4), kind.array(n, F4)),
        "out of another dtype": (x, kind.array(n, F8, offset=4096)),
        "out of another shape": (x, kind.array(n, F4, offset=4096, shape=(n, 1))),
        "strided out": (x, kind.strided(n, F4)),
        "out on another device": (x, kind.array(n, F4, offset=4096, device=1)),
        "out as a tuple": (x, (x,)),
        "strided input": (kind.strided(n, F4), None),
        "input on another device": (kind.array(n, F4, device=1), None),
        "bool input (the int8 loop, a cast)": (kind.array(n, np.bool_), None),
        "a subclass": (kind.subclass(n, F4), None),
        "a Python scalar": (2.0, None),
        "a NumPy array": (np.ones(3, F4), None),
    }
    for why, (a, out) in refused.items():
        assert fast(a, out) is None, why
    assert launches(arrays) == [] and made == []


def test_fast_empty_arrays_launch_nothing(kind):
    fast, arrays, _, made = make(kind, "relu_grad")
    x = kind.array(0, F4)
    assert fast(x, None) is made[0] and made[0].size == 0
    assert fast(x, x) is x
    assert launches(arrays) == []


def test_fast_two_inputs(kind):
    fast, arrays, scalars, made = make(kind, "relu_backward")
    n = 1000
    dy, x = kind.array(n, F4), kind.array(n, F4, offset=4096)
    y = fast(dy, x, None)
    (grid, _, args), = arrays[F4][0].calls
    assert args == (ptr(dy), ptr(x), ptr(y), n)
    assert fast(dy, x, x) is x and fast(dy, x, dy) is dy          # in place on either
    refused = {
        "two dtypes": (dy, kind.array(n, F8, offset=8192), None),
        "broadcasting": (dy, kind.array(1, F4, offset=8192), None),
        "a strided second input": (dy, kind.strided(n, F4), None),
        "second input on another device": (dy, kind.array(n, F4, offset=8192, device=1), None),
        "out overlapping the second input": (dy, x, kind.array(n, F4, offset=4100)),
        "out overlapping the first input": (dy, x, kind.array(n, F4, offset=8)),
        "a Python int": (dy, 2, None),
        "a NumPy scalar": (dy, np.float32(2), None),
    }
    for why, (a, b, out) in refused.items():
        assert fast(a, b, out) is None, why
    assert len(arrays[F4][0].calls) == 3 and len(made) == 1


@pytest.mark.parametrize("dtype", [F2, F4, F8])
def test_fast_leaky_takes_a_python_float_alpha_by_value(kind, dtype):
    fast, arrays, scalars, _ = make(kind, "leaky_relu")
    x = kind.array(10, dtype)
    y = fast(x, 0.1, None)
    (_, _, args), = scalars[dtype][0].calls
    assert args[0] == ptr(x) and args[2] == ptr(y) and args[3] == 10
    # alpha as the loop's own type, rounded as NumPy casts a Python float (NEP 50)
    assert type(args[1]) is dtype.type and args[1] == np.asarray(0.1, dtype)[()]
    assert launches(arrays) == []


def test_fast_tables_agree_with_numpy_resolution():
    """A dtype is in the fast table exactly when NumPy's resolution picks its
    own loop: the fast path never changes a result's dtype."""
    for name, (nin, chars) in UFUNCS.items():
        fast = _cuda_plan.fast_dtypes(name)
        for c in "?bBhHiIlLqQefdgFD":
            d = np.dtype(c)
            try:
                own = _cuda_plan.resolve(name, [d] * nin) == d
            except TypeError:
                own = False
            assert (d in fast) == own, (name, c)
        for d in _cuda_plan.fast_dtypes(name, scalar=True):
            assert nin == 2 and _cuda_plan.resolve(name, [d, float]) == d
    ml = _cuda_kernels.ml_gpu_dtypes()            # bfloat16, where ml_dtypes is
    assert _cuda_plan.fast_dtypes("leaky_relu", scalar=True) == [F2, F4, F8] + ml
    assert np.dtype(np.bool_) not in _cuda_plan.fast_dtypes("relu")
    for name in UFUNCS:
        assert all(d in _cuda_plan.fast_dtypes(name) for d in ml), name


# ---- PyTorch: device, grad, stream -------------------------------------------------

class FakeDevice:
    def __init__(self, type_, index):
        self.type, self.index = type_, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


class FakeTensor:
    def __init__(self, n=4, dtype="f4", device=0, requires_grad=False, ptr=BASE,
                 contiguous=True, shape=None):
        self.dtype, self.shape = dtype, tuple(shape or (n,))
        self.requires_grad = requires_grad
        self.is_cuda = device is not None
        self.device = FakeDevice("cuda", device) if self.is_cuda else FakeDevice("cpu", None)
        self._ptr, self._n, self._contiguous = ptr, n, contiguous

    def is_contiguous(self):
        return self._contiguous

    def data_ptr(self):
        return self._ptr

    def numel(self):
        return self._n


def fake_torch():
    asked = []

    def current_stream(device=None):
        asked.append(device)
        return types.SimpleNamespace(cuda_stream=0x5000 + (device or 0))

    made = []

    def empty_like(t, memory_format=None):
        y = FakeTensor(t.numel(), t.dtype, t.device.index, ptr=BASE + (1 << 20), shape=t.shape)
        made.append((y, memory_format))
        return y
    torch = types.SimpleNamespace(
        Tensor=FakeTensor, cuda=types.SimpleNamespace(current_stream=current_stream),
        empty_like=empty_like, contiguous_format="contiguous_format",
        float32="torch.float32", float16="torch.float16", int8="torch.int8")
    return torch, asked, made


def named(**kw):
    return list(kw.items())


def test_torch_tensors_are_found_only_where_torch_is():
    torch, _, _ = fake_torch()
    assert _cuda_plan.torch_tensors(torch, [1.0, None, FakeTensor()])
    assert not _cuda_plan.torch_tensors(torch, [1.0, None, FakeArray((2,), F4, BASE)])
    assert not _cuda_plan.torch_tensors(types.SimpleNamespace(), [FakeTensor()])


def test_torch_device_and_stream_come_from_the_tensors():
    torch, asked, _ = fake_torch()
    args = named(x=FakeTensor(device=1), alpha=0.1, out=FakeTensor(device=1), where=True)
    device = _cuda_plan.torch_device(torch, "leaky_relu", args)
    assert device == 1
    assert _cuda_plan.torch_stream_ptr(torch, device) == 0x5001 and asked == [1]
    assert _cuda_plan.torch_device(torch, "relu", named(x=FakeArray((2,), F4, BASE))) is None


def test_torch_tensor_that_requires_grad_is_a_clear_error():
    torch, _, _ = fake_torch()
    with pytest.raises(RuntimeError, match=r"dy is a tensor that requires grad.*not an "
                                           r"autograd operation.*dy\.detach\(\)"):
        _cuda_plan.torch_device(torch, "relu_backward",
                                named(dy=FakeTensor(requires_grad=True), x=FakeTensor()))
    with pytest.raises(RuntimeError, match="out is a tensor that requires grad"):
        _cuda_plan.torch_device(torch, "relu", named(x=FakeTensor(),
                                                     out=FakeTensor(requires_grad=True)))


def test_torch_cpu_tensors_and_two_devices_are_errors():
    torch, _, _ = fake_torch()
    with pytest.raises(TypeError, match=r"takes CUDA tensors, and x is on cpu.*relu_ufunc\.relu"):
        _cuda_plan.torch_device(torch, "relu", named(x=FakeTensor(device=None)))
    with pytest.raises(ValueError, match="cuda:0 and cuda:1"):
        _cuda_plan.torch_device(torch, "relu_backward",
                                named(dy=FakeTensor(device=0), x=FakeTensor(device=1)))


def test_gpu_resolution_is_the_cpu_ufuncs_own():
    """relu_ufunc.cuda asks the CPU ufunc (resolve_dtypes, as @njit code
    does) and refuses only what the GPU lacks: longdouble."""
    import relu_ufunc as ru
    for name, (nin, _) in UFUNCS.items():
        uf = getattr(ru, name)
        for c in "?bBhHiIlLqQefd":
            for second in ([np.dtype(c)], [float], [int])[:3 if nin == 2 else 1]:
                dts = [np.dtype(c)] + (second if nin == 2 else [])
                try:
                    cpu = uf.resolve_dtypes((*dts, None))[-1]
                except TypeError:
                    with pytest.raises(TypeError):
                        _cuda_plan.resolve(name, dts)
                    continue
                assert _cuda_plan.resolve(name, dts) == cpu, (name, dts)
    with pytest.raises(TypeError, match="Cannot cast"):       # dtype=, as NumPy's call
        _cuda_plan.resolve("relu", [np.dtype("f8")], dtype=np.int32)
    with pytest.raises(TypeError, match="not supported"):     # no GPU loop (nor a Numba one)
        _cuda_plan.resolve("relu", [np.dtype("g")])
    assert _cuda_plan.resolve("relu", [bool]) == np.int8


def test_partial_overlap_is_the_one_contiguous_overlap_test():
    assert not _cuda_plan.partial_overlap(BASE, BASE, 400)            # in place
    assert not _cuda_plan.partial_overlap(BASE, BASE + 400, 400)      # adjacent
    assert not _cuda_plan.partial_overlap(BASE + 400, BASE, 400)
    assert _cuda_plan.partial_overlap(BASE, BASE + 4, 400)
    assert _cuda_plan.partial_overlap(BASE + 396, BASE, 400)


def torch_fast(name):
    torch, _, made = fake_torch()
    arrays = {"torch.float32": _cuda_plan.fast_entry(Recorder("aa"), F4),
              "torch.float16": _cuda_plan.fast_entry(Recorder("aa16"), F2)}
    scalars = {"torch.float32": _cuda_plan.fast_entry(Recorder("as"), F4)}
    return _cuda_plan.make_torch_fast(UFUNCS[name][0], torch, arrays, scalars), arrays, \
        scalars, made


def test_torch_fast_path_launches_with_data_pointers():
    fast, arrays, scalars, made = torch_fast("relu_backward")
    dy = FakeTensor(1000, "torch.float32", ptr=BASE)
    x = FakeTensor(1000, "torch.float32", ptr=BASE + 8192)
    y = fast((dy, x), None)
    assert made == [(y, "contiguous_format")]
    (grid, block, args), = arrays["torch.float32"][0].calls
    assert grid == (2,) and block == (128,) and args == (BASE, BASE + 8192, y.data_ptr(), 1000)
    assert fast((dy, x), x) is x                                  # out= a tensor, in place
    refused = {
        "non-contiguous": ((FakeTensor(1000, "torch.float32", contiguous=False), x), None),
        "two dtypes": ((dy, FakeTensor(1000, "torch.float16", ptr=BASE + 8192)), None),
        "broadcasting": ((dy, FakeTensor(1, "torch.float32")), None),
        "partial overlap": ((dy, x), FakeTensor(1000, "torch.float32", ptr=BASE + 4)),
        "no loop": ((FakeTensor(4, "torch.int8"), FakeTensor(4, "torch.int8")), None),
        "an int": ((dy, 2), None),
    }
    for why, (inputs, out) in refused.items():
        assert fast(inputs, out) is None, why
    assert len(arrays["torch.float32"][0].calls) == 2


def test_torch_fast_path_alpha_by_value():
    fast, arrays, scalars, _ = torch_fast("leaky_relu")
    x = FakeTensor(10, "torch.float32")
    y = fast((x, 0.1), None)
    (_, _, args), = scalars["torch.float32"][0].calls
    assert args[0] == BASE and type(args[1]) is np.float32 and args[1] == np.float32(0.1)
    assert args[2:] == (y.data_ptr(), 10)


def test_torch_dtype_map():
    torch = types.SimpleNamespace(float32="t32", int8="t8")
    assert _cuda_plan.torch_dtypes(torch, [F4, I1, F8]) == {"t32": F4, "t8": I1}


def test_importing_relu_ufunc_cuda_imports_no_torch():
    pytest.importorskip("cupy")
    res = subprocess.run([sys.executable, "-c", "import sys, relu_ufunc.cuda; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True)
    assert res.stdout.split() == ["False"], res.stderr


def test_module_tables_cover_the_fast_dtypes():
    """relu_ufunc.cuda builds (without a device) one RawKernel per function,
    fast dtype and form, named as in its module's source."""
    pytest.importorskip("cupy")
    import relu_ufunc.cuda as rc
    for name in UFUNCS:
        arrays, scalars = rc._FAST_TABLES[name]
        assert list(arrays) == _cuda_plan.fast_dtypes(name)
        assert list(scalars) == _cuda_plan.fast_dtypes(name, scalar=True)
        for table, form in ((arrays, "a" * UFUNCS[name][0]), (scalars, "as")):
            for d, (kernel, per_block, itemsize, stype) in table.items():
                assert kernel.name == _cuda_kernels.raw_kernel_name(name, d, form)
                assert f'extern "C" __global__ void {kernel.name}(' in kernel.code
                assert per_block == 128 * (16 // d.itemsize)
                if _cuda_kernels.is_ml(d):      # alpha as its bits
                    bits = _cuda_kernels.storage_dtype(d)
                    assert stype(0.1) == np.asarray(0.1, d).view(bits)[()]
                    assert type(stype(0.1)) is bits.type
                else:
                    assert stype is d.type


# ---- the raw kernels' sources --------------------------------------------------------

def test_raw_kernel_source_shape():
    src = _cuda_kernels.raw_kernel_source("leaky_relu", F2, "as")
    assert src.startswith('extern "C" __global__ void relu_ufunc_leaky_relu_f16_as('
                          'const unsigned short *x, unsigned short alpha, unsigned short *y, '
                          'long long n)')
    assert "relu_vec<unsigned short, 8>" in src
    assert "((((unsigned long long)x | (unsigned long long)y) & 15ULL) == 0)" in src
    assert "leaky_relu_f16(x_v.v[k], alpha)" in src and "leaky_relu_f16(x[j], alpha)" in src


def nvrtc():
    """CuPy's NVRTC with CuPy's own options (CCCL, its headers, C++17), as a
    RawKernel compiles, or a skip where NVRTC cannot load."""
    pytest.importorskip("cupy")
    try:
        from cupy._core import core
        from cupy.cuda import compiler
        options = core.assemble_cupy_compiler_options(()) + (
            "-ftz=true", "--device-as-default-execution-space", "-arch=compute_90")
        compiler._NVRTCProgram("__global__ void k() {}", "k.cu").compile(options, None)
    except Exception as e:            # no libnvrtc, or CuPy moved its internals
        pytest.skip(f"NVRTC is not usable here: {e!r}")

    def compile_(source, extra=()):
        prog = compiler._NVRTCProgram(source, "relu_ufunc_test.cu")
        ptx, _ = prog.compile(options + tuple(extra), None)
        return ptx.decode()
    return compile_


def test_raw_modules_compile_with_nvrtc_and_use_16_byte_vectors():
    import relu_ufunc
    compile_ = nvrtc()
    header = open(f"{relu_ufunc.get_include()}/relu_ufunc.h").read()
    dtypes = dict.fromkeys(d for name in UFUNCS for d in _cuda_kernels.gpu_dtypes(name))
    for d in dtypes:
        ptx = compile_(_cuda_kernels.raw_module_source(d, header))
        for name, (nin, _) in UFUNCS.items():
            if d in _cuda_kernels.gpu_dtypes(name):
                for form in _cuda_kernels.FORMS[nin]:
                    assert f".entry {_cuda_kernels.raw_kernel_name(name, d, form)}(" in ptx
        vec = {1: "v4.u32", 2: "v4.u32", 4: "v4.f32" if d.kind == "f" else "v4.u32",
               8: "v2.f64" if d.kind == "f" else "v2.u64"}[d.itemsize]
        entry = ptx.split(f".entry {_cuda_kernels.raw_kernel_name('relu', d, 'a')}(")[1]
        entry = entry.split(".entry")[0]
        assert f"ld.global.{vec}" in entry and f"st.global.{vec}" in entry, d


def test_user_fused_kernel_compiles_with_the_header_on_the_include_path():
    """The GPU docs' bias + relu kernel, as CuPy's ElementwiseKernel builds it
    (CuPy's headers first, then the preamble), with -I get_include()."""
    import relu_ufunc
    compile_ = nvrtc()
    from cupy._core import core
    src = "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + (
        '#include "relu_ufunc.h"\n'
        'extern "C" __global__ void bias_relu(const float *x, const float *b, float *y, '
        'long long n, long long cols) {\n'
        '  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n'
        '  if (i < n) y[i] = relu_f32(x[i] + b[i % cols]);\n}\n')
    assert ".entry bias_relu(" in compile_(src, ["-I" + relu_ufunc.get_include()])


def test_public_functions_are_device_functions_of_the_documented_types():
    """Every public function but the long double ones, called from a kernel
    with arguments of exactly its documented type, compiles under NVRTC."""
    import relu_ufunc
    compile_ = nvrtc()
    body = []
    for k, (cname, args, ctype) in enumerate(_cuda_kernels.public_header_functions(device=True)):
        call = f"{cname}({', '.join(['(' + ctype + ')v'] * len(args))})"
        body.append(f"  {{ {ctype} r = {call}; out[{k}] = (double)r; }}")
    src = ('#include "relu_ufunc.h"\n'
           'extern "C" __global__ void api(double *out, int v) {\n' + "\n".join(body) + "\n}\n")
    ptx = compile_(src, ["-I" + relu_ufunc.get_include()])
    assert ".entry api(" in ptx
    assert len(_cuda_kernels.public_header_functions(device=True)) == (
        4 * 11 + 2 * 3 + len(UFUNCS) * len(ML_TYPES))


# ---- the raw kernels' indexing, run on the host ------------------------------------
# Each kernel is plain CUDA C++.  Compiled as host C++ with blockIdx and
# friends as globals, and launched by running every (block, thread) in turn,
# it runs its own vector, tail, alignment and grid-stride logic on the CPU.
# That is a faithful emulation because no thread reads what another writes.
# The formulas take the header's host branch here, the one the CPU ufuncs
# use; their device branch is what the GPU tests check.

EMULATION = """
#include <stddef.h>
struct relu_dim3 { unsigned int x, y, z; };
static relu_dim3 blockIdx, blockDim, gridDim, threadIdx;
#define __global__
#define __align__(n) alignas(n)
"""

CTYPES = {"signed char": "c_byte", "unsigned char": "c_ubyte", "short": "c_short",
          "unsigned short": "c_ushort", "int": "c_int", "unsigned int": "c_uint",
          "long long": "c_longlong", "unsigned long long": "c_ulonglong",
          "float": "c_float", "double": "c_double"}


def _kernels():
    return [(name, d, form) for name, (nin, _) in UFUNCS.items()
            for d in _cuda_kernels.gpu_dtypes(name) for form in _cuda_kernels.FORMS[nin]]


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    import ctypes
    import os
    import shutil
    import relu_ufunc
    from relu_ufunc._spec import ARG_NAMES
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    header = open(os.path.join(relu_ufunc.get_include(), "relu_ufunc.h")).read()
    src = [EMULATION, header, _cuda_kernels.VECTOR_PREAMBLE]
    for name, d, form in _kernels():
        kname = _cuda_kernels.raw_kernel_name(name, d, form)
        ctype = _cuda_kernels.c_type(d)
        params = [(f"const {ctype} *" if f == "a" else f"{ctype} ") + a
                  for a, f in zip(ARG_NAMES[name], form)]
        names = list(ARG_NAMES[name])
        src.append(_cuda_kernels.raw_kernel_source(name, d, form))
        src.append(
            f'extern "C" void drive_{kname}({", ".join(params)}, {ctype} *y, long long n, '
            f"unsigned int grid) {{\n"
            f"  gridDim.x = grid; blockDim.x = {_cuda_kernels.BLOCK};\n"
            f"  for (unsigned int blk = 0; blk < grid; ++blk)\n"
            f"    for (unsigned int t = 0; t < {_cuda_kernels.BLOCK}; ++t) {{\n"
            f"      blockIdx.x = blk; threadIdx.x = t;\n"
            f"      {kname}({', '.join(names)}, y, n);\n"
            f"    }}\n}}\n")
    tmp = tmp_path_factory.mktemp("raw")
    (tmp / "raw.cpp").write_text("\n".join(src))
    subprocess.run([cxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Werror",
                    "-Wno-unknown-pragmas",
                    str(tmp / "raw.cpp"), "-o", str(tmp / "raw.so")], check=True)
    lib = ctypes.CDLL(str(tmp / "raw.so"))
    drivers = {}
    for name, d, form in _kernels():
        ctype = getattr(ctypes, CTYPES[_cuda_kernels.c_type(d)])
        fn = getattr(lib, "drive_" + _cuda_kernels.raw_kernel_name(name, d, form))
        fn.argtypes = ([ctypes.c_void_p if f == "a" else ctype for f in form]
                       + [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_uint])
        fn.restype = None
        drivers[name, d, form] = fn
    return drivers


def _aligned(n, dtype, offset):
    """n elements of dtype starting `offset` elements past a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros((n + offset) * dtype.itemsize + 64, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset * dtype.itemsize
    return raw[start:start + n * dtype.itemsize].view(dtype)


def test_raw_kernels_index_every_element_once(host_kernels):
    """Every kernel, aligned (vectors and a tail) and misaligned (element by
    element), with the grid the fast path launches and with a single block
    (the grid-stride loops), in place too: the CPU ufunc's bits."""
    import relu_ufunc as ru
    from conftest import random_values
    rng = np.random.default_rng(2)
    for (name, d, form), drive in host_kernels.items():
        w = _cuda_kernels.vector_width(d)
        storage = _cuda_kernels.storage_dtype(d)
        for n in sorted({0, 1, w - 1, w, w + 1, 3 * w + 5, 1000, 128 * w + 3}):
            for offset in (0, 1):
                values = [random_values(rng, d, n) for _ in form]
                ins = []
                for f, v in zip(form, values):
                    if f == "a":
                        a = _aligned(n, d, offset)
                        a[...] = v
                        ins.append(a)
                    else:
                        ins.append(v[:1].copy() if n else np.zeros(1, d))
                host_args = [a if f == "a" else a[0] for a, f in zip(ins, form)]
                with np.errstate(all="ignore"):
                    expected = getattr(ru, name)(*host_args)
                    expected = np.broadcast_to(expected, (n,))
                for grid in {_cuda_kernels.grid(max(n, 1), _cuda_kernels.per_block(d))[0], 1}:
                    guarded = _aligned(n + 2 * w, d, offset)       # n, then a guard band
                    guarded.view(np.uint8)[...] = 0xA5
                    y = guarded[:n]
                    args = [a.view(storage).ctypes.data if f == "a" else
                            a.view(storage)[0].item() for a, f in zip(ins, form)]
                    drive(*args, y.ctypes.data, n, grid)
                    assert _reference.same_bits(y, np.ascontiguousarray(expected)), \
                        (name, d, form, n, offset, grid)
                    assert (guarded[n:].view(np.uint8) == 0xA5).all(), \
                        (name, d, form, n, offset, grid, "wrote past the end")
                if form[0] == "a" and n:                              # in place on x
                    x = _aligned(n, d, offset)
                    x[...] = ins[0]
                    args = [x.view(storage).ctypes.data] + [
                        a.view(storage).ctypes.data if f == "a" else a.view(storage)[0].item()
                        for a, f in zip(ins[1:], form[1:])]
                    blocks = _cuda_kernels.grid(n, _cuda_kernels.per_block(d))[0]
                    drive(*args, x.ctypes.data, n, blocks)
                    assert _reference.same_bits(x, np.ascontiguousarray(expected)), \
                        (name, d, form, n, offset, "in place")


WIRING = r"""
import numpy as np, cupy
from cupy.cuda import memory
cupy.cuda.runtime.getDevice = lambda: 0          # no device here: say it is device 0
import relu_ufunc.cuda as rc

calls = []
class Recorder:
    def __init__(self, label):
        self.label = label
    def __call__(self, grid, block, args):
        calls.append((self.label, grid, block, args))
for name, tables in rc._FAST_TABLES.items():
    for table in tables:
        for d, entry in list(table.items()):
            table[d] = (Recorder((name, d.name)),) + entry[1:]
general = []
rc._general = lambda *a: general.append(a[0]) or "general"

def array(n, dtype, offset):
    mem = memory.UnownedMemory(0x7f0000000000 + offset, n * np.dtype(dtype).itemsize, None, 0)
    return cupy.ndarray((n,), dtype, memptr=memory.MemoryPointer(mem, 0))

x, dy, y = (array(1000, np.float32, k << 16) for k in range(3))
assert rc.relu(x, out=y) is y and rc.relu(x, y) is y
assert rc.relu_backward(dy, x, out=x) is x
assert rc.leaky_relu(x, 0.1, out=y) is y
assert [c[0] for c in calls] == [("relu", "float32")] * 2 + [("relu_backward", "float32"),
                                                          ("leaky_relu", "float32")]
assert calls[2][3] == (dy.data.ptr, x.data.ptr, x.data.ptr, 1000) and calls[0][1] == (2,)
assert rc.relu(x[::2], out=array(500, np.float32, 5 << 16)) == "general"
assert rc.relu(x, out=y, where=True) is y and rc.relu(x, out=y, dtype=None) is y
assert rc.relu(x, out=y, where=x) == "general" and rc.relu(x, dtype="f8") == "general"
assert rc.relu(x[1:], out=y[:-1]) is not None and rc.relu(x[:-1], out=x[1:]) == "general"
assert general == ["relu"] * 4 and len(calls) == 7
print("ok")
"""


def test_the_five_functions_call_the_fast_path_then_the_general_one():
    """The public functions, wired as shipped, on real cupy arrays over
    made-up memory: the fast path's kernels (recorders here) for the common
    calls, relu_ufunc.cuda._general for the rest."""
    pytest.importorskip("cupy")
    res = subprocess.run([sys.executable, "-c", WIRING], capture_output=True, text=True)
    assert res.stdout.split() == ["ok"], res.stderr
