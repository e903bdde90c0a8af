"""relu_ufunc inside Numba code: ``relu_ufunc.relu(x)`` in an ``@njit`` function.

Numba imports this module through the ``numba_extensions`` entry point
(pyproject.toml) when it first compiles something in a process, so
``import relu_ufunc`` never imports Numba.  `init` then does two things.

1. **Symbols.**  It registers with LLVM (``llvmlite.binding.add_symbol``),
   under fixed names, the addresses of what compiled code calls:

   - ``relu_ufunc_{ufunc}_{suffix}_loop``: the ufunc's own inner loop for that
     type, as the backend that made the ufunc registered it with NumPy (its
     ``_loop_addresses``), so it is the code NumPy runs, on either backend, and
     ``relu_ufunc_{ufunc}_{suffix}_loop_data``: a cell holding that loop's
     ``data`` pointer;
   - ``relu_ufunc_{ufunc}_{suffix}``: the formula on one value, from
     cuda/relu_ufunc.h: the compiled extension's ``cdef api`` functions
     (_scalar_api.pxi.in), or where the extension is missing, ``@cfunc``
     twins of the Numba backend's own formulas (same names, same values).

   Compiled code calls these by name, never through an address baked into
   it, so a function cached with ``cache=True`` runs in a new process once
   the names are registered again; Numba runs the entry points before it
   compiles or loads anything.  Cached code whose names are missing would
   crash, so every address is found first and only then are all of them
   added: registration is complete or does not happen.

2. **Typing.**  The six ufunc objects become callable in nopython code
   (`_register_typing`).  Each call's loop is the one NumPy picks (the
   ufunc's own ``resolve_dtypes``), and its code one of the prewritten
   implementations in `_numba_impls`: arrays (any layout, broadcasting,
   ``out=``, in place) go through the ufunc's C loop, one call per
   contiguous run, as NumPy would call it; numbers, and what the loop cannot
   take (inputs to cast, ``where=`` arrays, unaligned data), go element by
   element through the one-value formulas.  Nothing is generated as source.  Either way no formula is spelled here, so the
   values are bit for bit those of the ufunc called from Python, and
   ``fastmath=True`` in the caller cannot change them.

Types follow NumPy 2 (NEP 50).  Numba types a Python ``int`` as int64 and a
``float`` as float64, and cannot tell them from NumPy scalars, so inside
``@njit`` an int64 or float64 *scalar* counts as a Python scalar:
``leaky_relu(x_float32, 0.1)`` is float32, as in NumPy.
"""
import ctypes
import sys
import warnings

import numpy as np
from llvmlite import binding as _llvm
from numba import cfunc, types
from numba.core import errors
from numba.core.typing.templates import infer, infer_global, make_overload_template
from numba.np import numpy_support

from relu_ufunc import _numba_impls
from relu_ufunc import _resolution as resolution
from relu_ufunc._numba_calls import data_symbol, loop_symbol, scalar_symbol
from relu_ufunc._spec import UFUNCS, formula_suffix, scalar_formulas

# ---- what is exported, and under which names ------------------------------


def formulas():
    """[(ufunc name, nin, formula suffix, type character)] for every formula
    Numba code may call (_spec.scalar_formulas, as setup.py exports them)."""
    return scalar_formulas(lambda c: np.dtype(c).itemsize)


# ---- the ufunc's own loops ------------------------------------------------

def ufunc_loops(uf):
    """{"ff->f": (function address, data pointer)} of one of relu_ufunc's
    ufuncs, as the backend that made it registered them with NumPy (each
    backend keeps its own table: nothing reads NumPy's private struct)."""
    for module in ("relu_ufunc._ufuncs", "relu_ufunc._numba_backend"):
        backend = sys.modules.get(module)
        if backend is not None and getattr(backend, uf.__name__, None) is uf:
            return backend._loop_addresses(uf.__name__)
    raise RuntimeError(f"relu_ufunc: {uf!r} is not one of relu_ufunc's ufuncs")


# ---- registration ----------------------------------------------------------

_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype, _capsule_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

# Kept for the life of the process: LLVM-compiled code holds their addresses.
_KEEP = []


