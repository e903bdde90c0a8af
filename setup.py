"""Build the Cython backend of relu_ufunc.

The loops are generated: relu_ufunc/_loops.h.in (the C inner loops) and
relu_ufunc/_ufuncs.pyx.in (their registration as ufuncs) are expanded with
Tempita (shipped with Cython) from the table in relu_ufunc/_spec.py, into
build/src.
The formulas themselves come from cuda/relu_ufunc.h.  Nothing generated is
committed.
"""
import os
import runpy
import sys
from types import SimpleNamespace

import numpy as np
from Cython.Build import cythonize
from Cython.Tempita import Template
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
GEN_DIR = os.path.join("build", "src", "relu_ufunc")  # generated Cython

# NumPy's C name for each type character.
C_TYPES = {
    "b": "npy_byte", "B": "npy_ubyte", "h": "npy_short", "H": "npy_ushort",
    "i": "npy_int", "I": "npy_uint", "l": "npy_long", "L": "npy_ulong",
    "q": "npy_longlong", "Q": "npy_ulonglong",
    "e": "npy_half", "f": "npy_float", "d": "npy_double", "g": "npy_longdouble",
}


def expand(template, out, **context):
    """Expand a Tempita template; rewrite `out` only when it changes, so that
    unchanged builds are not recompiled."""
    with open(os.path.join(HERE, template)) as f:
        text = Template(f.read(), name=template).substitute(**context)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if not os.path.exists(out) or open(out).read() != text:
        with open(out, "w") as f:
            f.write(text)
    return out


def sync_headers(*headers):
    """Put fresh copies of the hand-written headers beside the generated .pyx.

    cythonize copies each dependency into build/src: the extension's depends
    into build/src/relu_ufunc, and the generated .pyx's own (those same
    copies) into build/src/build/src/relu_ufunc, beside the .c that includes
    them.  It takes that second copy from the first before refreshing the
    first, so without this an edited header reached the compiler one build
    late."""
    for header in headers:
        with open(os.path.join(HERE, header)) as f:
            text = f.read()
        out = os.path.join(GEN_DIR, os.path.basename(header))
        os.makedirs(GEN_DIR, exist_ok=True)
        if not os.path.exists(out) or open(out).read() != text:
            with open(out, "w") as f:
                f.write(text)


def load_table():
    return runpy.run_path(os.path.join(HERE, "relu_ufunc", "_spec.py"))


def generate_cython_loops():
    spec = load_table()
    ufuncs = []
    for name, (nin, chars) in spec["UFUNCS"].items():
        loops, seen = [], set()
        for c in chars:
            suffix = spec["formula_suffix"](c, np.dtype(c).itemsize)
            loops.append(SimpleNamespace(
                char=c, ctype=C_TYPES[c], suffix=suffix, dtype=np.dtype(c).name,
                ftype=spec["FORMULA_C_TYPES"][suffix], first_of_suffix=suffix not in seen))
            seen.add(suffix)
        ufuncs.append(SimpleNamespace(name=name, nin=nin, loops=loops))
    expand("relu_ufunc/_loops.h.in", os.path.join(GEN_DIR, "_loops.h"), ufuncs=ufuncs)
    return expand("relu_ufunc/_ufuncs.pyx.in", os.path.join(GEN_DIR, "_ufuncs.pyx"),
                  ufuncs=ufuncs)


def generate_scalar_api():
    """The `cdef api` formulas that relu_ufunc._numba_ext calls from @njit code,
    included at the end of _ufuncs.pyx: every (ufunc, formula suffix) of the
    table for the types Numba compiles (not float16, not longdouble)."""
    spec = load_table()
    formulas = []
    for name, (nin, chars) in spec["UFUNCS"].items():
        seen = set()
        for c in chars:
            suffix = spec["formula_suffix"](c, np.dtype(c).itemsize)
            if c in "eg" or suffix in seen:
                continue
            seen.add(suffix)
            formulas.append(SimpleNamespace(name=name, nin=nin, suffix=suffix,
                                            ctype=spec["FORMULA_C_TYPES"][suffix]))
    return expand("relu_ufunc/_scalar_api.pxi.in", os.path.join(GEN_DIR, "_scalar_api.pxi"),
                  formulas=formulas)


