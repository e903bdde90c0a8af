"""Build the Cython backend of relu_ufunc.

The loops are generated: relu_ufunc/_loops.h.in (the C inner loops) and
relu_ufunc/_ufuncs.pyx.in (their registration as ufuncs) are expanded with
Tempita (shipped with Cython) from the table in relu_ufunc/_spec.py, into
build/src, by build_py and build_ext (generate_sources).
The formulas themselves come from cuda/relu_ufunc.h.  Nothing generated is
committed.
"""
import functools
import os
import runpy
import shlex
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
from Cython.Tempita import Template
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
GEN_DIR = os.path.join("build", "src", "relu_ufunc")  # generated Cython
BUILD_INFO = os.path.join(GEN_DIR, "_build_info.h")  # the probes' report
PYX = os.path.join(GEN_DIR, "_ufuncs.pyx")  # the extension's source, expanded

def expand_text(text, out):
    """Write `out` only when it changes, so that unchanged builds are not
    recompiled."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if not os.path.exists(out) or open(out).read() != text:
        with open(out, "w") as f:
            f.write(text)
    return out


def with_line_directives(text, template):
    """The template with a C `#line` before each run of plain lines that
    follows a Tempita directive line or block, so that a compiler message
    about the expanded file names the template's own line.  Within such a
    run, output lines map one to one onto template lines ({{expressions}}
    never span lines)."""
    out, in_block, after_directive = [], False, True
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        stripped = line.strip()
        if in_block:
            out.append(line)
            in_block = not stripped.endswith("}}")
            after_directive = True
            continue
        if stripped.startswith("{{py:") and not stripped.endswith("}}"):
            out.append(line)
            in_block, after_directive = True, True
            continue
        if stripped.startswith("{{") and stripped.endswith("}}") and "}}" not in stripped[2:-2]:
            out.append(line)
            after_directive = True
            continue
        if after_directive:
            out.append(f'#line {number} "{template}"\n')
            after_directive = False
        out.append(line)
    return "".join(out)


def expand(template, out, **context):
    """Expand a Tempita template into `out` (a C template with #line)."""
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    if template.endswith(".h.in"):
        text = with_line_directives(text, template)
    return expand_text(Template(text, name=template).substitute(**context), out)


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
    """relu_ufunc/_spec.py's namespace, validated against the header, with
    the ML formats' layouts read from it (SMALL)."""
    spec = runpy.run_path(os.path.join(HERE, "relu_ufunc", "_spec.py"))
    with open(os.path.join(HERE, "cuda", "relu_ufunc.h")) as f:
        header = f.read()
    spec["validate"](header, lambda c: np.dtype(c).itemsize)
    spec["SMALL"] = spec["small_formats"](header)
    return spec


def loops_of(spec, fn):
    """The C loops of one function row: what the templates need per type."""
    out = []
    for c in fn.types:
        t = spec["TYPE_BY_CHAR"][c]
        out.append(SimpleNamespace(char=c, ctype=t.npy_ctype, dtype=np.dtype(c).name,
                                   suffix=t.formula_suffix(np.dtype(c).itemsize),
                                   scalar=False))
    return out


def ml_loops(spec, fn):
    """The C loops of the ML formats (every function has them): named by the
    formula suffix, as they have no NumPy type character; their arithmetic
    (a function that does more than select) has scalar kernels only."""
    return [SimpleNamespace(char=t.suffix, ctype=spec["SMALL"][t.suffix].ctype, dtype=t.name,
                            suffix=t.suffix, scalar=not fn.select_only)
            for t in spec["ML_TYPES"]]


def generate_cython_loops(spec):
    ufuncs = [SimpleNamespace(name=fn.name, nin=fn.nin, select_only=fn.select_only,
                              loops=loops_of(spec, fn), ml_loops=ml_loops(spec, fn))
              for fn in spec["FUNCTIONS"]]
    expand("relu_ufunc/_loops.h.in", os.path.join(GEN_DIR, "_loops.h"), ufuncs=ufuncs)
    expand("relu_ufunc/_ufuncs.pyx.in", PYX, ufuncs=ufuncs)


def generate_scalar_api(spec):
    """The `cdef api` formulas that relu_ufunc._numba_ext calls from @njit code,
    included at the end of _ufuncs.pyx (_spec.scalar_formulas)."""
    formulas = [SimpleNamespace(name=name, nin=nin, suffix=sfx, ctype=spec["FORMULA_C_TYPES"][sfx])
                for name, nin, sfx, _ in spec["scalar_formulas"](lambda c: np.dtype(c).itemsize)]
    return expand("relu_ufunc/_scalar_api.pxi.in", os.path.join(GEN_DIR, "_scalar_api.pxi"),
                  formulas=formulas)


def numba_loop(t):
    """How the Numba loop of one type row works: float16 on its bits (as in
    the header), integers and floats as numbers."""
    family = {"f16": "f16", "float": "flt"}.get(t.family, "int")
    one = "0x3C00" if family == "f16" else "1"
    return SimpleNamespace(char=t.char, nbtype=t.numba, family=family, one=one,
                           size=np.dtype(t.char).itemsize, fmt=None)


def numba_ml_loop(spec, t):
    """The Numba loop of an ML format: on its bits, with its layout."""
    fmt = spec["SMALL"][t.suffix]
    size = 2 if fmt.ctype == "unsigned short" else 1
    return SimpleNamespace(char=t.suffix, nbtype="uint%d" % (8 * size), family="small",
                           one=hex(fmt.one), size=size, fmt=fmt)


def generate_numba_loops(spec):
    """The Numba backend's loops: pure Python, so generated even where no C
    compiler is, which is when that backend is needed.  Two modules: the
    NumPy types' loops, and the ml_dtypes formats' (imported only once
    ml_dtypes is)."""
    ml = [numba_ml_loop(spec, t) for t in spec["ML_TYPES"]]
    outputs = []
    for part in ("numpy", "ml"):
        ufuncs, all_loops = [], {}
        for fn in spec["FUNCTIONS"]:
            loops = ml if part == "ml" else [numba_loop(t) for t in spec["numba_types"](fn)]
            all_loops.update((lp.char, lp) for lp in loops)
            ufuncs.append(SimpleNamespace(name=fn.name, nin=fn.nin, part=loops,
                                          params=", ".join(fn.args),
                                          half_via_float="e" in fn.types and not fn.select_only))
        outputs.append((part, ufuncs, list(all_loops.values())))
    # Numba's on-disk cache of the loops is keyed on this generated file's
    # mtime: naming the hash of the helpers they inline makes an edit there
    # change this file, and so recompile them.
    import hashlib
    with open(os.path.join(HERE, "relu_ufunc", "_numba_small.py"), "rb") as f:
        inlined = hashlib.sha256(f.read()).hexdigest()[:16]
    for part, ufuncs, loops in outputs:
        name = "_numba_ml_loops.py" if part == "ml" else "_numba_loops.py"
        expand("relu_ufunc/_numba_loops.py.in", os.path.join(HERE, "relu_ufunc", name),
               ufuncs=ufuncs, loops=loops, inlined=inlined, ml=part == "ml")


def compile_args():
    return runpy.run_path(os.path.join(HERE, "relu_ufunc", "_flags.py"))["compile_args"]()


def generate_constants():
    """build/src/relu_ufunc/_constants.h from relu_ufunc/_constants.py."""
    names = runpy.run_path(os.path.join(HERE, "relu_ufunc", "_constants.py"))
    lines = [f"#define RELU_{k} ((ptrdiff_t){v})" for k, v in names.items()
             if k.isupper() and isinstance(v, int)]
    return expand_text("/* Generated by setup.py from relu_ufunc/_constants.py. */\n"
                       "#include <stddef.h>\n" + "\n".join(lines) + "\n",
                       os.path.join(GEN_DIR, "_constants.h"))


SPEC = load_table()
HEADERS = ["relu_ufunc/_loops_common.h", "relu_ufunc/_threads.h"]
@functools.cache
def generate_sources():
    """Expand every template, once per process: run by build_py (the Numba
    loops are modules of the package) and build_ext, not when setup.py is
    loaded, so that pip's metadata step (egg_info, dist_info) generates
    nothing.  pip runs setup.py twice per install, and under CI's ARM64
    emulation each run's expansion and Cython took 95 of the install's 213 s."""
    generate_constants()
    generate_numba_loops(SPEC)
    generate_scalar_api(SPEC)
    sync_headers(*HEADERS)
    generate_cython_loops(SPEC)


ext = Extension(
    "relu_ufunc._ufuncs",
    sources=[PYX, "relu_ufunc/_threads.c", "relu_ufunc/_plan.c"],
    include_dirs=[np.get_include(), os.path.join(HERE, "cuda"),
                  os.path.join(HERE, "relu_ufunc"), GEN_DIR],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                   ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION")],
    extra_compile_args=compile_args(),
    depends=["cuda/relu_ufunc.h", "relu_ufunc/_loops.h.in", *HEADERS,
             os.path.join(GEN_DIR, "_scalar_api.pxi")],
    # Not optional: a compile error fails the install.  Only a compiler that
    # does not work at all skips the extension (build_ext_checked).
)

def user_flags(name):
    """The user's CFLAGS or LDFLAGS, as a list: they go last on every
    command line (the extension's and every probe's), so that they win."""
    return shlex.split(os.environ.get(name, ""))


class Probe:
    """Compile, link and run small C programs exactly as the extension is
    built: the compiler's own command lines, the user's CFLAGS and LDFLAGS
    last, and the compiler's messages kept for the report."""

    def __init__(self, compiler, tmp):
        self.compiler, self.tmp, self.count = compiler, tmp, 0

    def run(self, source, compile_args=(), link_args=(), execute=False):
        """(ok, output): output is what the program printed when run, else
        the compiler's last message."""
        self.count += 1
        src = os.path.join(self.tmp, f"probe{self.count}.c")
        obj, exe = src[:-2] + ".o", src[:-2]
        with open(src, "w") as f:
            f.write(source)
        steps = [self.compiler.compiler_so + ["-c", src, "-o", obj, *compile_args,
                                              *user_flags("CFLAGS")],
                 self.compiler.linker_exe + [obj, "-o", exe, *link_args,
                                             *user_flags("LDFLAGS")]]
        if execute:
            steps.append([exe])
        for cmd in steps:
            try:
                res = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as e:
                return False, f"{cmd[0]}: {e}"
            if res.returncode != 0:
                lines = (res.stderr or res.stdout).strip().splitlines()
                errors = [ln for ln in lines if "error" in ln.lower()]
                return False, (errors or lines or [f"{cmd[0]} exited {res.returncode}"])[0]
        return True, res.stdout.strip() if execute else ""


WORKS = "int main(void) { return 0; }\n"
PTHREADS = """#include <pthread.h>
static void *work(void *p) { return p; }
int main(void) { pthread_t t; void *r; int v = 1;
  if (pthread_create(&t, 0, work, &v)) return 1; pthread_join(t, &r); return r != &v; }
"""
# The features the headers choose for this compiler and CPU family; the
# same headers and flags as the extension, so the report cannot disagree.
FEATURES = """#include <stdio.h>
#include "_loops_common.h"
int main(void) {
#if defined(__clang__)
  printf("clang %d.%d.%d|", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  printf("gcc %d.%d.%d|", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  printf("an unknown C compiler|");
#endif
#if defined(__x86_64__)
  printf("x86-64|");
#elif defined(__aarch64__)
  printf("AArch64|");
#else
  printf("other|");
#endif
  printf("%d|%d|%d\\n", RELU_LEVELS, RELU_STREAM, RELU_THREADS);
  return 0;
}
"""


def describe(features, threads_off):
    """The build's one-line report, and why each feature that is off is off."""
    compiler, arch, levels, stream, threads = features.split("|")
    if levels == "3":
        builds = "kernels: AVX-512, AVX2 and SSE2 builds, the best this CPU runs chosen at import"
    elif arch == "AArch64":
        builds = ("kernels: one build, NEON (Advanced SIMD is AArch64's baseline, which the "
                  "compiler vectorizes for)")
    else:
        builds = "kernels: one portable build (per-CPU builds are for x86-64 with gcc or clang)"
    stores = ("streaming stores: on, from the size measured to win" if stream == "1" else
              "streaming stores: off (x86-64 only)")
    team = ("threads: on (a pthread pool)" if threads == "1" else
            f"threads: off ({threads_off or 'no POSIX threads on this platform'})")
    return f"relu_ufunc build: {compiler}, {arch}; {builds}; {stores}; {team}"


class build_ext_checked(build_ext):
    """Build the extension where a C compiler works, and fail loudly where it
    fails for any other reason.

    Only a compiler that cannot build a trivial program (none installed,
    CC=/bin/false) skips the extension: the package then installs for the
    Numba backend, and says so.  Any other failure is a bug, and fails the
    install with the compiler's message.  Threads are probed too (a pthread
    program, built and linked with the user's flags); the build prints one
    line of what it enabled and why anything is off, and the module keeps
    that line (relu_ufunc._ufuncs.BUILD_INFO, shown by python -m relu_ufunc).

    Also put the built extension beside the sources (as --inplace would):
    `pip install . && python -m relu_ufunc`, run from the checkout, imports
    the package from the current directory rather than site-packages; with
    the extension beside it, both are the same code.  The copy is ignored by
    git.
    """

    def build_extensions(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            probe = Probe(self.compiler, tmp)
            works, why = probe.run(WORKS)
            if not works:
                print(f"WARNING: relu_ufunc: no working C compiler ({why}); the compiled "
                      f"extension is not built, and relu_ufunc will run on its Numba backend "
                      f"(pip install 'relu-ufunc[numba]')", file=sys.stderr, flush=True)
                self.extensions = []
                return
            threads, threads_off = probe.run(PTHREADS, ["-pthread"], ["-pthread"], execute=True)
            thread_flags = ["-pthread"] if threads else ["-DRELU_NO_THREADS"]
            thread_link = ["-pthread"] if threads else []
            includes = [f"-I{d}" for d in self.extensions[0].include_dirs]
            ok, features = probe.run(FEATURES, [*includes, *compile_args(), *thread_flags],
                                     thread_link, execute=True)
            if not ok:
                raise RuntimeError(f"relu_ufunc: the compiler works, but the build's feature "
                                   f"probe failed: {features}. This is a bug in relu_ufunc's "
                                   f"build; please report it with this message.")
        info = describe(features, None if threads else threads_off)
        print(info, flush=True)
        for ext in self.extensions:
            ext.extra_compile_args = [*ext.extra_compile_args, *thread_flags, *user_flags("CFLAGS")]
            ext.extra_link_args = [*ext.extra_link_args, *thread_link, *user_flags("LDFLAGS")]
            # The report, with the command lines' flags: the extension depends
            # on this header, so other flags (CFLAGS=-g, say) compile it again,
            # where its files' times alone would call an earlier build up to
            # date.  Also beside the .c, where cythonize put its copy of the
            # last one (the .c includes that copy first).
            flags = " ".join([*self.compiler.compiler_so, *ext.extra_compile_args, "; link:",
                              *ext.extra_link_args]).replace("*/", "* /")
            for where in {GEN_DIR, os.path.dirname(ext.sources[0]) or os.curdir}:
                expand_text(f'/* compile: {flags} */\n#define RELU_BUILD_INFO "{info}"\n',
                            os.path.join(where, os.path.basename(BUILD_INFO)))
        super().build_extensions()

    def run(self):
        if PACKAGE_EXT in self.extensions:      # (tests build small ones of their own)
            generate_sources()
            cythonize_if_changed(PACKAGE_EXT)
        super().run()
        if self.inplace:
            return
        for ext in self.extensions:
            built = self.get_ext_fullpath(ext.name)
            if os.path.exists(built):
                self.copy_file(built, os.path.join(HERE, self.get_ext_filename(ext.name)))


class build_py_with_header(build_py):
    """Ship cuda/relu_ufunc.h inside the package (relu_ufunc/include), where
    relu_ufunc.cuda reads it for its kernels and get_include() finds it."""

    def run(self):
        generate_sources()
        super().run()
        target = os.path.join(self.build_lib, "relu_ufunc", "include")
        self.mkpath(target)
        self.copy_file(os.path.join(HERE, "cuda", "relu_ufunc.h"), target)


def cythonize_if_changed(ext):
    """cythonize, unless the C file it wrote last time is still what it would
    write (nothing it reads has changed since: the generated .pyx and
    headers, the files they include, Cython and NumPy); `ext` then builds
    that C file.

    pip builds in an isolated environment whose NumPy, just unpacked, is
    newer than any earlier output, so cythonize's own timestamp check always
    re-translates, and the new .c (it names that environment's paths) made
    build_ext compile every kernel build again: the README's second command
    (pip install ".[test]" after pip install .) took 1 min 55 s here, most of
    it recompiling the same code.  With this, build_ext finds the extension
    up to date and skips it.  Anything that changes the compile without
    changing these inputs (another compiler, other flags) changes
    _build_info.h, a dependency, so it still rebuilds."""
    import hashlib
    import Cython
    from Cython.Build import cythonize
    key = hashlib.sha256()
    generated = [os.path.join(GEN_DIR, name) for name in sorted(os.listdir(GEN_DIR))
                 if name.endswith((".pyx", ".pxi", ".h")) and name != os.path.basename(BUILD_INFO)]
    for path in sorted({*ext.sources, *ext.depends, *generated}):
        with open(os.path.join(HERE, path), "rb") as f:
            key.update(path.encode() + b"\0" + f.read())
    key.update(f"Cython {Cython.__version__} NumPy {np.__version__}".encode())
    key = key.hexdigest()
    stamp = os.path.join(GEN_DIR, "_ufuncs.cython-key")
    c_file = os.path.join("build", "src", GEN_DIR, "_ufuncs.c")
    if not (os.path.exists(stamp) and os.path.exists(c_file) and open(stamp).read() == key):
        # (a new Extension, whose sources build_ext takes: the one it was
        # given carries its own settings, from finalize_options)
        translated, = cythonize([ext], build_dir=os.path.join("build", "src"),
                                compiler_directives={"language_level": 3})
        assert translated.sources[0] == c_file, translated.sources
        with open(stamp, "w") as f:
            f.write(key)
    ext.sources = [c_file, *ext.sources[1:]]
    # Written by build_ext after this (the probes' report), read by the .c.
    if BUILD_INFO not in ext.depends:
        ext.depends.append(BUILD_INFO)


PACKAGE_EXT = ext
setup(
    ext_modules=[ext],
    cmdclass={"build_ext": build_ext_checked, "build_py": build_py_with_header},
    packages=["relu_ufunc", "relu_ufunc.cuda"],
    package_data={"relu_ufunc": ["py.typed", "*.pyi"]},
)