def _scalar_addresses():
    """{symbol: address} of the one-value formulas: the compiled extension's
    `cdef api` functions wherever it imports (whichever backend is in use:
    the values are the same), else the Numba twins, compiled (and cached on
    disk) here; loading the 34 cached twins takes about 0.2 s."""
    try:
        from relu_ufunc import _ufuncs
    except ImportError:
        _ufuncs = None
    found = {}
    if _ufuncs is not None:
        capi = getattr(_ufuncs, "__pyx_capi__", {})
        for name, _, suffix, _ in formulas():
            symbol = scalar_symbol(name, suffix)
            if symbol not in capi:
                raise RuntimeError(f"relu_ufunc: the compiled extension lacks {symbol}; "
                                   f"rebuild it")
            capsule = capi[symbol]
            found[symbol] = _capsule_pointer(capsule, _capsule_name(capsule))
    else:
        from relu_ufunc import _numba_loops
        for name, nin, suffix, char in formulas():
            t = numpy_support.from_dtype(np.dtype(char))
            twin = cfunc(t(*[t] * nin), nopython=True, cache=True)(
                _numba_loops.TWINS[(name, char)])
            _KEEP.append(twin)
            found[scalar_symbol(name, suffix)] = twin.address
    return found


def _symbols(ru):
    """{symbol: address} of everything compiled code may call; raises before
    anything is registered if one is missing."""
    found = _scalar_addresses()
    table = formulas()
    cells = (ctypes.c_void_p * len(table))()
    _KEEP.append(cells)
    for k, (name, nin, suffix, char) in enumerate(table):
        loops = ufunc_loops(getattr(ru, name))
        function, data = loops[char * nin + "->" + char]
        cells[k] = data
        found[loop_symbol(name, suffix)] = function
        found[data_symbol(name, suffix)] = ctypes.addressof(cells) + k * ctypes.sizeof(ctypes.c_void_p)
    found.update(_numba_impls.compiled_driver())
    if not all(found.values()):
        raise RuntimeError("relu_ufunc: a null address for " +
                           ", ".join(s for s, a in found.items() if not a))
    return found


_done = False


def init():
    """The ``numba_extensions`` entry point: register the symbols, then the
    typing of the six functions.  Runs once per process."""
    global _done
    if _done:
        return
    import relu_ufunc as ru
    if not hasattr(ru, "backend") or not all(hasattr(ru, name) for name in UFUNCS):
        # Numba ran its entry points while relu_ufunc was still importing
        # (the Numba backend compiles at import); relu_ufunc/__init__.py calls
        # init() again once its names exist.
        return
    symbols = _symbols(ru)
    for symbol, address in symbols.items():
        _llvm.add_symbol(symbol, address)
    _register_typing(ru)
    _done = True


def init_after_import():
    """Called at the end of ``import relu_ufunc`` where this module was
    imported during that import; warns as Numba does rather than failing the
    import."""
    try:
        init()
    except Exception as e:  # noqa: BLE001 - Numba's own entry point loader does the same
        warnings.warn(f"relu_ufunc: its Numba extension failed to load ({type(e).__name__}: "
                      f"{e}); relu_ufunc functions cannot be used inside @njit code",
                      RuntimeWarning, stacklevel=3)


# ---- typing -----------------------------------------------------------------

def _numpy_uses_hugepages():
    """Whether NumPy madvises its large allocations (Linux, and its own
    switch, np._core.multiarray._set_madvise_hugepage, on)."""
    if not sys.platform.startswith("linux"):
        return False
    from numpy._core import multiarray
    get = getattr(multiarray, "_get_madvise_hugepage", None)
    return bool(get()) if get is not None else False


class _Key:
    """The typing key of a relu_ufunc function in Numba.  Not the ufunc
    itself: Numba's array-expression rewrite turns a call of any
    ``numpy.ufunc`` on arrays into a fused loop that calls it one element at
    a time (one external call per element, 10 to 25 times slower), instead
    of handing the whole array to the ufunc's C loop."""

    def __init__(self, name):
        self.__name__ = name

    def __repr__(self):
        return f"relu_ufunc.{self.__name__}"


def _register_typing(ru):
    options = {"no_cpython_wrapper": True, "nopython": True}
    for name, (nin, _) in UFUNCS.items():
        typer = _typer(name, nin)
        template = make_overload_template(_Key(name), typer, options, True, "never")
        infer(template)
        infer_global(getattr(ru, name), types.Function(template))


def _typer(name, nin):
    if nin == 1:
        def typer(x, out=None, where=True):
            return _resolve(name, (x,), out, where)
    else:
        def typer(x1, x2, out=None, where=True):
            return _resolve(name, (x1, x2), out, where)
    return typer


def _label(name):
    return f"relu_ufunc.{name}"


def _float16_error(name, what):
    return errors.TypingError(
        f"{_label(name)} inside @njit: {what} float16, which Numba cannot compile on the "
        f"CPU. Call {_label(name)} outside @njit code for float16 (or use float32).")


