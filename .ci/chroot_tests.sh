#!/usr/bin/env bash
# CI: the cells of the support matrix that this machine's own Pythons and CPU
# cannot run, each in a Debian chroot (.ci/chroot.sh):
#   3.14 x86-64   Debian testing's python3.14, gcc 16: the whole suite, on
#                 both backends where Numba installs
#   3.15 x86-64   Debian testing's python3.15, gcc 16: likewise
#   3.13 arm64    Debian trixie's python3.13, gcc 14 (its x86-64 build, see
#                 cross_compiler), under qemu-user-static:
#                 the value, method, keyword, error, signalling-NaN, thread,
#                 add_relu and ml_dtypes tests, on the Cython backend (emulation is
#                 slow; nothing is timed there)
# Each cell installs the sdist with pip (so the chroot's compiler builds the
# extension, with -v to keep the build's report), the newest NumPy, pytest
# and hypothesis, runs python -m relu_ufunc, then the suite from a copy of
# tests/ outside any source tree.  Results go to .nox/matrix/chroot-*.json,
# for nox's matrix table.
#
# Under emulation, pip's own work (a venv with ensurepip, resolving,
# unpacking, a build environment) took about 500 of the ARM64 cell's 1,600
# s.  So for that cell the host's pip, natively, puts the aarch64 wheels of
# the dependencies, Cython, setuptools and pip itself into a folder the
# chroot's venv reads (a .pth file), and the sdist builds without build
# isolation, against them: the build and the tests are still the chroot's.
# The x86-64 cells, native, install everything as a user would.
#
#   .ci/chroot_tests.sh SDIST [CELL...]     CELL: 3.14 3.15 arm64 (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SDIST=$(readlink -f "$1")
shift
CELLS=("${@:-3.14 3.15 arm64}")
read -r -a CELLS <<< "${CELLS[*]}"
RESULTS=$ROOT/.nox/matrix
LOGS=$ROOT/.nox/logs
mkdir -p "$RESULTS" "$LOGS"

ARM64_TESTS=(tests/test_values.py tests/test_methods.py tests/test_keywords.py
             tests/test_errors.py tests/test_snan.py tests/test_threads.py tests/test_add_relu.py
             tests/test_ml_dtypes.py)

# Runs inside the chroot: PYTHON LABEL NUMBA(yes|no) TEST PATHS...
IN_CHROOT='
set -euo pipefail
PY=$1 LABEL=$2 WANT_NUMBA=$3
shift 3
W=/ci/$LABEL
rm -rf "$W" && mkdir -p "$W"
V=$W/venv/bin/python
ISOLATION=""
if [ -d "/ci/site-$LABEL" ]; then
    # the dependencies the host unpacked (see the top of this script)
    "$PY" -m venv --without-pip "$W/venv"
    SITE=$("$V" -c "import site; print(site.getsitepackages()[0])")
    echo "/ci/site-$LABEL" > "$SITE/ci-site.pth"
    ISOLATION=--no-build-isolation
else
    "$PY" -m venv "$W/venv"
    # (the venv pip as it comes: an upgrade costs minutes under emulation)
    "$V" -m pip install -q --only-binary=numpy numpy pytest hypothesis
    # ml_dtypes where a wheel exists for this Python (tests/test_ml_dtypes.py
    # skips, and says so, where none does)
    "$V" -m pip install -q --only-binary=:all: ml_dtypes > "$W/ml_dtypes.log" 2>&1 \
        || echo "ML_DTYPES DOES NOT INSTALL on $("$V" --version): its formats are NOT tested here"
fi
NUMBA=""
if [ "$WANT_NUMBA" = yes ]; then
    if "$V" -m pip install -q --only-binary=:all: numba > "$W/numba.log" 2>&1; then
        NUMBA=$("$V" -c "import numba; print(numba.__version__)")
    else
        echo "NUMBA DOES NOT INSTALL on $("$V" --version): the Numba backend is NOT tested here"
        tail -n 3 "$W/numba.log"
    fi
fi
CC=$("$V" -c "import sysconfig; print(sysconfig.get_config_var(\"CC\"))")
echo "+ pip install relu_ufunc sdist ($("$V" --version), CC=$CC is $(command -v "$CC"): $($CC --version | head -n 1))"
"$V" -m pip install -v $ISOLATION /ci/relu_ufunc.tar.gz > "$W/install.log" 2>&1 || {
    tail -n 60 "$W/install.log"; exit 1; }
