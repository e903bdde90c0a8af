"""The benchmark suite runs and writes its results (no speed is asserted)."""
import json

import pytest


def test_suite_runs_and_writes_json_and_plots(tmp_path):
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    from benchmarks.run import main
    main(["--quick", "--sizes", "10", "1000", "--ops", "relu", "relu_backward",
          "--dtypes", "float32", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "cpu-quick.json").read_text())
    impls = {r["impl"] for r in data["results"]}
    assert {"relu(x, out=y)", "np.copyto(y, x)", "np.maximum(x, 0)",
            "relu_backward(dy, x, out=y)", "np.add(dy, x, out=y)"} <= impls
    assert all(r["seconds"] > 0 for r in data["results"])
    assert (tmp_path / "cpu-quick-relu.png").stat().st_size > 1000
