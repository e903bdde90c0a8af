import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pytest

import relu_ufunc as ru
from relu_ufunc._spec import UFUNCS

NAMES = list(UFUNCS)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_roundtrip_is_identity(name):
    uf = getattr(ru, name)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(uf, protocol=protocol)) is uf


STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def pickled_globals(payload):
    """The (module, name) pairs a pickle loads by reference: GLOBAL ops
    (protocols 0 to 3) and STACK_GLOBAL ops (4 and up: the two strings pushed
    just before, literal or fetched from the memo)."""
    found, strings, memo, prev = [], [], {}, None
    for op, arg, _ in pickletools.genops(payload):
        if op.name == "GLOBAL":
            found.append(tuple(arg.split(" ", 1)))
        elif op.name in STRING_OPS:
            strings.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            strings.append(memo.get(int(arg)))
        elif op.name == "STACK_GLOBAL":
            found.append((strings[-2], strings[-1]))
        if op.name == "MEMOIZE":            # memoizes the top: a string if one was just pushed
            memo[len(memo)] = strings[-1] if prev in STRING_OPS else None
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = strings[-1] if prev in STRING_OPS else None
        prev = op.name
    return found


@pytest.mark.parametrize("name", NAMES)
def test_pickled_by_name_in_relu_ufunc(name):
    """The pickle names the public module, never relu_ufunc._ufuncs or
    relu_ufunc._numba_backend: a pickle written on one backend loads on the
    other."""
    uf = getattr(ru, name)
    assert uf.__module__ == "relu_ufunc"
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert pickled_globals(pickle.dumps(uf, protocol=protocol)) == [("relu_ufunc", name)]


def test_pickled_globals_reads_what_pickle_writes():
    """The helper names the module a pickle really holds: os.path.join is
    pickled as posixpath.join (where it is defined), and np.add, a ufunc
    pickled through NumPy's reducer as ours are, as numpy.add."""
    import os
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert pickled_globals(pickle.dumps(os.path.join, protocol=protocol)) == [
            (os.path.join.__module__, "join")]
        assert pickled_globals(pickle.dumps(np.add, protocol=protocol)) == [("numpy", "add")]
        assert pickled_globals(pickle.dumps([ru.relu, ru.relu], protocol=protocol)) == [
            ("relu_ufunc", "relu")]


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
