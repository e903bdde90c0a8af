"""benchmarks/gpu.py's tables, JSON and plot, on made-up rows (no GPU): the
verdicts against cp.maximum, the fused speedups, and --from-json."""
import json

import pytest

from conftest import source_module

gpu = source_module("benchmarks.gpu")        # not installed: needs the source tree

HOST_KINDS = {"ours-out": 4.0, "ref-out": 8.0, "ours-new": 9.0, "ref-new": 6.0,
              "general": 14.0, "elementwise": 9.5, "raw": 3.5, "torch-ours-out": 7.0,
              "torch-ours-new": 9.0, "torch-ref-new": 5.0, "torch-ref-out": 5.5}


def host_rows():
    return [{"op": op, "dtype": "float32", "n": n, "impl": f"{kind} impl", "kind": kind,
             "cpu_us": us * (1 + n / 1e5), "cpu_us_p10": us, "cpu_us_p90": us, "gpu_us": 2.0,
             "calls": 10}
            for op in gpu.HOST_OPS for n in (1, 1000) for kind, us in HOST_KINDS.items()]


def fused_rows():
    times = {"fused-out": 1.0, "fused-new": 1.5, "unfused-new": 3.3, "unfused-out": 2.0,
             "limit": 0.9}
    return [{"op": "bias+relu", "dtype": "float32", "n": r * c, "shape": [r, c],
             "impl": f"{kind} impl", "kind": kind, "seconds": t * r * c * 1e-12,
             "samples": [], "gb_per_s": 8 / (t * 1e-3)}
            for r, c in ((256, 1024), (4096, 4096)) for kind, t in times.items()]


def bandwidth_rows():
    return [{"op": "relu", "dtype": dt, "n": n, "impl": impl, "kind": kind,
             "seconds": t * n * 1e-12, "samples": [], "gb_per_s": 1e3 / t}
            for dt in ("float16", "float32") for n in (10**6, 10**7)
            for impl, kind, t in (("rc.relu(x, out=y)", "ours", 3.0), ("copy", "limit", 2.9),
                                  ("cp.maximum(x, 0, out=y)", "other", 5.0))]


def test_host_table_says_ok_where_ours_is_at_or_below_cp_maximum():
    text = gpu.host_table(host_rows())
    line = next(s for s in text.splitlines() if s.startswith("relu ") and " 1 " in s)
    # out=: 4.0 / 8.0 = 0.50 ok;  new: 9.0 / 6.0 = 1.50 OVER
    assert " 0.50 ok " in line and " 1.50 OVER " in line
    md = gpu.host_table(host_rows(), markdown=True).splitlines()
    assert md[0].startswith("| function | n |") and len(md) == 2 + 3 * 2
    assert "| relu_backward | 1000 | 4.0 us | 8.1 us | 0.50 |" in "\n".join(md)


def test_fused_table_gives_the_speedups():
    text = gpu.fused_table(fused_rows())
    assert "speedup 2.20x" in text and "with out= " in text and "2.00x" in text
    md = gpu.fused_table(fused_rows(), markdown=True)
    assert "| 4096x4096 |" in md and "| 2.20x |" in md


def test_from_json_writes_the_table_and_plot(tmp_path):
    data = {"machine": {"gpu": "Made Up GPU", "title": "made up"}, "host": host_rows(),
            "fused": fused_rows(), "bandwidth": bandwidth_rows()}
    path = tmp_path / "gpu-made-up-gpu.json"
    path.write_text(json.dumps(data))
    pytest.importorskip("matplotlib")
    gpu.main(["--from-json", str(path)])
    table = (tmp_path / "gpu-made-up-gpu-table.txt").read_text()
    assert "host time per call" in table and "---- markdown for the docs ----" in table
    assert "relu float32 (fastest of ours" in table and "= 97% of copy" in table
    assert (tmp_path / "gpu-made-up-gpu.png").stat().st_size > 10_000