def _as_dtype(name, t):
    t = types.unliteral(t)
    if t == types.float16:
        raise _float16_error(name, "an input is")
    try:
        return np.dtype(numpy_support.as_dtype(t))
    except errors.NumbaNotImplementedError:
        raise errors.TypingError(f"{_label(name)} inside @njit: no loop for {t}") from None


def _absent(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted)) and getattr(
        t, "value", None) is None


def _python_scalar(dt):
    """A number input as _resolution.loop_dtype takes it: int64 and float64
    numbers count as Python scalars (see the module's docstring)."""
    if dt == np.int64:
        return int
    if dt == np.float64:
        return float
    return dt


def _resolve(name, ins, out, where):
    """Type one call: the loop NumPy would pick (the ufunc's own
    resolve_dtypes), then the prewritten implementation for this combination
    of arrays, numbers, out= and where= (_numba_impls)."""
    import relu_ufunc as ru
    uf = getattr(ru, name)
    label = _label(name)
    dtypes, arrays = [], []
    for k, t in enumerate(ins):
        if isinstance(t, types.Array):
            dtypes.append(_as_dtype(name, t.dtype))
            arrays.append(t)
        elif isinstance(t, (types.Number, types.Boolean)):
            dtypes.append(_python_scalar(_as_dtype(name, t)))
        else:
            raise errors.TypingError(f"{label} inside @njit: inputs must be arrays or numbers, "
                                     f"not {t}")
    try:
        loop_dtype = resolution.loop_dtype(uf, dtypes)
    except TypeError as e:              # NumPy's own: no loop for these types
        raise errors.TypingError(f"{label} inside @njit: {e}") from None
    if loop_dtype == np.float16:
        raise _float16_error(name, "these inputs resolve (as in NumPy) to")
    suffix = formula_suffix(loop_dtype.char, loop_dtype.itemsize)
    if (name, suffix) not in {(f[0], f[2]) for f in formulas()}:
        raise errors.TypingError(f"{label} inside @njit: no loop for {loop_dtype}")
    kit = _numba_impls.Kit(name, suffix, len(ins), loop_dtype)

    out_type = None
    if isinstance(out, types.Array):
        out_type = out
    elif isinstance(out, types.BaseTuple) and len(out) == 1 and isinstance(out[0], types.Array):
        out_type = out[0]
    elif not _absent(out):
        raise errors.TypingError(f"{label} inside @njit: out must be an array or a tuple of "
                                 f"one array, not {out}")
    out_dtype = loop_dtype
    if out_type is not None:
        if not out_type.mutable:
            raise errors.TypingError(f"{label} inside @njit: out is read-only")
        out_dtype = _as_dtype(name, out_type.dtype)
        if not np.can_cast(loop_dtype, out_dtype, "same_kind"):
            raise errors.TypingError(
                f"{label} inside @njit: Cannot cast ufunc '{name}' output from {loop_dtype!r} "
                f"to {out_dtype!r} with casting rule 'same_kind'")

    if isinstance(where, types.Array) and where.dtype == types.boolean:
        masked = True
    elif _absent_where(where) or isinstance(where, types.Boolean):
        masked = False
    else:
        raise errors.TypingError(f"{label} inside @njit: where must be a boolean array or a "
                                 f"bool, not {where}")

    in_ndim = max([t.ndim for t in arrays] + [where.ndim if masked else 0])
    if out_type is None and in_ndim == 0:
        return _numba_impls.scalars(kit)
    if out_type is not None and out_type.ndim < in_ndim:
        return _numba_impls.too_few_dims(kit)
    # A new output is Fortran-ordered when every array input is.
    fortran = out_type is None and in_ndim > 1 and all(t.layout == "F" for t in arrays)
    huge = _numpy_uses_hugepages()
    # The C loop takes the operands as they are when every one already has
    # the loop's type and alignment.
    loop_type = numpy_support.from_dtype(loop_dtype)
    direct = (all(t.dtype == loop_type and t.aligned for t in arrays)
              and (out_type is None or (out_dtype == loop_dtype and out_type.aligned))
              and not masked)
    if not direct:
        return _numba_impls.elementwise(kit, out_dtype, out_type is not None, fortran, huge)
    if out_type is None and len(arrays) == 1 and arrays[0].layout in "CF":
        return _numba_impls.contiguous(kit, fortran, huge)
    out_flat = out_type.layout in "CF" if out_type is not None else True
    return _numba_impls.strided(kit, out_type is not None, out_flat, fortran, huge)


def _absent_where(t):
    return (isinstance(t, types.Omitted) and t.value is True) or t is True or (
        isinstance(t, types.BooleanLiteral) and t.literal_value is True)
