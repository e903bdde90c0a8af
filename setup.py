"""Build the Cython backend of relu_ufunc.

The loops are generated: relu_ufunc/_ufuncs.pyx.in is expanded with Tempita
(shipped with Cython) from the table in relu_ufunc/_spec.py, into build/src.
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

HERE = os.path.dirname(os.path.abspath(__file__))
GEN_DIR = os.path.join("build", "src", "relu_ufunc")

# NumPy's C name for each type character.
C_TYPES = {
    "b": "npy_byte", "B": "npy_ubyte", "h": "npy_short", "H": "npy_ushort",
    "i": "npy_int", "I": "npy_uint", "l": "npy_long", "L": "npy_ulong",
    "q": "npy_longlong", "Q": "npy_ulonglong",
    "e": "npy_half", "f": "npy_float", "d": "npy_double", "g": "npy_longdouble",
}
# The C type each formula in relu_ufunc.h takes, by suffix.
FORMULA_TYPES = {
    "i8": "signed char", "u8": "unsigned char", "i16": "short",
    "u16": "unsigned short", "i32": "int", "u32": "unsigned int",
    "i64": "long long", "u64": "unsigned long long",
    "f16": "unsigned short", "f32": "float", "f64": "double", "ld": "long double",
}


def generate_pyx():
    spec = runpy.run_path(os.path.join(HERE, "relu_ufunc", "_spec.py"))
    ufuncs = []
    for name, (nin, chars) in spec["UFUNCS"].items():
        loops, seen = [], set()
        for c in chars:
            suffix = spec["formula_suffix"](c, np.dtype(c).itemsize)
            loops.append(SimpleNamespace(
                char=c, ctype=C_TYPES[c], suffix=suffix,
                ftype=FORMULA_TYPES[suffix], first_of_suffix=suffix not in seen))
            seen.add(suffix)
        ufuncs.append(SimpleNamespace(name=name, nin=nin, loops=loops))
    template_path = os.path.join(HERE, "relu_ufunc", "_ufuncs.pyx.in")
    with open(template_path) as f:
        text = Template(f.read(), name=template_path).substitute(ufuncs=ufuncs)
    os.makedirs(GEN_DIR, exist_ok=True)
    out = os.path.join(GEN_DIR, "_ufuncs.pyx")
    # Rewrite only on change, so that unchanged builds are not recompiled.
    if not os.path.exists(out) or open(out).read() != text:
        with open(out, "w") as f:
            f.write(text)
    return out


def compile_args():
    if sys.platform == "win32" and "GCC" not in sys.version:
        return ["/O2"]
    # -O3: GCC 12 vectorizes only "very cheap" loops at -O2.
    return ["-O3"]


ext = Extension(
    "relu_ufunc._ufuncs",
    sources=[generate_pyx()],
    include_dirs=[np.get_include(), os.path.join(HERE, "cuda"),
                  os.path.join(HERE, "relu_ufunc")],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
                   ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION")],
    extra_compile_args=compile_args(),
    depends=["cuda/relu_ufunc.h", "relu_ufunc/_contig.h"],
)

class build_ext_also_in_place(build_ext):
    """Also put the built extension beside the sources (as --inplace would).

    `pip install . && python -m relu_ufunc`, run from the checkout, imports
    the package from the current directory rather than site-packages; with
    the extension beside it, both are the same code.  The copy is ignored by
    git.
    """

    def run(self):
        super().run()
        if not self.inplace and os.path.isdir(os.path.join(HERE, "relu_ufunc")):
            self.copy_extensions_to_source()


setup(
    ext_modules=cythonize([ext], build_dir=os.path.join("build", "src"),
                          compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": build_ext_also_in_place},
    packages=["relu_ufunc"],
    package_data={"relu_ufunc": ["py.typed", "*.pyi"]},
)
