"""cuda/relu_ufunc.h without a GPU: compiled as host C (and C++) and run, it
gives the value table; compiled by nvcc with the kernel bodies that
relu_ufunc.cuda hands to CuPy, it is valid CUDA."""
import os
import shutil
import subprocess

import numpy as np
import pytest

import relu_ufunc
from relu_ufunc import _cuda_kernels, _reference
from relu_ufunc._spec import ARG_NAMES, FORMULA_C_TYPES, UFUNCS
from conftest import source_file

HEADER_DIR = relu_ufunc.get_include()
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
CASES = {  # formula suffix -> (dtype, C type, C type of the bits for floats)
    "f32": ("float32", FORMULA_C_TYPES["f32"], FORMULA_C_TYPES["u32"]),
    "f64": ("float64", FORMULA_C_TYPES["f64"], FORMULA_C_TYPES["u64"]),
    "f16": ("float16", FORMULA_C_TYPES["f16"], FORMULA_C_TYPES["u16"]),
    "i8": ("int8", FORMULA_C_TYPES["i8"], None),
    "u64": ("uint64", FORMULA_C_TYPES["u64"], None),
}


def test_header_is_shipped():
    assert os.path.exists(os.path.join(HEADER_DIR, "relu_ufunc.h"))


def host_program(suffix):
    dtype, ctype, utype = CASES[suffix]
    x = _reference.special_values(dtype)
    dy = x[::-1].copy()
    bits = np.dtype(f"u{x.itemsize}")
    lines = ["#include <stdio.h>", "#include <string.h>", '#include "relu_ufunc.h"',
             "int main(void) {"]
    calls = [f"relu_{suffix}(x)", f"relu_grad_{suffix}(x)", f"relu_backward_{suffix}(d, x)"]
    if utype:       # floats: the leaky pair too, with d as alpha
        calls += [f"leaky_relu_{suffix}(x, d)", f"leaky_relu_grad_{suffix}(x, d)"]
    for xi, di in zip(x.view(bits), dy.view(bits)):
        for call in calls:
            if utype:
                lines.append(f"{{ {utype} xb = {int(xi)}ULL, db = {int(di)}ULL; {ctype} x, d, r;"
                             f" {utype} rb; memcpy(&x, &xb, sizeof x); memcpy(&d, &db, sizeof d);"
                             f" r = {call}; memcpy(&rb, &r, sizeof rb);"
                             f' printf("%llu\\n", (unsigned long long)rb); }}')
            else:
                xv, dv = int(xi.view(x.dtype)), int(di.view(x.dtype))
                sfx, fmt, cast = (("ULL", "%llu", "unsigned long long") if x.dtype.kind == "u"
                                  else ("LL", "%lld", "long long"))
                lit = lambda v: f"({ctype})({v + 1}{sfx} - 1)" if v < 0 else f"({ctype}){v}{sfx}"
                lines.append(f"{{ {ctype} x = {lit(xv)}, d = {lit(dv)}; (void)d;"
                             f' printf("{fmt}\\n", ({cast}){call}); }}')
    lines += ["return 0; }"]
    return "\n".join(lines), x, dy


@pytest.mark.skipif(CC is None, reason="no C compiler")
def build_host_program(tmp_path, name, src, lang):
    """Compile src as C99 or C++ with the header on the include path, warnings
    as errors; return the executable's path (skip where there is no C++)."""
    path = tmp_path / (name + (".c" if lang == "c" else ".cpp"))
    path.write_text(src)
    compiler = CC if lang == "c" else (shutil.which("c++") or shutil.which("g++"))
    if compiler is None:
        pytest.skip("no C++ compiler")
    std = ["-std=c99"] if lang == "c" else []
    subprocess.run([compiler, *std, "-O2", "-Wall", "-Werror", "-I", HEADER_DIR, str(path),
                    "-o", str(tmp_path / name)], check=True)
    return str(tmp_path / name)


@pytest.mark.parametrize("suffix", list(CASES))
@pytest.mark.parametrize("lang", ["c", "c++"])
def test_header_as_host_code_gives_the_value_table(tmp_path, suffix, lang):
    src, x, dy = host_program(suffix)
    exe = build_host_program(tmp_path, "t", src, lang)
    out = subprocess.run([exe], capture_output=True, text=True, check=True)
    unsigned = x.dtype.kind == "u" or CASES[suffix][2] is not None
    got = np.array([int(v) for v in out.stdout.split()], np.uint64 if unsigned else np.int64)
    refs = [_reference.relu(x), _reference.relu_grad(x), _reference.relu_backward(dy, x)]
    if CASES[suffix][2]:
        refs += [_reference.leaky_relu(x, dy), _reference.leaky_relu_grad(x, dy)]
    got = got.reshape(-1, len(refs))
    if CASES[suffix][2]:
        got = got.astype(f"u{x.itemsize}").view(x.dtype)
    else:
        got = got.astype(x.dtype)
    for k, expected in enumerate(refs):
        assert _reference.same_bits(got[:, k].copy(), expected), (suffix, k)


