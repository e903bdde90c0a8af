import pickle
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc as ru

NAMES = ["relu", "relu_grad", "relu_backward", "leaky_relu", "leaky_relu_grad"]


@pytest.mark.parametrize("name", NAMES)
def test_pickle_roundtrip_is_identity(name):
    uf = getattr(ru, name)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(uf, protocol=protocol)) is uf


@pytest.mark.parametrize("name", NAMES)
def test_pickled_by_name_in_relu_ufunc(name):
    assert getattr(ru, name).__module__ == "relu_ufunc"
    assert b"relu_ufunc" in pickle.dumps(getattr(ru, name))


def test_unpickle_in_fresh_interpreter():
    payload = pickle.dumps([ru.relu, ru.relu_grad, ru.relu_backward, np.array([-1.0, 2.0])])
    code = (
        "import pickle, sys\n"
        "fs = pickle.loads(sys.stdin.buffer.read())\n"
        "relu, grad, back, x = fs\n"
        "print(relu(x).tolist(), grad(x).tolist(), back(x, x).tolist(), relu.__name__)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True,
                         check=True)
    assert res.stdout.decode().split() == "[0.0, 2.0] [0.0, 1.0] [0.0, 2.0] relu".split()
