"""The Numba backend: the same true ufuncs, with loops compiled by Numba.

Numba's own ``vectorize`` gives a ``DUFunc`` (not a ``numpy.ufunc``) whose
``where=`` is broken, so the inner loops are ``@cfunc``s with NumPy's loop
signature ``(char **args, npy_intp *dims, npy_intp *steps, void *data)``
(generated into ``_numba_loops.py`` from the same table as the Cython loops),
and this module hands their addresses to NumPy's own
``PyUFunc_FromFuncAndData``, reached through the ``_UFUNC_API`` capsule.  The
result is an ordinary ``numpy.ufunc``: ``where=``, ``ufunc.at`` and pickling by
name work as on the Cython backend, and the values are bit-identical to it.

float16 is computed on its bits, as in the header, so it needs no float16
arithmetic (which Numba lacks on the CPU).  Numba has no longdouble, so this
backend has no ``g`` loops and longdouble input raises NumPy's ``TypeError``.
The loops are cached on disk (``cache=True``): only the first import compiles.
"""
import ctypes

import numpy as np

from relu_ufunc._docs import DOCS
from relu_ufunc._numba_loops import LOOPS
from relu_ufunc._spec import TYPES, UFUNCS

TYPE_ORDER = [t.char for t in TYPES]


# ---- PyUFunc_FromFuncAndData, from NumPy's C-API table ------------------

def _ufunc_api_table():
    from numpy._core import _multiarray_umath as umath
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return (ctypes.c_void_p * 38).from_address(get_pointer(umath._UFUNC_API, None))


def _ufunc_c_api():
    """PyUFunc_FromFuncAndData (callable) and the address of PyUFunc_ee_e_As_ff_f."""
    table = _ufunc_api_table()
    # Slots of the ufunc C-API table, stable since NumPy 1.x: 1 is
    # PyUFunc_FromFuncAndData, 37 the generic loop PyUFunc_ee_e_As_ff_f.
    prototype = ctypes.PYFUNCTYPE(
        ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
        ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
    return prototype(table[1]), table[37]


_PyUFunc_None = -1
# NumPy keeps pointers into these for the life of the ufuncs.
_KEEP_ALIVE = []


def _build_ufunc(name, nin, loops, api):
    from_func_and_data, ee_e_as_ff_f = api
    chars, entry, half_scalar = loops
    # Every loop enters the same cfunc; `data` tells it which loop it is.
    addresses, data = [entry.address] * len(chars), list(range(len(chars)))
    if half_scalar is not None:
        # NumPy's generic loop converts float16 <-> float32 around the scalar
        # kernel; at float16's place in the table's order (after the
        # integers: it decides how mixed inputs resolve).
        k = sum(TYPE_ORDER.index(c) < TYPE_ORDER.index("e") for c in chars)
        chars = chars[:k] + "e" + chars[k:]
        addresses.insert(k, ee_e_as_ff_f)
        data.insert(k, half_scalar.address)
    funcs = (ctypes.c_void_p * len(chars))(*addresses)
    data = (ctypes.c_void_p * len(chars))(*data)
    type_nums = (ctypes.c_char * (len(chars) * (nin + 1)))(
        *[np.dtype(c).num for c in chars for _ in range(nin + 1)])
    name_b, doc_b = name.encode(), DOCS[name].encode()
    _KEEP_ALIVE.append((entry, half_scalar, funcs, data, type_nums, name_b, doc_b))
    uf = from_func_and_data(funcs, data, type_nums, len(chars), nin, 1, _PyUFunc_None,
                            name_b, doc_b, 0)
    uf.__module__ = "relu_ufunc"         # pickle finds it as relu_ufunc.<name>
    _LOOPS[name] = {uf.types[k]: (funcs[k], data[k] or 0) for k in range(len(chars))}
    return uf


# {name: {"ff->f": (function address, data pointer)}}: the loops as this
# module registered them with NumPy, for relu_ufunc._numba_ext.
_LOOPS = {}


def _loop_addresses(name):
    """{"ff->f": (function address, data pointer)} of a ufunc's loops."""
    return dict(_LOOPS[name])


def _register_ml(suffix, dtype):
    """Register the loops of the ML format `suffix` on every ufunc, for the
    NumPy user dtype `dtype` (PyUFunc_RegisterLoopForType, slot 2 of the
    ufunc C-API table; NumPy copies the signature).  Legacy loops: a Numba
    cfunc has NumPy's legacy loop signature, and the promoters
    (relu_ufunc._ml_dtypes) resolve mixed calls as for the Cython backend's
    ArrayMethods."""
    type_num = dtype.num
    register = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_int, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p)(_ufunc_api_table()[2])
    from relu_ufunc._numba_ml_loops import ML_LOOPS     # compiled on first use
    for name, (nin, _) in UFUNCS.items():
        arg_types = (ctypes.c_int * (nin + 1))(*[type_num] * (nin + 1))
        entry, index = ML_LOOPS[name][0], ML_LOOPS[name][1][suffix]
        _KEEP_ALIVE.append(entry)
        register(globals()[name], type_num, entry.address, arg_types, index)


def _build_all():
    api = _ufunc_c_api()
    return {name: _build_ufunc(name, nin, LOOPS[name], api) for name, (nin, _) in UFUNCS.items()}


globals().update(_build_all())