grep -h "relu_ufunc build:" "$W/install.log" | tail -n 1 | sed "s/^ *//" > "$W/build_info.txt"
cat "$W/build_info.txt"
if [ "$(uname -m)" = aarch64 ]; then
    # Which SIMD the one ARM64 build has: GCC vectorizes the baseline for
    # NEON (Advanced SIMD, part of every AArch64 CPU), as its code shows.
    SO=$(find "$W/venv" -name "_ufuncs*.so")
    N=$(objdump -d --no-show-raw-insn "$SO" | awk "/<relu_f_plain_baseline>:/,/^\$/" \
        | grep -c -E "v[0-9]+\.(4s|16b)" || true)
    echo "NEON: relu_f_plain_baseline has $N Advanced SIMD instructions on 128-bit vectors"
    [ "$N" -gt 0 ] || { echo "FAIL: the ARM64 kernels are not vectorized"; exit 1; }
fi
cp -r /ci/tests "$W/tests"
cd "$W"
RELU_UFUNC_BACKEND=cython "$V" -m relu_ufunc
"$V" -c "import numpy, platform; print(platform.python_version(), numpy.__version__)" > "$W/versions.txt"
echo "$NUMBA" > "$W/numba.txt"
for backend in cython ${NUMBA:+numba}; do
    echo "+ pytest on the $backend backend"
    RELU_UFUNC_BACKEND=$backend "$V" -m pytest -q -p no:cacheprovider -m "not slow" --junitxml="$W/junit-$backend.xml" "$@" \
        | tail -n 15 || true
done
'

# The aarch64 wheels of what an ARM64 cell needs, unpacked by the host's
# pip into DIR for CPython VERSION (a recent pip first: older ones skip the
# newest NumPy's wheels).
host_site() {
    local dir=$1 version=$2 tmp
    tmp=$(mktemp -d)
    python3 -m pip install -q --root-user-action=ignore --target "$tmp/pip" pip 2>&1 \
        | grep -v "^WARNING: Location" || true
    local platforms=()
    for v in $(seq 41 -1 17); do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
    PYTHONPATH=$tmp/pip python3 -m pip install -q --root-user-action=ignore --only-binary=:all: \
        "${platforms[@]}" --python-version "$version" --implementation cp --abi "cp${version/./}" \
        --no-compile --target "$dir" numpy pytest hypothesis Cython setuptools pip ml_dtypes 2>&1 \
        | grep -v "^WARNING: Location" || true
    [ -d "$dir/numpy" ] || { echo "host_site: the aarch64 wheels did not install" >&2; exit 1; }
    rm -rf "$tmp"
    # Their bytecode, compiled natively by a host Python of the same version
    # (bytecode is the same on every CPU): the emulated Python compiled the
    # 800 modules it imported (Cython, setuptools, NumPy, pytest,
    # hypothesis) itself, about 100 s of the cell's CPU (all 1,782 of them:
    # 222 s emulated, 5.5 s natively).
    local native
    native=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python 2>/dev/null | tail -n 1 || true)
    [ -n "$native" ] || native=$(command -v "python$version" || true)
    if [ -n "$native" ] && [ "$("$native" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$version" ]; then
        "$native" -m compileall -q -j 0 -d "/ci/$(basename "$dir")" "$dir" >/dev/null
    else
        echo "host_site: no Python $version here: the emulated Python compiles its own bytecode"
    fi
}

