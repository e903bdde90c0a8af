"""CI's matrix: the supported Python and NumPy range, tested on a wheel.

    nox                      # every session, then the table of results
    nox -s "tests(3.13, newest)"
    nox -s "tests(3.13, newest)" -- -x -k pickle    # arguments after -- go to pytest

Each `tests` session, in its own fresh venv:
1. builds the sdist, and from the sdist a wheel, with its Python
   (`python -m build`: so the sdist is shown to hold what the build needs);
2. installs the test extras with NumPy pinned: the oldest supported release
   (with the oldest supported Numba), or the newest that installs on that
   Python (with the newest Numba that installs beside it); then the wheel,
   while CC and CXX name a program that fails: it needs no compiler;
3. runs `python -m relu_ufunc` and the test suite from a copy of tests/
   outside the checkout, so the installed wheel is what runs, on the Cython
   backend and then on Numba. Where no Numba release installs beside that
   NumPy, it says so in the log and in the table, and the Cython run still
   counts.

The `matrix` session prints the table and fails unless every run passed
something and failed nothing. The range itself is read from pyproject.toml,
and the sessions are checked against it: the oldest Python and NumPy
declared there are the ones the first session installs, and its classifiers
list exactly the Pythons tested.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
import xml.etree.ElementTree as ET

import nox

HERE = pathlib.Path(__file__).resolve().parent
PYPROJECT_TOML = tomllib.loads((HERE / "pyproject.toml").read_text())
PYPROJECT = PYPROJECT_TOML["project"]
DIST = HERE / "dist"
RESULTS = HERE / ".nox" / "matrix"

# (Python, NumPy, C compiler): the oldest supported Python with the oldest
# supported NumPy; the others with the newest NumPy they get. "oldest" is
# pyproject's floor, "newest" the newest release pip installs for that
# Python (resolved when the session runs). The wheel is built with the
# compiler named (clang from Debian's package, which .ci/run installs).
# Python 3.14 and 3.15, which pyenv does not have here, run in a Debian
# testing chroot, and ARM64 in an emulated one (.ci/chroot_tests.sh); their
# results join this table (CHROOT_CELLS).
MATRIX = [("3.11", "oldest", "gcc"), ("3.12", "newest", "gcc"), ("3.13", "newest", "clang")]
CHROOT_CELLS = [("3.14", "x86-64"), ("3.15", "x86-64"), ("3.13", "arm64")]
CUDA_HOST_CELL = "3.12"         # the session that installs CuPy (no GPU) for the host tests

nox.options.sessions = ["sdist", "tests", "matrix"]
nox.options.error_on_missing_interpreters = True     # a missing Python fails, never skips
nox.options.default_venv_backend = "venv"


def declared_floor(requirement, name):
    match = re.fullmatch(rf"{name}\s*>=\s*([0-9.]+)", requirement.strip())
    assert match, f"pyproject.toml: expected '{name}>=X.Y', got {requirement!r}"
    return match.group(1)


PYTHON_FLOOR = declared_floor(PYPROJECT["requires-python"], "")
NUMPY_FLOOR = declared_floor(next(r for r in PYPROJECT["dependencies"]
                                  if r.startswith("numpy")), "numpy")
NUMBA_FLOOR = declared_floor(PYPROJECT["optional-dependencies"]["numba"][0], "numba")
assert f"numba>={NUMBA_FLOOR}" in PYPROJECT["optional-dependencies"]["test"]
ML_DTYPES_FLOOR = declared_floor(PYPROJECT["optional-dependencies"]["ml"][0], "ml_dtypes")
assert f"ml_dtypes>={ML_DTYPES_FLOOR}" in PYPROJECT["optional-dependencies"]["test"]
# tests/test_install.py runs setup.py: the test extras name its build tools
# at the build's own floors (pyproject.toml's [build-system]).
assert {r for r in PYPROJECT_TOML["build-system"]["requires"] if not r.startswith("numpy")} \
    <= set(PYPROJECT["optional-dependencies"]["test"]), "test extras: setup.py's build tools"
CLASSIFIED = sorted((c.rsplit(" ", 1)[1] for c in PYPROJECT["classifiers"]
                     if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)),
                    key=lambda v: tuple(map(int, v.split("."))))
assert MATRIX[0][:2] == (PYTHON_FLOOR, "oldest"), (MATRIX[0], PYTHON_FLOOR)
TESTED = sorted({py for py, *_ in MATRIX} | {py for py, arch in CHROOT_CELLS if arch == "x86-64"},
                key=lambda v: tuple(map(int, v.split("."))))
assert TESTED == CLASSIFIED, (
    f"pyproject.toml's classifiers say Python {CLASSIFIED}; CI tests {TESTED}")
assert {cc for *_, cc in MATRIX} == {"gcc", "clang"}


def _pyenv_versions_active():
    """pyenv's shims (python3.12, python3.13) run only the active versions.
    Make every installed version active for nox's interpreter search, with
    the current one first, so that `python3` stays what it was."""
    root = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv"))
    if "PYENV_VERSION" in os.environ or not (root / "versions").is_dir():
        return
    try:
        current = subprocess.run(["pyenv", "version-name"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return
    others = sorted(p.name for p in (root / "versions").iterdir() if p.name != current)
    os.environ["PYENV_VERSION"] = ":".join([current, *others])


_pyenv_versions_active()


def _version(session, module):
    return session.run("python", "-c", f"import {module}; print({module}.__version__)",
                       silent=True).strip()


def _failing_compiler(tmp):
    """A 'compiler' that fails loudly: CC and CXX while the wheel installs."""
    path = pathlib.Path(tmp) / "no-compiler"
    path.write_text("#!/bin/sh\necho \"no-compiler: a compiler was called ($*)\" >&2\nexit 1\n")
    path.chmod(0o755)
    return str(path)


def _pytest(session, tests_dir, backend, xml):
    """The suite from outside the checkout on one backend; returns its counts.
    Failed tests (exit 1) are counted, and fail the session once the counts
    are written; any other non-zero exit (5: no tests ran) fails it at once."""
    session.run("python", "-m", "pytest", str(tests_dir), "-ra", "--strict-markers",
                "-p", "no:cacheprovider", f"--junitxml={xml}", *session.posargs,
                env={"RELU_UFUNC_BACKEND": backend}, success_codes=[0, 1])
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"backend": backend, **counts}


@nox.session
def sdist(session):
    """dist/relu_ufunc-*.tar.gz, from the checkout: what every tests session
    builds its wheel from."""
    for old in DIST.glob("relu_ufunc-*.tar.gz"):
        old.unlink()
    session.install("build")
    session.run("python", "-m", "build", "--sdist", "--outdir", str(DIST), str(HERE),
                silent=True)
    built, = DIST.glob("relu_ufunc-*.tar.gz")
    session.log(f"built {built}")


@nox.session
@nox.parametrize(("python", "numpy", "compiler"), MATRIX,
                 ids=[f"{py}, {np_}, {cc}" for py, np_, cc in MATRIX])
def tests(session, numpy, compiler):
    """A wheel from the sdist, built by `compiler`, installed without one,
    and the suite on it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_file = RESULTS / f"{session.python}.json"
    result_file.unlink(missing_ok=True)       # no stale result if this session fails
    tmp = pathlib.Path(session.create_tmp()).resolve()
    sdists = list(DIST.glob("relu_ufunc-*.tar.gz"))
    if len(sdists) != 1:
        session.error(f"expected one sdist in {DIST}, found {sdists}: run `nox -s sdist` first")
    src = tmp / "src"
    shutil.rmtree(src, ignore_errors=True)
    with tarfile.open(sdists[0]) as tar:
        tar.extractall(src, filter="data")
    unpacked, = src.iterdir()
    shutil.rmtree(tmp / "dist", ignore_errors=True)
    session.install("build")
    cc_path = shutil.which(compiler)
    if cc_path is None:
        session.error(f"{compiler} is not installed (.ci/run installs it)")
    session.run("python", "-m", "build", "--wheel", "--outdir", str(tmp / "dist"),
                str(unpacked), silent=True, env={"CC": cc_path})
    wheel, = (tmp / "dist").glob("*.whl")
    session.log(f"built {wheel.name} from {sdists[0].name}")

    # NumPy first, pinned; everything after it installs under that pin. The
    # oldest session takes the floors of NumPy and Numba, the others the
    # newest releases that install beside each other.
    if numpy == "oldest":
        session.install("--only-binary=numpy", f"numpy=={NUMPY_FLOOR}")
    else:
        session.install("--only-binary=numpy", "--upgrade", "numpy")
    numpy_version = _version(session, "numpy")
    pin = tmp / "constraints.txt"
    pin.write_text(f"numpy=={numpy_version}\n")

    # The oldest session takes ml_dtypes' floor too.
    test_extras = [r for r in PYPROJECT["optional-dependencies"]["test"]
                   if not r.startswith("numba")]
    if numpy == "oldest":
        test_extras = [f"ml_dtypes=={ML_DTYPES_FLOOR}" if r.startswith("ml_dtypes") else r
                       for r in test_extras]
    session.install("-c", str(pin), *test_extras)
    numba = f"numba=={NUMBA_FLOOR}" if numpy == "oldest" else f"numba>={NUMBA_FLOOR}"
    try:
        session.install("-c", str(pin), numba)
        numba_version = _version(session, "numba")
    except nox.command.CommandFailed:
        if numpy == "oldest":      # the declared floors must install together
            raise
        numba_version = None
        session.warn(f"NUMBA DOES NOT INSTALL ({numba}) with NumPy {numpy_version} on Python "
                     f"{session.python}: the Numba backend is NOT tested in this session")

    if session.python == CUDA_HOST_CELL:
        # CuPy and NVRTC, with no GPU: the host side of relu_ufunc.cuda (the
        # fast path on real cupy.ndarray objects, every kernel compiled by
        # NVRTC and run on the CPU) is tested here, and only the GPU skips.
        session.install("-c", str(pin), "cupy-cuda12x", "nvidia-cuda-nvrtc-cu12")

    cc = _failing_compiler(tmp)
    session.install("-c", str(pin), str(wheel), env={"CC": cc, "CXX": cc})
    assert _version(session, "numpy") == numpy_version

    # The sdist's tests, alone, outside the checkout: the installed wheel is
    # what they import.
    work = pathlib.Path(tempfile.mkdtemp(prefix="relu_ufunc-tests-"))
    shutil.copytree(unpacked / "tests", work / "tests")
    session.chdir(work)
    where = session.run("python", "-c", "import relu_ufunc; print(relu_ufunc.__file__)",
                        silent=True).strip()
    assert pathlib.Path(where).is_relative_to(session.virtualenv.location), where
    session.run("python", "-m", "relu_ufunc", env={"RELU_UFUNC_BACKEND": "cython"})
    build_info = session.run("python", "-c", "from relu_ufunc import _ufuncs; "
                             "print(_ufuncs.BUILD_INFO)", silent=True).strip()
    session.log(build_info)
    if not build_info.startswith(f"relu_ufunc build: {compiler} ") or "threads: on" not in build_info:
        session.error(f"the wheel was to be built by {compiler}, with threads: {build_info}")

    python_version = session.run("python", "-c", "import platform; "
                                 "print(platform.python_version())", silent=True).strip()
    row = {"session": session.name, "python": python_version, "numpy": numpy_version,
           "numba": numba_version, "pytest_args": session.posargs, "runs": [],
           "compiler": build_info.split(":", 1)[1].split(",")[0].strip(), "arch": "x86-64"}
    for backend in ("cython", "numba") if numba_version else ("cython",):
        row["runs"].append(_pytest(session, work / "tests", backend,
                                   tmp / f"junit-{backend}.xml"))
    result_file.write_text(json.dumps(row))
    session.chdir(HERE)
    shutil.rmtree(work)
    failed = [r["backend"] for r in row["runs"] if r["failures"] or r["errors"]]
    if failed:
        session.error(f"tests failed on the {' and '.join(failed)} backend")