def numba_loop(c):
    """How the Numba loop for type character c works, or None (longdouble:
    Numba has no such type).  float16 works on its bits, as in the header."""
    if c == "g":
        return None
    if c == "e":
        return SimpleNamespace(char=c, nbtype="uint16", family="f16", one="0x3C00", size=2)
    family = "flt" if c in "fd" else "int"
    return SimpleNamespace(char=c, nbtype=np.dtype(c).name, family=family, one="1",
                           size=np.dtype(c).itemsize)


def generate_numba_loops():
    """The Numba backend's loops: pure Python, so generated even where no C
    compiler is, which is when that backend is needed."""
    spec = load_table()
    ufuncs, all_loops = [], {}
    for name, (nin, chars) in spec["UFUNCS"].items():
        # float16 on its bits only for the formulas that merely select; the
        # leaky pair goes through float32 registers instead.
        select_only = name in spec["SELECT_ONLY"]
        loops = [numba_loop(c) for c in chars
                 if numba_loop(c) is not None and (c != "e" or select_only)]
        all_loops.update((lp.char, lp) for lp in loops)
        ufuncs.append(SimpleNamespace(name=name, nin=nin, loops=loops,
                                      params=", ".join(spec["ARG_NAMES"][name]),
                                      half_via_float="e" in chars and not select_only))
    return expand("relu_ufunc/_numba_loops.py.in",
                  os.path.join(HERE, "relu_ufunc", "_numba_loops.py"),
                  ufuncs=ufuncs, loops=list(all_loops.values()))


def compile_args():
    return runpy.run_path(os.path.join(HERE, "relu_ufunc", "_flags.py"))["compile_args"]()


generate_numba_loops()
generate_scalar_api()
HEADERS = ["relu_ufunc/_loops_common.h", "relu_ufunc/_threads.h"]
sync_headers(*HEADERS)

ext = Extension(
    "relu_ufunc._ufuncs",
    sources=[generate_cython_loops()],
    include_dirs=[np.get_include(), os.path.join(HERE, "cuda"),
                  os.path.join(HERE, "relu_ufunc"), GEN_DIR],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
                   ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION")],
    extra_compile_args=compile_args(),
    depends=["cuda/relu_ufunc.h", "relu_ufunc/_loops.h.in", *HEADERS,
             os.path.join(GEN_DIR, "_scalar_api.pxi")],
    # Without a C compiler the install still succeeds, on the Numba backend.
    optional=True,
)

OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


def openmp_flags(compiler):
    """["-fopenmp"] where this compiler builds and links an OpenMP program,
    else [] (then relu_ufunc.set_num_threads has no effect)."""
    import tempfile
    if compiler.compiler_type == "msvc":
        return []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                     extra_postargs=["-fopenmp"])
        except Exception:  # noqa: BLE001 - any failure means: no OpenMP
            return []
    return ["-fopenmp"]


class build_ext_also_in_place(build_ext):
    """Also put the built extension beside the sources (as --inplace would).

    `pip install . && python -m relu_ufunc`, run from the checkout, imports
    the package from the current directory rather than site-packages; with
    the extension beside it, both are the same code.  The copy is ignored by
    git.
    """

    def build_extensions(self):
        flags = openmp_flags(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + flags
            ext.extra_link_args = list(ext.extra_link_args) + flags
        super().build_extensions()

    def run(self):
        super().run()
        if self.inplace:
            return
        for ext in self.extensions:
            built = self.get_ext_fullpath(ext.name)
            if os.path.exists(built):       # an optional build may have failed
                self.copy_file(built, os.path.join(HERE, self.get_ext_filename(ext.name)))


class build_py_with_header(build_py):
    """Ship cuda/relu_ufunc.h inside the package (relu_ufunc/include), where
    relu_ufunc.cuda reads it for its kernels and get_include() finds it."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "relu_ufunc", "include")
        self.mkpath(target)
        self.copy_file(os.path.join(HERE, "cuda", "relu_ufunc.h"), target)


ext_modules = cythonize([ext], build_dir=os.path.join("build", "src"),
                        compiler_directives={"language_level": 3})
# cythonize() returns new Extension objects and drops optional=True (Cython
# 3.3.1), which made a build without a C compiler fail instead of installing
# the package for the Numba backend.  Put it back.
for built in ext_modules:
    built.optional = True

setup(
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext_also_in_place, "build_py": build_py_with_header},
    packages=["relu_ufunc", "relu_ufunc.cuda"],
    package_data={"relu_ufunc": ["py.typed", "*.pyi"]},
)
