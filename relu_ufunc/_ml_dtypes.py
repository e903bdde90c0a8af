"""The ml_dtypes formats: their loops join the ufuncs when ml_dtypes is
imported, before or after relu_ufunc, so that ``relu(bfloat16 array)``
returns bfloat16 (without them NumPy would pick the float32 loop through
ml_dtypes' safe cast, and silently return float32).  ml_dtypes stays
optional, and ``import relu_ufunc`` does not import it.

ml_dtypes' types are NumPy user dtypes.  Their loops are registered with
``PyUFunc_RegisterLoopForType`` (each backend's ``_register_ml``), for the
formats of _spec.ML_TYPES that the installed ml_dtypes has.  NumPy's
default type resolution then finds them for ML inputs, with two gaps that
one gap, which a promoter closes: a Python float beside an ML array
(``leaky_relu(x, 0.01)``).  The legacy resolver only tries a user loop when
every operand casts to it safely, and float64 does not cast safely to
bfloat16, so it picked float32; ml_dtypes' own ``np.multiply`` gives
bfloat16, and so do these now.

Not closed: ``dtype=bfloat16`` with inputs of another type.  NumPy 2 takes
``dtype=`` for the output only, and the legacy resolver looks for user
loops by the inputs' types; a promoter for "output D" would match every
call whose output is not given, one per format, which NumPy rejects as
ambiguous.  ``signature=`` (all operands) selects the loop there.
"""
import numpy as np

# ctypes callbacks and capsules NumPy keeps pointers to.
_KEEP_ALIVE = []
# (ufunc, DType class) pairs that have their promoters
_PROMOTED = set()


def registered_formats(ml_dtypes):
    """[(MLType, its NumPy dtype)] of the formats this ml_dtypes has."""
    from relu_ufunc._spec import ML_TYPES
    return [(t, np.dtype(getattr(ml_dtypes, t.name))) for t in ML_TYPES
            if hasattr(ml_dtypes, t.name)]


def _c_api(capsule_name, size):
    import ctypes
    from numpy._core import _multiarray_umath as umath
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return (ctypes.c_void_p * size).from_address(
        get_pointer(getattr(umath, capsule_name), None))


def _add_promoters(ufuncs, dtype_classes):
    """For each binary ufunc and ML DType class D: (D, Python float) and
    (Python float, D) promote every operand to D.  NumPy caches each result,
    so the promoter runs once per combination of DTypes."""
    import ctypes
    # PyArrayMethod_PromoterFunction: (ufunc, op_dtypes[], signature[], new_op_dtypes[]) -> int
    promoter_type = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object,
                                      ctypes.POINTER(ctypes.c_void_p),
                                      ctypes.POINTER(ctypes.c_void_p),
                                      ctypes.POINTER(ctypes.c_void_p))
    api = _c_api("_ARRAY_API", 400)
    py_float = ctypes.cast(api[356], ctypes.py_object).value   # PyArray_PyFloatDType
    add_promoter = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.py_object,
                                     ctypes.py_object)(_c_api("_UFUNC_API", 45)[44])
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.c_void_p]
    ours = {id(d) for d in dtype_classes}

    def promote(ufunc, op_dtypes, signature, new_op_dtypes):
        target = op_dtypes[0] if op_dtypes[0] in ours else op_dtypes[1]
        for i in range(ufunc.nargs):
            incref(target)
            new_op_dtypes[i] = target
        return 0

    callback = promoter_type(promote)
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    name = b"numpy._ufunc_promoter"
    capsule = new_capsule(ctypes.cast(callback, ctypes.c_void_p), name, None)
    _KEEP_ALIVE.append((callback, capsule, name))
    for uf in ufuncs:
        for d in dtype_classes if uf.nin == 2 else ():
            if (uf, d) not in _PROMOTED:       # NumPy refuses a second one
                add_promoter(uf, (d, py_float, None), capsule)
                add_promoter(uf, (py_float, d, None), capsule)
                _PROMOTED.add((uf, d))


def register(backend, ml_dtypes):
    """Register the backend's loops of the formats this ml_dtypes has, and
    the promoters: relu_ufunc/__init__.py calls it once ml_dtypes is
    imported."""
    from relu_ufunc._spec import FUNCTIONS
    formats = registered_formats(ml_dtypes)
    for t, dtype in formats:
        backend._register_ml(t.suffix, dtype.num)
    _add_promoters([getattr(backend, f.name) for f in FUNCTIONS],
                   [type(dtype) for _, dtype in formats])