@nox.session(python=False)
def matrix(session):
    """The table of every tests session's and chroot cell's runs; fails
    unless each ran."""
    lines = ["| cell | CPU | Python | NumPy | Numba | compiler | backend | passed | failed "
             "| errors | skipped |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    ok, total = True, {"passed": 0, "failures": 0, "errors": 0, "skipped": 0}
    cells = [(f"tests({py})", RESULTS / f"{py}.json") for py, *_ in MATRIX]
    cells += [(f"chroot {py} {arch}", RESULTS / f"chroot-{py}-{arch}.json")
              for py, arch in CHROOT_CELLS]
    for label, path in cells:
        if not path.exists():
            lines.append(f"| {label} | | | | | | | NO RESULT: the cell failed "
                         f"or did not run | | | |")
            ok = False
            continue
        row = json.loads(path.read_text())
        numba = row["numba"] or row.get("why_no_numba", "does not install")
        for r in row["runs"]:
            lines.append(f"| {row['session']} | {row['arch']} | {row['python']} | "
                         f"{row['numpy']} | {numba} | {row['compiler']} | {r['backend']} | "
                         f"{r['passed']} | {r['failures']} | {r['errors']} | {r['skipped']} |")
            ok &= r["passed"] > 0 and r["failures"] == 0 and r["errors"] == 0
            for k in total:
                total[k] += r[k]
        if row["numba"] is None:
            lines.append(f"| {row['session']} | {row['arch']} | {row['python']} | "
                         f"{row['numpy']} | {row.get('why_no_numba', 'does not install')} | "
                         f"{row['compiler']} | numba | NOT TESTED | | | |")
    print("\n".join(lines))
    for args in sorted({" ".join(json.loads(p.read_text()).get("pytest_args", []))
                        for p in RESULTS.glob("*.json")} - {""}):
        print(f"(pytest was also given: {args})")
    print(f"matrix: {total['passed']} passed, {total['failures'] + total['errors']} failed, "
          f"{total['skipped']} skipped")
    if not ok:
        session.error("the matrix is not all green (see the table above)")
