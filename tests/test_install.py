"""The build (setup.py's build_ext_checked), on small extensions of our own:

- only a compiler that does not work at all skips the extension, and the
  package then installs for the Numba backend (CI runs that install, in
  .ci/no_compiler.sh);
- any other compile error fails the build, with the compiler's message;
- the user's CFLAGS come after the project's flags, and every probe
  compiles and links with CFLAGS and LDFLAGS.
"""
import os
import pathlib
import runpy
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="not a source checkout"),
    pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler"),
]


@pytest.fixture(scope="module")
def setup_py():
    """setup.py's globals, with setuptools.setup replaced by a recorder."""
    pytest.importorskip("Cython")
    setuptools = pytest.importorskip("setuptools")
    passed = {}
    real, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kw: passed.update(kw)
    os.chdir(ROOT)
    try:
        namespace = runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real
        os.chdir(cwd)
    namespace["passed"] = passed
    return namespace


def build(setup_py, tmp_path, source, monkeypatch, depends=(), **env):
    """Build an extension of one C file with setup.py's build_ext and the
    project's flags, in tmp_path; return the build_ext command.  source
    None: build the file already there, as it is (its time unchanged)."""
    from setuptools import Distribution, Extension
    for key in ("CC", "CFLAGS", "LDFLAGS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    if source is not None:
        (tmp_path / "probe_ext.c").write_text(source)
    ext = Extension("probe_ext", ["probe_ext.c"], depends=list(depends),
                    include_dirs=[str(ROOT / "relu_ufunc"), str(ROOT / "cuda"),
                                  str(ROOT / setup_py["GEN_DIR"])],
                    extra_compile_args=setup_py["compile_args"]())
    dist = Distribution({"name": "probe", "ext_modules": [ext],
                         "cmdclass": {"build_ext": setup_py["build_ext_checked"]}})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.ensure_finalized()
    cmd.run()
    return cmd


MODULE = """#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "probe_ext", 0, -1, 0};
PyMODINIT_FUNC PyInit_probe_ext(void) { return PyModule_Create(&def); }
"""


def test_the_extension_is_not_optional(setup_py):
    exts = setup_py["passed"]["ext_modules"]
    assert [e.name for e in exts] == ["relu_ufunc._ufuncs"]
    assert not any(e.optional for e in exts)


def test_no_working_compiler_skips_the_extension(setup_py, tmp_path, monkeypatch, capsys):
    cmd = build(setup_py, tmp_path, MODULE, monkeypatch, CC="/bin/false")
    assert cmd.extensions == []
    assert "no working C compiler" in capsys.readouterr().err
    assert not list(tmp_path.glob("probe_ext*.so"))


def test_a_compile_error_fails_the_build(setup_py, tmp_path, monkeypatch):
    broken = MODULE + "int f(void) { return relu_no_such_function(); }\n"
    from setuptools.errors import CompileError
    with pytest.raises(CompileError):
        build(setup_py, tmp_path, broken, monkeypatch)


def test_a_working_build_reports_its_features(setup_py, tmp_path, monkeypatch, capsys):
    build(setup_py, tmp_path, MODULE, monkeypatch)
    out = capsys.readouterr().out
    line, = [ln for ln in out.splitlines() if ln.startswith("relu_ufunc build:")]
    assert "threads: on" in line, line
    assert list(tmp_path.glob("probe_ext*.so"))


def test_user_cflags_come_last(setup_py, tmp_path, monkeypatch):
    """The project asks for -O3; CFLAGS=-O0 must win (it is not optimized)."""
    source = MODULE + "#ifdef __OPTIMIZE__\n#error the user's -O0 did not come last\n#endif\n"
    build(setup_py, tmp_path, source, monkeypatch, CFLAGS="-O0")
    from setuptools.errors import CompileError
    with pytest.raises(CompileError):  # and without CFLAGS the check itself fails
        build(setup_py, tmp_path, source, monkeypatch)


def test_other_flags_rebuild_an_up_to_date_extension(setup_py, tmp_path, monkeypatch):
    """A build that is up to date by its files' times still compiles again
    when the flags change (the user's CFLAGS, or the project's): they are
    written into the build report header, on which the extension depends.
    Otherwise `CFLAGS=-g pip install .` after a plain install, which builds in
    the same build/ folder, would reinstall the old extension."""
    source = MODULE + "#ifdef RELU_TEST_REBUILT\n#error rebuilt with the new CFLAGS\n#endif\n"
    from setuptools.errors import CompileError
    build(setup_py, tmp_path, source, monkeypatch, depends=["_build_info.h"])
    # up to date: nothing compiles, nothing fails
    build(setup_py, tmp_path, None, monkeypatch, depends=["_build_info.h"])
    with pytest.raises(CompileError):
        build(setup_py, tmp_path, None, monkeypatch, depends=["_build_info.h"],
              CFLAGS="-DRELU_TEST_REBUILT")


def _elf_sections(path):
    """The section names of a 64-bit little-endian ELF file (None otherwise)."""
    import struct
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    return {data[strtab + h[0]:data.index(b"\0", strtab + h[0])].decode() for h in headers}


def test_no_debug_information_unless_cflags_asks(setup_py, tmp_path, monkeypatch):
    """The project builds with -g0 (Python's own CFLAGS carry -g): its DWARF
    was a fifth of the compile time.  CFLAGS=-g gives it back."""
    build(setup_py, tmp_path, MODULE, monkeypatch)
    so, = tmp_path.glob("probe_ext*.so")
    sections = _elf_sections(so)
    if sections is None:
        pytest.skip("not a 64-bit little-endian ELF platform")
    assert ".text" in sections and ".debug_info" not in sections, sorted(sections)
    so.unlink()
    build(setup_py, tmp_path, MODULE, monkeypatch, CFLAGS="-g")
    so, = tmp_path.glob("probe_ext*.so")
    assert ".debug_info" in _elf_sections(so)


def test_probes_link_with_ldflags(setup_py, tmp_path, monkeypatch):
    """LDFLAGS reach every probe's link: a library that is not there makes
    the compiler probe fail (so the extension is skipped, and says why)."""
    cmd = build(setup_py, tmp_path, MODULE, monkeypatch,
                LDFLAGS="-L/nonexistent -lrelu_ufunc_no_such_library")
    assert cmd.extensions == []


def test_generated_c_names_the_template_lines(setup_py, tmp_path):
    """The expanded C carries #line directives: a compiler error in it names
    the template's own line, not the generated file's."""
    from Cython.Tempita import Template
    template = ("{{py:\nN = 2\n}}\nint x;\n{{for i in range(N)}}\nint y{{i}};\n{{endfor}}\n"
                "int z = no_such_name;\n")
    text = setup_py["with_line_directives"](template, "t.h.in")
    c = tmp_path / "t.c"
    c.write_text(Template(text).substitute())
    assert c.read_text().count('#line 6 "t.h.in"') == 2          # once per iteration
    res = __import__("subprocess").run([os.environ.get("CC", "cc"), "-c", str(c), "-o",
                                        str(tmp_path / "t.o")], capture_output=True, text=True)
    assert res.returncode != 0
    assert "t.h.in:8" in res.stderr, res.stderr
