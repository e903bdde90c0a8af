"""examples/mlp.py: a few training steps lower the loss, and the relu_ufunc
network and the np.maximum network end with the same weights."""
import runpy

import numpy as np
import pytest

from conftest import source_file


@pytest.fixture
def mlp():
    return runpy.run_path(str(source_file("examples/mlp.py")))


def test_mlp_trains_and_matches_numpy_version(mlp):
    x, labels = mlp["make_data"](n=512)
    runs = {}
    for act in (mlp["ReluUfunc"](), mlp["NumpyMaximum"]()):
        params, losses, seconds = mlp["train"](act, x, labels, steps=8, hidden=64)
        assert losses[-1] < losses[0] * 0.9, losses
        assert seconds > 0
        runs[act.name] = params
    ours, theirs = runs["relu_ufunc"], runs["np.maximum"]
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert np.array_equal(ours[k], theirs[k]), k


def test_mlp_forward_keeps_no_preactivation_copy(mlp):
    z = np.array([[-1.0, 2.0]], np.float32)
    h = mlp["ReluUfunc"]().forward(z)
    assert h is z and z.tolist() == [[0.0, 2.0]]
