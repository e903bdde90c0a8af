"""The benchmark suite runs and writes its results (no speed is asserted)."""
import json
import os
import platform
import shutil
import subprocess

import pytest
from numpy._core._multiarray_umath import __cpu_features__

from conftest import SOURCE_ROOT, source_file, source_module


@pytest.fixture(autouse=True)
def benchmarks_of_the_source_tree():
    """benchmarks/ is not installed: these tests need the source tree."""
    source_module("benchmarks.run")


@pytest.mark.slow
def test_suite_runs_and_writes_json_and_plots(tmp_path):
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    from benchmarks.run import main
    main(["--quick", "--sizes", "10", "1000", "--ops", "relu", "relu_backward",
          "--dtypes", "float32", "--out", str(tmp_path)])
    from benchmarks.run import cpu_slug
    tag = f"cpu-{cpu_slug()}-quick"
    data = json.loads((tmp_path / f"{tag}.json").read_text())
    impls = {r["impl"] for r in data["results"]}
    assert {"relu(x, out=y)", "np.copyto(y, x)", "np.maximum(x, 0)",
            "relu_backward(dy, x, out=y)", "np.add(dy, x, out=y)"} <= impls
    assert all(r["seconds"] > 0 for r in data["results"])
    assert (tmp_path / f"{tag}-relu.png").stat().st_size > 1000
    assert "targets" in (tmp_path / f"{tag}-table.txt").read_text()


def _rows(times, op="relu", n=10, dtype="float32"):
    return [{"op": op, "dtype": dtype, "n": n, "impl": impl, "seconds": t}
            for impl, t in times.items()]


def test_target_table_says_when_the_copy_alone_misses():
    """relu(x, out=y) <= 0.45x np.maximum(x, 0) at n <= 100; the floor is
    NumPy's cheapest ufunc call, np.positive(x, out=y), so where that is over
    0.45x np.maximum the line says 'MISS, floor'."""
    from benchmarks.run import target_table

    def line(times):
        table = target_table(_rows(times)).splitlines()
        return next(s for s in table if "relu(x, out=y) " in s and "np.maximum(x, 0) " in s)

    base = {"np.maximum(x, 0)": 1.0}
    assert line({**base, "relu(x, out=y)": 0.40, "np.positive(x, out=y)": 0.30}).endswith("ok")
    assert line({**base, "relu(x, out=y)": 0.60, "np.positive(x, out=y)": 0.30}).endswith("MISS")
    miss = line({**base, "relu(x, out=y)": 0.60, "np.positive(x, out=y)": 0.50})
    assert miss.endswith("MISS, floor") and " 0.50 " in miss and " 0.60 " in miss


def test_target_table_takes_the_fastest_anchor_at_each_size():
    """L(n) is the fastest of np.copyto, np.abs and np.negative (and the C
    probe) at that n, named in the line."""
    from benchmarks.run import target_table

    def line(times, n):
        table = target_table(_rows(times, n=n)).splitlines()
        return next(s for s in table if s.startswith("relu ") and "relu(x, out=y) " in s
                    and "L(n)=" in s)

    times = {"np.copyto(y, x)": 1.0, "np.abs(x, out=y)": 0.8, "np.negative(x, out=y)": 0.9}
    ok = line({**times, "relu(x, out=y)": 0.82}, 1000)
    assert ok.endswith("ok") and "L(n)=np.abs(x, out=y)" in ok and " 1.02 " in ok
    assert line({**times, "relu(x, out=y)": 0.9}, 1000).endswith("MISS")     # 1.125 x abs
    big = {**times, "nt copy (C probe)": 0.5, "relu(x, out=y)": 0.6}
    miss = line(big, 10**7)
    assert miss.endswith("MISS") and "C probe" in miss and " 1.20 " in miss


def test_threaded_calls_are_timed_with_threads_set():
    """The 2-thread line times the ufunc alone, with the setting held around
    the sample, and leaves the setting as it found it."""
    import relu_ufunc as ru
    from benchmarks.run import threaded, timed
    seen = []
    fn = threaded(lambda: seen.append(ru.get_num_threads()))
    timed(fn, 3)
    assert seen == [2, 2, 2] and ru.get_num_threads() == 1


def test_oversubscription_benchmark_times_its_threads():
    """benchmarks/oversubscription.py: every thread makes its calls, in
    threads(T), and the setting is left as it was."""
    import numpy as np
    import relu_ufunc as ru
    if ru.backend != "cython":
        pytest.skip("the budget it varies is the Cython backend's")
    from benchmarks.oversubscription import wall_time
    arrays = [(np.linspace(-1, 1, 1000, dtype=np.float32) * k, np.zeros(1000, np.float32))
              for k in range(1, 4)]
    assert wall_time(arrays, 3, 2) > 0
    assert all(np.array_equal(y, np.maximum(x, 0)) for x, y in arrays)
    assert ru.get_num_threads() == 1


def test_add_relu_benchmark_times_the_three_spellings(capsys):
    source_module("benchmarks.add_relu").main(["--max-n", "1e3", "--rounds", "2"])
    out = capsys.readouterr().out
    assert "np.add" in out and "add_relu/add" in out and "1e+03 |" in out
    assert "worst add_relu / np.add" in out


def test_ml_formats_benchmark_prints_its_ratios(capsys):
    pytest.importorskip("ml_dtypes")
    source_module("benchmarks.ml_formats").main(["--max-n", "1e3", "--rounds", "2"])
    out = capsys.readouterr().out
    assert "bfloat16, out=y" in out and "1e+03 |" in out and "worst ratio to the anchor" in out


def test_strided_output_benchmark_times_relu_against_np_abs(capsys):
    source_module("benchmarks.strided_output").main(["--max-n", "1e3", "--rounds", "2",
                                                     "--dtypes", "float32"])
    out = capsys.readouterr().out
    assert "relu/abs" in out and "1e+03 |" in out
    assert "worst relu / np.abs" in out


def test_stream_ahead_benchmark_times_each_distance_and_puts_the_choice_back(capsys):
    import relu_ufunc as ru
    if ru.backend != "cython":
        pytest.skip("the stream kernels are the Cython backend's")
    from relu_ufunc import _ufuncs
    if not _ufuncs.HAVE_STREAM:
        pytest.skip("this build has no streaming stores")
    source_module("benchmarks.stream_ahead").main(["--sizes", "1e4", "--rounds", "2"])
    out = capsys.readouterr().out
    chosen, tried = _ufuncs._stream_ahead(measure=False)
    assert f"chosen: {chosen} B" in out
    assert all(f"{d} B ahead" in out for d, _ in tried) and len(tried) == 4
    assert "relu_backward" in out and "2048 B" in out


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="an x86-64 harness")
@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")
def test_avx2_floor_harness_builds_and_its_kernel_keeps_the_header_bits(tmp_path):
    """benchmarks/avx2_floor.c, which docs/performance.md cites as the floor
    of relu_grad on an AVX2 CPU: it compiles with the extension's flags, and
    its hand-written 5-op relu_grad gives the header's bits."""
    source = source_file("benchmarks/avx2_floor.c")
    from relu_ufunc._flags import compile_args
    exe = tmp_path / "avx2_floor"
    subprocess.run([os.environ.get("CC", "cc"), *compile_args(), "-o", str(exe), str(source)],
                   check=True, cwd=SOURCE_ROOT)
    if not __cpu_features__.get("AVX2"):
        pytest.skip("this CPU has no AVX2 to run it on")
    out = subprocess.run([str(exe), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("the header's bits") == 4, out.stdout
