"""The typed table (relu_ufunc/_spec.py) and its validation, which setup.py
runs before it generates any loop."""
import dataclasses

import numpy as np
import pytest

import relu_ufunc
from relu_ufunc import _spec

HEADER = (open(relu_ufunc.get_include() + "/relu_ufunc.h").read())


def itemsize(c):
    return np.dtype(c).itemsize


def test_the_table_validates_against_the_header():
    _spec.validate(HEADER, itemsize)


def test_the_ufuncs_have_exactly_the_tables_loops():
    for f in _spec.FUNCTIONS:
        uf = getattr(relu_ufunc, f.name)
        assert uf.nin == f.nin
        have = "".join(t[0] for t in uf.types)
        expected = f.types if relu_ufunc.backend == "cython" else f.types.replace("g", "")
        assert have == expected, f.name


def test_a_formula_missing_from_the_header_is_an_error():
    header = HEADER.replace("RELU_DEFINE_LEAKY(f64,", "RELU_DEFINE_NOTHING(f64,")
    with pytest.raises(ValueError, match="defines no leaky_relu_f64"):
        _spec.validate(header, itemsize)


def test_types_out_of_numpys_order_are_an_error(monkeypatch):
    f = dataclasses.replace(_spec.FUNCTIONS[0], types="Bb")
    monkeypatch.setattr(_spec, "FUNCTIONS", (f,) + _spec.FUNCTIONS[1:])
    with pytest.raises(ValueError, match="out of NumPy's order"):
        _spec.validate(HEADER, itemsize)


def test_a_duplicate_row_is_an_error(monkeypatch):
    monkeypatch.setattr(_spec, "FUNCTIONS", _spec.FUNCTIONS + _spec.FUNCTIONS[:1])
    with pytest.raises(ValueError, match="duplicate function"):
        _spec.validate(HEADER, itemsize)
    monkeypatch.undo()
    monkeypatch.setattr(_spec, "TYPES", _spec.TYPES + _spec.TYPES[:1])
    with pytest.raises(ValueError, match="duplicate type"):
        _spec.validate(HEADER, itemsize)


def test_an_unknown_type_is_an_error(monkeypatch):
    f = dataclasses.replace(_spec.FUNCTIONS[0], types="bF")
    monkeypatch.setattr(_spec, "FUNCTIONS", (f,) + _spec.FUNCTIONS[1:])
    with pytest.raises(ValueError, match="no type row"):
        _spec.validate(HEADER, itemsize)
