"""The examples run: a few training steps lower the loss, and the relu_ufunc
network ends with the same weights as the one spelled without it (mlp.py:
np.maximum; njit_mlp.py: the seed's @njit x * (x > 0))."""
import re
import runpy
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import source_file


@pytest.fixture
def mlp():
    return runpy.run_path(str(source_file("examples/mlp.py")))


def test_mlp_trains_and_matches_numpy_version(mlp):
    x, labels = mlp["make_data"](n=512)
    runs = {}
    for act in (mlp["ReluUfunc"](), mlp["ReluUfuncTwoPasses"](), mlp["NumpyMaximum"]()):
        params, losses, seconds, epoch = mlp["train"](act, x, labels, steps=8, hidden=64)
        assert losses[-1] < losses[0] * 0.9, losses
        assert 0 < seconds and 0 < epoch
        runs[act.name] = params
    ours = runs["relu_ufunc"]
    for theirs in (runs["relu_ufunc, two passes"], runs["np.maximum"]):
        assert ours.keys() == theirs.keys()
        for k in ours:
            assert np.array_equal(ours[k], theirs[k]), k


def test_mlp_forward_keeps_no_preactivation_copy(mlp):
    z = np.array([[-1.0, 2.0]], np.float32)
    h = mlp["ReluUfunc"]().forward(z, np.array([0.5, -0.5], np.float32))
    assert h is z and z.tolist() == [[0.0, 1.5]]


@pytest.mark.slow
def test_njit_mlp_runs_and_matches_the_seed_spelling(tmp_path):
    """examples/njit_mlp.py, run as a user runs it, twice: relu_ufunc inside
    jitted forward and backward passes trains the network, to the very weights
    of the seed's x * (x > 0); the second run loads the first one's Numba cache.

    As a script, not through runpy: a function compiled with cache=True in a
    module that is not importable (runpy's) leaves cache entries that the
    next process cannot load (ModuleNotFoundError: '<dynamic>')."""
    pytest.importorskip("numba")
    script = tmp_path / "njit_mlp.py"           # its cache lands beside it
    shutil.copy(source_file("examples/njit_mlp.py"), script)
    for run in ("compiles", "loads the cache"):
        proc = subprocess.run(
            [sys.executable, str(script), "--steps", "4", "--batch", "64", "--hidden", "32"],
            capture_output=True, text=True, cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, (run, proc.stderr)
        out = proc.stdout
        assert "same weights as the seed's spelling: True" in out, (run, out)
        assert "training step" in out and "activations alone" in out, (run, out)
        first, last = map(float, re.search(r"loss (\S+) -> (\S+);", out).groups())
        assert last < first, (run, out)
    assert list(tmp_path.glob("__pycache__/njit_mlp.*.nbi"))