NVCC = shutil.which("nvcc")
# CuPy's parameter dtype names -> C types, as its ElementwiseKernel declares them.
C_TYPES = {np.dtype(c).name: FORMULA_C_TYPES[_cuda_kernels.suffix(c)]
           for c in "bBhHiIqQfd"} | {"bool": "bool"}


def cuda_kernel(name, dtype, masked):
    """A kernel shaped as CuPy's ElementwiseKernel wraps the same operation."""
    in_params, out_params, operation, kname = _cuda_kernels.kernel_spec(name, dtype, masked)
    params = [p.split() for p in in_params.split(", ")] + [out_params.split()]
    args = ", ".join(f"{'' if i == len(params) - 1 else 'const '}{C_TYPES[t]} *{n}_"
                     for i, (t, n) in enumerate(params))
    loads = " ".join(f"{C_TYPES[t]} {n} = {n}_[i];" for t, n in params[:-1])
    t, n = params[-1]
    return (f"extern \"C\" __global__ void {kname}({args}, long long size) {{\n"
            f"  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
            f"  if (i < size) {{ {loads} {C_TYPES[t]} &{n} = {n}_[i]; {operation}; }}\n}}\n")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on the PATH")
@pytest.mark.slow
def test_kernels_compile_with_nvcc(tmp_path):
    """Every element kernel (in a wrapper shaped as CuPy's), and every raw
    kernel module as relu_ufunc.cuda hands it to cupy.RawKernel."""
    src = ['#include "relu_ufunc.h"']
    for name, chars in _cuda_kernels.GPU_CHARS.items():
        for c in dict.fromkeys(np.dtype(c).name for c in chars):   # one per dtype
            for masked in (False, True):
                src.append(cuda_kernel(name, np.dtype(c), masked))
    sources = {"elements": "\n".join(src)}
    header = open(os.path.join(HEADER_DIR, "relu_ufunc.h")).read()
    for d in dict.fromkeys(d for name in UFUNCS for d in _cuda_kernels.gpu_dtypes(name)):
        sources[d.name] = _cuda_kernels.raw_module_source(d, header)
    for label, text in sources.items():
        path = tmp_path / f"{label}.cu"
        path.write_text(text)
        # -ftz=true, as CuPy compiles every kernel
        res = subprocess.run([NVCC, "-c", "-ftz=true", "-I", HEADER_DIR, str(path), "-o",
                              str(tmp_path / f"{label}.o")], capture_output=True, text=True)
        assert res.returncode == 0, (label, res.stderr)


# ---- the public API: a stable, documented list --------------------------------

def documented_api(text, prefix):
    """{function: (argument names, suffixes)} from lines such as
    'T relu_backward_S(T dy, T x)   S: i8 u8 ...' in `text`."""
    import re
    api = {}
    for m in re.finditer(prefix + r"T (\w+)_S\(([^)]*)\)\s*(?:\|\s*)?S?:?\s*([\w ]+?)\s*(?:\||$)",
                         text, re.M):
        args = tuple(a.split()[-1] for a in m.group(2).split(","))
        api[m.group(1)] = (args, tuple(m.group(3).split()))
    return api


def ml_suffixes_listed(text):
    """The suffixes after 'ml_dtypes formats, S:' in `text`, up to the comma."""
    import re
    listed = re.search(r"ml_dtypes formats, S:([^,]*),", text).group(1)
    return tuple(listed.replace("*", " ").split())


def test_header_documents_exactly_the_public_functions():
    text = open(os.path.join(HEADER_DIR, "relu_ufunc.h")).read()
    public = text.split("PUBLIC API")[1].split("*/")[0]
    api = documented_api(public, r"^ \*\s+")
    assert api == {name: (args, _cuda_kernels.PUBLIC_SUFFIXES[name])
                   for name, args in ARG_NAMES.items()}
    assert ml_suffixes_listed(public) == _cuda_kernels.PUBLIC_ML_SUFFIXES


