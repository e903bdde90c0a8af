#!/usr/bin/env bash
# CI: install relu_ufunc where no C compiler works (CC=/bin/false), as a user
# without one would, and check both outcomes:
#   1. without Numba, `import relu_ufunc` is an ImportError that names a C
#      compiler and the numba extra;
#   2. with Numba (then installed into the same venv, so the package is built
#      once), the import gives exactly one RuntimeWarning that says the
#      extension was not built, backend == "numba", and the tests whose code
#      differs when the extension is missing pass: the backend's choice and
#      its fallbacks (test_backends.py), relu_ufunc inside @njit, which
#      calls the Numba twins of the scalar formulas where the extension's
#      `cdef api` exports are missing (test_njit.py, test_examples.py), and
#      the value tables (test_values.py).  The rest of the suite runs on the
#      Numba backend in .ci/run's README pass, where the array loops inside
#      @njit and from Python are the same Numba loops as here.
# The suite runs from a copy of tests/, examples/, benchmarks/ and
# pyproject.toml (pytest's settings) outside the checkout, so it imports the
# installed package, not the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PY" -m venv "$WORK/venv"
VPY=$WORK/venv/bin/python
"$VPY" -m pip install -q --upgrade pip

# From a clean copy of the checkout (its tracked and not-ignored files), as a
# fresh clone would be: a build/ folder left by an earlier build with a
# compiler would put its old extension into the wheel.
SRC=$WORK/src
mkdir "$SRC"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    if [ -e "$f" ]; then
        mkdir -p "$SRC/$(dirname "$f")" && cp -p "$f" "$SRC/$f"
    fi
done

echo "+ CC=/bin/false pip install .        (no working C compiler)"
CC=/bin/false CXX=/bin/false "$VPY" -m pip install -v "$SRC" >"$WORK/install.log" 2>&1 || {
    cat "$WORK/install.log"; echo "FAIL: pip install . failed without a C compiler"; exit 1; }
grep -E "no working C compiler|Successfully installed" \
    "$WORK/install.log" | sed 's/^/  | /'
grep -q "^Successfully installed .*relu-ufunc" "$WORK/install.log"
grep -q "relu_ufunc: no working C compiler" "$WORK/install.log" || {
    echo "FAIL: the build did not say that no working C compiler was found"; exit 1; }
if find "$WORK/venv" -name '_ufuncs*.so' -o -name '_ufuncs*.pyd' | grep -q .; then
    echo "FAIL: a compiled extension was installed although no compiler works"; exit 1
fi

cd "$WORK"          # never import the checkout's relu_ufunc

echo "+ import relu_ufunc, without Numba: an ImportError naming a C compiler and the numba extra"
if "$VPY" -c "import relu_ufunc" 2>"$WORK/err.txt"; then
    echo "FAIL: import relu_ufunc worked with neither the extension nor Numba"; exit 1
fi
tail -n 1 "$WORK/err.txt" | sed 's/^/  | /'
tail -n 1 "$WORK/err.txt" | grep -q "^ImportError: .*C compiler.*relu-ufunc\[numba\]"

echo "+ pip install numba pytest hypothesis"
# Only what the suite needs to run: the optional packages' tests (Dask,
# xarray, pandas, mypy, matplotlib) skip here, and run on the Numba backend
# in .ci/run's own pass.  This keeps the check to a few minutes.
"$VPY" -m pip install -q numba pytest hypothesis

echo "+ import relu_ufunc, with Numba: one RuntimeWarning, backend == 'numba'"
"$VPY" - <<'EOF'
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import relu_ufunc
runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print("  | backend:", relu_ufunc.backend)
for message in runtime:
    print("  | RuntimeWarning:", message)
assert relu_ufunc.backend == "numba", relu_ufunc.backend
assert len(runtime) == 1, runtime
assert "was not built" in runtime[0] and "C compiler" in runtime[0], runtime[0]
EOF

echo "+ the tests whose code differs without the extension, on the installed package (Numba backend)"
mkdir suite
cp -r "$ROOT/tests" "$ROOT/examples" "$ROOT/benchmarks" "$ROOT/pyproject.toml" suite/
cd suite
"$VPY" -m pytest -q -p no:cacheprovider -W "ignore:relu_ufunc:RuntimeWarning" \
    tests/test_backends.py tests/test_njit.py tests/test_examples.py tests/test_values.py
echo "no-compiler install: OK"
