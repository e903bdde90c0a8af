"""The ml_dtypes formats: their loops join the ufuncs when ml_dtypes is
imported, before or after relu_ufunc, so that ``relu(bfloat16 array)``
returns bfloat16 (without them NumPy would pick the float32 loop through
ml_dtypes' safe cast, and silently return float32).  ml_dtypes stays
optional, and ``import relu_ufunc`` does not import it.

ml_dtypes' types are NumPy user dtypes.  Each backend's ``_register_ml``
registers their loops, for the formats of _spec.ML_TYPES that the
installed ml_dtypes has: the Cython backend as ArrayMethods
(``PyUFunc_AddLoopFromSpec``), which NumPy calls with less work per call
than a legacy user loop (about 0.2 us less on a Zen 1, where a 1e3-element
bfloat16 relu takes 1 us: no look-up among the user loops, no allocation,
no FP check for the selecting functions); the Numba backend as legacy user
loops (``PyUFunc_RegisterLoopForType``), since its cfuncs have the legacy
signature.

Which loop a mixed call gets is decided by the promoters below, the same on
both backends: a format with a Python float or int keeps the format, and
with any other type the result is np.add's (ml_dtypes' own loops, legacy
user loops, which NumPy's legacy resolver finds).  NumPy's legacy
resolver does not see ArrayMethods, so without the promoters
``relu_backward(bfloat16, int8)`` would take the float32 loop.

Not closed: ``dtype=bfloat16`` with inputs of another type.  NumPy 2 takes
``dtype=`` for the output only, and resolves by the inputs' types; a
promoter for "output D" would match every call whose output is not given,
one per format, which NumPy rejects as ambiguous.  ``signature=`` (all
operands) selects the loop there.
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
    """The promoters of the binary ufuncs, for each ML DType class D (NumPy
    caches each result, so a promoter runs once per combination of DTypes):

    - (D, Python float or int) and the reverse: every operand D, as
      ml_dtypes' own ufuncs do, whatever ml_dtypes' version says of
      ``np.multiply(x, 0.1)``;
    - D with any other DType, and two ML DTypes: np.add's choice
      (``np.add.resolve_dtypes``), which is what NumPy's legacy resolver
      gave when these loops were legacy user loops;
    - a reduction (no first DType): the second operand's DType, as NumPy
      does for a reduction that no promoter claims.

    The loops themselves are ArrayMethods of (D, D, D), which NumPy finds
    for such calls without a promoter."""
    import ctypes
    import itertools
    # PyArrayMethod_PromoterFunction: (ufunc, op_dtypes[], signature[], new_op_dtypes[]) -> int
    promoter_type = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object,
                                      ctypes.POINTER(ctypes.c_void_p),
                                      ctypes.POINTER(ctypes.c_void_p),
                                      ctypes.POINTER(ctypes.c_void_p))
    api = _c_api("_ARRAY_API", 400)
    # PyArray_PyLongDType and PyArray_PyFloatDType, slots 320 + 35 and 36 of the C-API
    py_int, py_float = (ctypes.cast(api[k], ctypes.py_object).value for k in (355, 356))
    add_promoter = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.py_object,
                                     ctypes.py_object)(_c_api("_UFUNC_API", 45)[44])
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.c_void_p]
    ours = {id(d) for d in dtype_classes}

    def give(new_op_dtypes, addresses):
        for i, a in enumerate(addresses):
            if a:
                incref(a)
            new_op_dtypes[i] = a

    def to_format(ufunc, op_dtypes, signature, new_op_dtypes):
        target = op_dtypes[0] if op_dtypes[0] in ours else op_dtypes[1]
        give(new_op_dtypes, [target] * ufunc.nargs)
        return 0

    def as_np_add(ufunc, op_dtypes, signature, new_op_dtypes):
        ops = [op_dtypes[i] for i in range(ufunc.nargs)]
        if not ops[0]:                    # a reduction
            give(new_op_dtypes, [ops[1], ops[1], ops[2]])
            return 0
        try:
            d0, d1 = (ctypes.cast(a, ctypes.py_object).value for a in ops[:2])
            chosen = np.add.resolve_dtypes((d0(), d1(), None))
            addresses = [id(type(d)) for d in chosen]
        except Exception:                 # np.add has no loop: decline
            addresses = ops
        give(new_op_dtypes, addresses)
        return 0

    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype = ctypes.py_object
    new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    name = b"numpy._ufunc_promoter"
    capsules = {}
    for key, function in (("format", to_format), ("np.add", as_np_add)):
        callback = promoter_type(function)
        capsules[key] = new_capsule(ctypes.cast(callback, ctypes.c_void_p), name, None)
        _KEEP_ALIVE.append((callback, capsules[key], name))
    for uf in ufuncs:
        new = [d for d in dtype_classes if uf.nin == 2 and (uf, d) not in _PROMOTED]
        # NumPy takes the first of two promoters that match a call equally
        # well as ambiguous, and (D, E) matches (D, None) and (None, E)
        # equally well: each pair first, its own promoter
        for d, e in itertools.permutations(new, 2):
            add_promoter(uf, (d, e, None), capsules["np.add"])
        for d in new:
            for scalar in (py_float, py_int):
                add_promoter(uf, (d, scalar, None), capsules["format"])
                add_promoter(uf, (scalar, d, None), capsules["format"])
            add_promoter(uf, (d, None, None), capsules["np.add"])
            add_promoter(uf, (None, d, None), capsules["np.add"])
            _PROMOTED.add((uf, d))


def register(backend, ml_dtypes):
    """Register the backend's loops of the formats this ml_dtypes has, and
    the promoters: relu_ufunc/__init__.py calls it once ml_dtypes is
    imported."""
    from relu_ufunc._spec import FUNCTIONS
    formats = registered_formats(ml_dtypes)
    for t, dtype in formats:
        backend._register_ml(t.suffix, dtype)
    _add_promoters([getattr(backend, f.name) for f in FUNCTIONS],
                   [type(dtype) for _, dtype in formats])