def test_gpu_docs_list_the_public_functions():
    readme = source_file("docs/gpu.md").read_text()
    for name, args in ARG_NAMES.items():
        sig = f"{name}_S({', '.join('T ' + a for a in args)})"
        assert sig in readme, sig
        assert " ".join(_cuda_kernels.PUBLIC_SUFFIXES[name]) in readme, name
    assert ml_suffixes_listed(readme) == _cuda_kernels.PUBLIC_ML_SUFFIXES


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("lang", ["c", "c++"])
def test_public_functions_have_the_documented_signatures(tmp_path, lang):
    """Each public function assigned to a pointer of its documented type: a
    missing function or another signature fails the -Werror compile."""
    lines = ['#include "relu_ufunc.h"', "int main(void) {", "int ok = 1;"]
    for k, (cname, args, ctype) in enumerate(_cuda_kernels.public_header_functions()):
        params = ", ".join([ctype] * len(args))
        lines.append(f"{ctype} (*f{k})({params}) = {cname}; ok &= f{k} != 0;")
    lines += ["return ok ? 0 : 1; }"]
    subprocess.run([build_host_program(tmp_path, "api", "\n".join(lines), lang)], check=True)


# Signalling NaNs (one per sign) as bits, per suffix: the select-only public
# functions must return them unchanged and raise no FP flag.
SNAN_BITS = {"f16": (0x7C01, 0xFD00), "f32": (0x7FA00000, 0xFF800001),
             "f64": (0x7FF4000000000000, 0xFFF0000000000001)}


@pytest.mark.skipif(CC is None, reason="no C compiler")
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
@pytest.mark.parametrize("lang", ["c", "c++"])
def test_header_select_formulas_raise_no_flag_on_signalling_nan(tmp_path, lang, opt):
    """Host code including the header: relu, relu_grad, relu_backward and
    leaky_relu_grad on signalling NaNs give them back bit for bit, with
    FE_INVALID still clear (a float compare, x != x included, would set it);
    long double too, on its own bit layout."""
    lines = ["#include <fenv.h>", "#include <stdio.h>", "#include <string.h>",
             '#include "relu_ufunc.h"', "int main(void) { int bad = 0;"]
    for suffix, patterns in SNAN_BITS.items():
        ctype, utype = FORMULA_C_TYPES[suffix], FORMULA_C_TYPES["u" + suffix[1:]]
        for bits in patterns:
            for call in (f"relu_{suffix}(x)", f"relu_grad_{suffix}(x)",
                         f"relu_backward_{suffix}(one, x)", f"leaky_relu_grad_{suffix}(x, one)"):
                lines.append(
                    f"{{ volatile {utype} xb = {bits}ULL; {utype} b = xb, rb; {ctype} x, r;"
                    f" {ctype} one; memset(&one, 0, sizeof one); memcpy(&x, &b, sizeof x);"
                    f" feclearexcept(FE_ALL_EXCEPT); r = {call}; memcpy(&rb, &r, sizeof rb);"
                    f" if (fetestexcept(FE_INVALID) || rb != b) {{ bad = 1;"
                    f' printf("{call} on {bits:#x}: bits %llx, invalid %d\\n",'
                    f" (unsigned long long)rb, !!fetestexcept(FE_INVALID)); }} }}")
    # long double: a quiet NaN with its quiet bit (the top stored fraction
    # bit, LDBL_MANT_DIG - 2) cleared and bit 0 set; compared on the bytes
    # that hold the value (x87 extended has padding).
    lines.append("""
#if RELU_HAS_LONGDOUBLE && (LDBL_MANT_DIG == 64 || LDBL_MANT_DIG == 113)
    { long double q = __builtin_nanl(""), s, r, one = 0.0L; unsigned char qb[sizeof q];
      const int bit = LDBL_MANT_DIG - 2, used = LDBL_MANT_DIG == 64 ? 10 : 16;
      memcpy(qb, &q, sizeof q); qb[bit / 8] &= (unsigned char)~(1u << (bit % 8)); qb[0] |= 1;
      memcpy(&s, qb, sizeof s);
      for (int f = 0; f < 4; f++) {
        feclearexcept(FE_ALL_EXCEPT);
        r = f == 0 ? relu_ld(s) : f == 1 ? relu_grad_ld(s)
          : f == 2 ? relu_backward_ld(one, s) : leaky_relu_grad_ld(s, one);
        if (fetestexcept(FE_INVALID) || memcmp(&r, &s, used)) {
          bad = 1; printf("long double formula %d on a signalling NaN\\n", f); }
      } }
#endif""")
    lines += ["return bad; }"]
    path = tmp_path / ("snan." + ("c" if lang == "c" else "cpp"))
    path.write_text("\n".join(lines))
    compiler = CC if lang == "c" else (shutil.which("c++") or shutil.which("g++"))
    if compiler is None:
        pytest.skip("no C++ compiler")
    std = ["-std=gnu99"] if lang == "c" else []
    subprocess.run([compiler, *std, opt, "-Wall", "-Werror", "-I", HEADER_DIR, str(path),
                    "-o", str(tmp_path / "snan"), "-lm"], check=True)
    res = subprocess.run([str(tmp_path / "snan")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