# The ARM64 cell's compiler.  Emulated, gcc took 28 of the cell's 38
# minutes in CI (pip's build of the sdist, 06:33 to 07:01 on 2026-12-03), so
# the cell compiles with Debian trixie's own cross build of the same GCC
# (gcc-14-aarch64-linux-gnu, 14.2.0-19cross1 beside the native 14.2.0-19:
# one source, one target, armv8-a), run natively from an x86-64 trixie
# chroot mounted at /opt/xgcc.  It answers to aarch64-linux-gnu-gcc, the CC
# that the chroot Python's sysconfig names, and takes the chroot itself as
# its sysroot (its glibc, its Python headers), so the build is still pip's
# own, from the sdist, inside the ARM64 chroot; only cc1, as and ld run
# natively.  apt cannot install the cross compiler into the arm64 chroot
# itself: as an amd64 package, it depends on arch-all libraries, which
# multiarch counts as arm64.
cross_compiler() {
    local dir=$1
    mkdir -p "$dir/usr/local/bin" "$dir/usr/lib64"
    # x86-64 programs look for their loader at this path.
    ln -sfn /opt/xgcc/usr/lib64/ld-linux-x86-64.so.2 "$dir/usr/lib64/ld-linux-x86-64.so.2"
    [ -e "$dir/lib64" ] || ln -s usr/lib64 "$dir/lib64"
    printf '%s\n' '#!/bin/sh' \
        "# CI's ARM64 cell: trixie's gcc 14 for AArch64, its x86-64 build (.ci/chroot_tests.sh)" \
        'LD_LIBRARY_PATH=/opt/xgcc/usr/lib/x86_64-linux-gnu \' \
        '    exec /opt/xgcc/usr/bin/aarch64-linux-gnu-gcc-14 --sysroot=/ "$@"' \
        > "$dir/usr/local/bin/aarch64-linux-gnu-gcc"
    chmod +x "$dir/usr/local/bin/aarch64-linux-gnu-gcc"
}

cell() {
    local chroot=$1 python=$2 label=$3 numba=$4
    shift 4
    local dir=${RELU_CI_CHROOTS:-/var/cache/relu-ufunc-ci}/$chroot
    rm -f "$RESULTS/chroot-$label.json"
    mkdir -p "$dir/ci"
    rm -rf "$dir/ci/tests"
    cp "$SDIST" "$dir/ci/relu_ufunc.tar.gz"
    cp -r "$ROOT/tests" "$dir/ci/tests"
    local start=$SECONDS
    rm -rf "$dir/ci/site-$label"
    if [ "${label#*-}" = arm64 ]; then
        host_site "$dir/ci/site-$label" "${label%%-*}"
    fi
    .ci/chroot.sh run "$chroot" bash -c "$IN_CHROOT" in_chroot "$python" "$label" "$numba" "$@"
    python3 - "$dir/ci/$label" "$label" "$RESULTS/chroot-$label.json" <<'EOF'
import json, pathlib, sys
import xml.etree.ElementTree as ET
work, label, out = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
python, numpy = (work / "versions.txt").read_text().split()
numba = (work / "numba.txt").read_text().strip() or None
info = (work / "build_info.txt").read_text().strip()
runs = []
for backend in ("cython", "numba"):
    xml = work / f"junit-{backend}.xml"
    if not xml.exists():
        continue
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    c = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    c["passed"] = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
    runs.append({"backend": backend, **c})
py, arch = label.split("-", 1)
row = {"session": f"chroot {py} {arch}", "python": python, "numpy": numpy, "numba": numba,
       "compiler": info.split(":", 1)[1].split(",")[0].strip() if ":" in info else "?",
       "arch": arch, "build_info": info, "runs": runs, "pytest_args": []}
if arch == "arm64":
    row["why_no_numba"] = "not run under emulation"
out.write_text(json.dumps(row))
for r in runs:
    print(f"{row['session']}: {r['backend']}: {r['passed']} passed, "
          f"{r['failures'] + r['errors']} failed, {r['skipped']} skipped")
EOF
    echo "+ cell $label done in $((SECONDS - start)) s"
}

for c in "${CELLS[@]}"; do
    case "$c" in
        3.14|3.15)
            .ci/chroot.sh make amd64 testing amd64-testing python3.14 python3.14-venv \
                python3.14-dev python3.15 python3.15-venv python3.15-dev gcc libc6-dev >/dev/null
            cell amd64-testing "python$c" "$c-x86-64" yes tests ;;
        arm64)
            # (gcc and binutils: the native packages, what users have; the
            # build uses the cross build of the same gcc, cross_compiler)
            .ci/chroot.sh make arm64 trixie arm64-trixie python3 python3-venv python3-dev \
                gcc libc6-dev binutils >/dev/null
            xgcc=$(.ci/chroot.sh make amd64 trixie amd64-trixie-xgcc gcc-aarch64-linux-gnu)
            cross_compiler "${RELU_CI_CHROOTS:-/var/cache/relu-ufunc-ci}/arm64-trixie"
            CHROOT_BIND=$xgcc:/opt/xgcc cell arm64-trixie python3 "3.13-arm64" no \
                --hypothesis-profile=emulated "${ARM64_TESTS[@]}" ;;
        *) echo "unknown cell $c" >&2; exit 2 ;;
    esac
done
