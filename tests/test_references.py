"""No file in the repository refers to a file that is not there: the paths
that code, comments and docs name (relu_ufunc/_spec.py, docs/contract.md,
_loops_common.h, benchmarks/results/...png) exist in the source tree, or are
files the build generates."""
import pathlib
import re
import subprocess

import pytest

from conftest import SOURCE_ROOT, source_file

# What setup.py generates (build/src/relu_ufunc, relu_ufunc/_numba_*loops.py)
# and what the benchmarks write when they run, by name.
GENERATED = {"_loops.h", "_ufuncs.pyx", "_ufuncs.c", "_numba_loops.py", "_numba_ml_loops.py",
             "_scalar_api.pxi", "_constants.h", "_build_info.h"}
EXTENSIONS = r"(?:py|pyi|pyx|pxi|h|c|in|md|txt|png|json|sh|toml|cfg)"
# A path with a folder: relu_ufunc/_spec.py, ../benchmarks/results/x.png
PATH = re.compile(r"(?<![\w./$<{-])((?:\.\./)?(?:[\w.-]+/)+[\w.-]+\." + EXTENSIONS + r")\b")
# A bare file name of ours: _loops_common.h, _threads.c
BARE = re.compile(r"(?<![\w./-])(_[a-z][\w]*\.(?:h|c|in|pyx|pxi|py))\b")
# Paths that name other projects' files or places outside the repository.
FOREIGN = ("numpy/", "cupy/", "/proc/", "/sys/", "/etc/", "/usr/", "/tmp/", "/var/",
           "site-packages/", "build/", "dist/", ".nox/", "docs/_build", "multiarray/",
           "umath/", "include/", "results/gpu-", "results/cpu-", "http", "numba/",
           "torch/", "dask/", "src/", "/opt/", "/ci/", "venv/", "github.com")


def tracked_files():
    source_file("setup.py")         # skips outside a source tree
    try:
        out = subprocess.run(["git", "ls-files"], cwd=SOURCE_ROOT, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [SOURCE_ROOT / p for p in out.splitlines()]


def test_every_referenced_file_exists():
    files = tracked_files()
    names = {p.name for p in files} | GENERATED
    rel = {p.relative_to(SOURCE_ROOT).as_posix() for p in files}
    missing = []
    for path in files:
        if path.suffix not in (".py", ".h", ".c", ".in", ".md", ".toml", ".sh", "") or \
                "results" in path.parts or path.name == "test_references.py":
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        for m in PATH.finditer(text):
            ref = m.group(1)
            if any(f in ref for f in FOREIGN) or "*" in ref or "{" in ref:
                continue
            here = (path.parent / ref).resolve()
            ok = (ref in rel or pathlib.PurePosixPath(ref).name in GENERATED
                  or (here.is_relative_to(SOURCE_ROOT)
                      and here.relative_to(SOURCE_ROOT).as_posix() in rel))
            if not ok:
                missing.append(f"{path.relative_to(SOURCE_ROOT)}: {ref}")
        for m in BARE.finditer(text):
            if m.group(1) not in names:
                missing.append(f"{path.relative_to(SOURCE_ROOT)}: {m.group(1)}")
    assert not missing, "references to files that are not there:\n" + "\n".join(missing)


def test_results_the_docs_show_exist():
    """The result files the docs name (tables, plots) are committed."""
    rel = {p.relative_to(SOURCE_ROOT).as_posix() for p in tracked_files()}
    missing = []
    for doc in (SOURCE_ROOT / "docs").glob("*.md"):
        for ref in re.findall(r"\(\.\./(benchmarks/results/[\w.-]+)\)", doc.read_text()):
            if ref not in rel:
                missing.append(f"{doc.name}: {ref}")
    assert not missing, missing
