"""relu_ufunc inside Numba code: ``relu_ufunc.relu(x)`` in an ``@njit`` function.

Numba imports this module through the ``numba_extensions`` entry point
(pyproject.toml) when it first compiles something in a process, so
``import relu_ufunc`` never imports Numba.  `init` then does two things.

1. **Symbols.**  It registers with LLVM (``llvmlite.binding.add_symbol``),
   under fixed names, the addresses of what compiled code calls:

   - ``relu_ufunc_{ufunc}_{suffix}_loop``: the ufunc's own inner loop for that
     type, read from the ``numpy.ufunc`` object itself (its ``functions`` and
     ``data`` arrays), so it is the code NumPy runs, on either backend, and
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

2. **Typing.**  The five ufunc objects become callable in nopython code
   (`_register_typing`).  Arrays (any layout, broadcasting, ``out=``, in
   place) go through the ufunc's C loop, one call per contiguous run, as
   NumPy would call it.  Scalars, and what the loop cannot take (inputs to
   cast, ``where=`` arrays, unaligned data), go element by element through
   the one-value formulas.  Either way no formula is spelled here, so the
   values are bit for bit those of the ufunc called from Python, and
   ``fastmath=True`` in the caller cannot change them.

Types follow NumPy 2 (NEP 50).  Numba types a Python ``int`` as int64 and a
``float`` as float64, and cannot tell them from NumPy scalars, so inside
``@njit`` an int64 or float64 *scalar* counts as a Python scalar:
``leaky_relu(x_float32, 0.1)`` is float32, as in NumPy.
"""
import ctypes
import mmap
import sys
import warnings

import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import cfunc, njit, types
from numba.core import cgutils, errors
from numba.core.extending import intrinsic
from numba.core.typing.templates import infer, infer_global, make_overload_template
from numba.np import numpy_support

from relu_ufunc._constants import HUGEPAGE_FROM
from relu_ufunc._spec import UFUNCS, formula_suffix, scalar_formulas

# ---- what is exported, and under which names ------------------------------


def formulas():
    """[(ufunc name, nin, formula suffix, type character)] for every formula
    Numba code may call (_spec.scalar_formulas, as setup.py exports them)."""
    return scalar_formulas(lambda c: np.dtype(c).itemsize)


def scalar_symbol(name, suffix):
    return f"relu_ufunc_{name}_{suffix}"


def loop_symbol(name, suffix):
    return f"relu_ufunc_{name}_{suffix}_loop"


def data_symbol(name, suffix):
    return f"relu_ufunc_{name}_{suffix}_loop_data"


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
    if not all(found.values()):
        raise RuntimeError("relu_ufunc: a null address for " +
                           ", ".join(s for s, a in found.items() if not a))
    return found


_done = False


def init():
    """The ``numba_extensions`` entry point: register the symbols, then the
    typing of the five functions.  Runs once per process."""
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


# ---- calls by name, from compiled code ------------------------------------

_I8P = ir.IntType(8).as_pointer()


def _ext_attr(nbtype):
    if isinstance(nbtype, types.Integer) and nbtype.bitwidth < 32:
        return "signext" if nbtype.signed else "zeroext"
    return None


_SCALAR_CALLERS = {}


def scalar_caller(name, suffix, nbtype, nin):
    """An intrinsic computing relu_ufunc_{name}_{suffix} on nin values of
    nbtype, by calling that symbol."""
    key = (name, suffix)
    if key in _SCALAR_CALLERS:
        return _SCALAR_CALLERS[key]
    symbol = scalar_symbol(name, suffix)

    def codegen(context, builder, sig, args):
        t = context.get_value_type(nbtype)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t] * nin), symbol)
        attr = _ext_attr(nbtype)
        if attr:
            for a in fn.args:
                a.add_attribute(attr)
        return builder.call(fn, list(args))

    if nin == 1:
        @intrinsic
        def call(typingctx, a):
            return nbtype(nbtype), codegen
    else:
        @intrinsic
        def call(typingctx, a, b):
            return nbtype(nbtype, nbtype), codegen
    _SCALAR_CALLERS[key] = call
    return call


_LOOP_ADDRESSES = {}


def loop_address(name, suffix):
    """An intrinsic returning (function, data) of the ufunc's loop for that
    type, as integers: the symbol's address and the content of its data cell."""
    key = (name, suffix)
    if key in _LOOP_ADDRESSES:
        return _LOOP_ADDRESSES[key]
    symbol, data_name = loop_symbol(name, suffix), data_symbol(name, suffix)
    ret = types.UniTuple(types.intp, 2)

    def codegen(context, builder, sig, args):
        intp = context.get_value_type(types.intp)
        fn = cgutils.get_or_insert_function(builder.module, _LOOP_FNTY, symbol)
        cell = builder.module.globals.get(data_name)
        if cell is None:
            cell = cgutils.add_global_variable(builder.module, _I8P, data_name)
        return context.make_tuple(builder, ret, [builder.ptrtoint(fn, intp),
                                                 builder.ptrtoint(builder.load(cell), intp)])

    @intrinsic
    def address(typingctx):
        return ret(), codegen
    _LOOP_ADDRESSES[key] = address
    return address


_INTP = ir.IntType(64) if types.intp.bitwidth == 64 else ir.IntType(32)
_LOOP_FNTY = ir.FunctionType(ir.VoidType(), [_I8P.as_pointer(), _INTP.as_pointer(),
                                             _INTP.as_pointer(), _I8P])


def _loop_codegen(nargs):
    def codegen(context, builder, sig, args):
        intp = context.get_value_type(types.intp)
        fn = builder.inttoptr(args[0], _LOOP_FNTY.as_pointer())
        pointers = cgutils.alloca_once(builder, _I8P, size=nargs)
        steps = cgutils.alloca_once(builder, intp, size=nargs)
        for k in range(nargs):
            index = [ir.Constant(intp, k)]
            builder.store(builder.inttoptr(args[2 + 2 * k], _I8P), builder.gep(pointers, index))
            builder.store(args[3 + 2 * k], builder.gep(steps, index))
        dims = cgutils.alloca_once_value(builder, args[-1])
        builder.call(fn, [pointers, dims, steps, builder.inttoptr(args[1], _I8P)])
        return context.get_dummy_value()
    return codegen


@intrinsic
def _loop1(typingctx, fn, data, p0, s0, py, sy, n):
    """Run loop fn (with its data) on n elements: pointers and byte steps."""
    return types.void(*[types.intp] * 7), _loop_codegen(2)


@intrinsic
def _loop2(typingctx, fn, data, p0, s0, p1, s1, py, sy, n):
    return types.void(*[types.intp] * 9), _loop_codegen(3)


@intrinsic
def _cell(typingctx, value):
    """The address of a stack slot holding value, valid for the rest of the
    calling function (a scalar input's stride-0 operand)."""
    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once(builder, args[0].type)
        builder.store(args[0], slot)
        return builder.ptrtoint(slot, context.get_value_type(types.intp))
    return types.intp(value), codegen


@intrinsic
def _load(typingctx, address, dtype):
    """The value of type dtype at address (any alignment)."""
    t = dtype.dtype

    def codegen(context, builder, sig, args):
        p = builder.inttoptr(args[0], context.get_data_type(t).as_pointer())
        return context.data_model_manager[t].from_data(builder, builder.load(p, align=1))
    return t(address, dtype), codegen


@intrinsic
def _store(typingctx, address, value):
    """Store value at address (any alignment)."""
    def codegen(context, builder, sig, args):
        p = builder.inttoptr(args[0], context.get_data_type(value).as_pointer())
        builder.store(context.data_model_manager[value].as_data(builder, args[1]), p, align=1)
        return context.get_dummy_value()
    return types.void(address, value), codegen


@intrinsic
def _hugepage(typingctx, address, nbytes):
    """madvise(MADV_HUGEPAGE) on a new array's pages, as NumPy does for its
    own allocations of 4 MiB or more (alloc.c): the first touch of a large
    new output then faults 2 MiB pages, not 4 KiB ones (here, relu(x) of 1e7
    float64 in @njit took 81 ms with Numba's plain allocation and 22 ms from
    Python).  Linux only; a failure is ignored, as NumPy ignores it."""
    def codegen(context, builder, sig, args):
        intp = context.get_value_type(types.intp)
        i32 = ir.IntType(32)
        madvise = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [_I8P, intp, i32]), "madvise")
        page = ir.Constant(intp, 4096)
        offset = builder.sub(page, builder.urem(args[0], page))
        builder.call(madvise, [builder.inttoptr(builder.add(args[0], offset), _I8P),
                               builder.sub(args[1], offset), ir.Constant(i32, mmap.MADV_HUGEPAGE)])
        return context.get_dummy_value()
    return types.void(types.intp, types.intp), codegen


def _numpy_uses_hugepages():
    """Whether NumPy madvises its large allocations (Linux, and its own
    switch, np._core.multiarray._set_madvise_hugepage, on)."""
    if not sys.platform.startswith("linux"):
        return False
    from numpy._core import multiarray
    get = getattr(multiarray, "_get_madvise_hugepage", None)
    return bool(get()) if get is not None else False


@njit
def _bdim(a, b):
    """Broadcast one dimension: a so far, b an operand's."""
    if a == 1:
        return b
    if b == 1 or b == a:
        return a
    raise ValueError("relu_ufunc: operands could not be broadcast together")


@njit
def _extent(p, shape, strides, itemsize):
    """The lowest and one past the highest byte address an operand reaches."""
    lo = hi = p
    for d in range(len(shape)):
        if shape[d] == 0:
            return 0, 0
        span = (shape[d] - 1) * strides[d]
        if span < 0:
            lo += span
        else:
            hi += span
    return lo, hi + itemsize


@njit
def _must_copy(a, y):
    """Whether input a must be copied before the loop writes y: their memory
    overlaps, other than element for element (which the loops allow)."""
    alo, ahi = _extent(a.ctypes.data, a.shape, a.strides, a.itemsize)
    ylo, yhi = _extent(y.ctypes.data, y.shape, y.strides, y.itemsize)
    if ahi <= ylo or yhi <= alo or alo == ahi or ylo == yhi:
        return False
    if a.ndim != y.ndim or a.ctypes.data != y.ctypes.data or a.itemsize != y.itemsize:
        return True
    for d in range(a.ndim):
        if a.shape[d] != y.shape[d] or (a.shape[d] > 1 and a.strides[d] != y.strides[d]):
            return True
    return False


@njit
def _run(shape, strides, fortran):
    """(True, step) if an operand of this shape and these strides holds its
    elements, in C (or Fortran) order of the index, at one byte step from its
    first (step 0: one value, broadcast); else (False, 0)."""
    nd = len(shape)
    step = 0
    expect = 0
    first = True
    for i in range(nd):
        d = i if fortran else nd - 1 - i
        if shape[d] == 1:
            continue
        if first:
            step = strides[d]
            expect = step * shape[d]
            first = False
        elif strides[d] != expect:
            return False, 0
        else:
            expect *= shape[d]
    return True, step


# The driver: a single loop call when every operand is one evenly strided run
# in the output's order, C or Fortran (or a single value), else one call per
# run along the axis where the output's stride is smallest, as NumPy's
# iterator would call it.  One per arity, for every loop (passed by address).
_DRIVER = """
@njit
def drive{nin}(fn, data, shape, {params}, py, sy):
    nd = len(shape)
    size = 1
    for d in range(nd):
        size *= shape[d]
    if size == 0:
        return
    for fortran in (False, True):
        ok_y, step_y = _run(shape, sy, fortran)
        if ok_y and step_y != 0:
{flat_steps}
            if {flat_ok}:
                _loop{nin}(fn, data, {flat_args}, py, step_y, size)
                return
    ax = nd - 1
    best = -1
    for d in range(nd):
        if shape[d] > 1 and (best < 0 or abs(sy[d]) < best):
            best = abs(sy[d])
            ax = d
    n = shape[ax]
    idx = np.zeros(nd, np.intp)
{zero_offsets}
    oy = 0
    for _ in range(size // n):
        _loop{nin}(fn, data, {run_args}, py + oy, sy[ax], n)
        for d in range(nd - 1, -1, -1):
            if d == ax:
                continue
            idx[d] += 1
{step_offsets}
            oy += sy[d]
            if idx[d] < shape[d]:
                break
{undo_offsets}
            oy -= sy[d] * shape[d]
            idx[d] = 0
"""


def _make_driver(nin):
    ins = range(nin)
    source = _DRIVER.format(
        nin=nin,
        params=", ".join(f"p{k}, s{k}" for k in ins),
        flat_steps="\n".join(f"            ok{k}, f{k} = _run(shape, s{k}, fortran)" for k in ins),
        flat_ok=" and ".join(f"ok{k}" for k in ins),
        flat_args=", ".join(f"p{k}, f{k}" for k in ins),
        zero_offsets="\n".join(f"    o{k} = 0" for k in ins),
        run_args=", ".join(f"p{k} + o{k}, s{k}[ax]" for k in ins),
        step_offsets="\n".join(f"            o{k} += s{k}[d]" for k in ins),
        undo_offsets="\n".join(f"            o{k} -= s{k}[d] * shape[d]" for k in ins))
    namespace = {"np": np, "njit": njit, "_run": _run, "_loop1": _loop1, "_loop2": _loop2}
    exec(compile(source, f"<relu_ufunc._numba_ext drive{nin}>", "exec"), namespace)
    return namespace[f"drive{nin}"]


_drive1 = _make_driver(1)
_drive2 = _make_driver(2)


# ---- typing -----------------------------------------------------------------

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


def _resolve(name, ins, out, where):
    """Type one call: the loop NumPy would pick, then the code for this
    combination of arrays, scalars, out= and where=."""
    import relu_ufunc as ru
    uf = getattr(ru, name)
    label = _label(name)
    samples, arrays = [], []
    for k, t in enumerate(ins):
        if isinstance(t, types.Array):
            dt = _as_dtype(name, t.dtype)
            samples.append(np.zeros(1, dt))
            arrays.append(k)
        elif isinstance(t, (types.Number, types.Boolean)):
            dt = _as_dtype(name, t)
            if dt == np.int64:          # a Python int, as far as Numba can tell
                samples.append(0)
            elif dt == np.float64:      # a Python float
                samples.append(0.0)
            else:
                samples.append(dt.type(0))
        else:
            raise errors.TypingError(f"{label} inside @njit: inputs must be arrays or numbers, "
                                     f"not {t}")
    try:
        with np.errstate(all="ignore"):
            loop_dtype = np.asarray(uf(*samples)).dtype
    except TypeError as e:              # NumPy's own: no loop for these types
        raise errors.TypingError(f"{label} inside @njit: {e}") from None
    if loop_dtype == np.float16:
        raise _float16_error(name, "these inputs resolve (as in NumPy) to")
    char = loop_dtype.char
    suffix = formula_suffix(char, loop_dtype.itemsize)
    if (name, suffix) not in {(f[0], f[2]) for f in formulas()}:
        raise errors.TypingError(f"{label} inside @njit: no loop for {loop_dtype}")

    out_type = None
    if isinstance(out, types.Array):
        out_type = out
    elif isinstance(out, types.BaseTuple) and len(out) == 1 and isinstance(out[0], types.Array):
        out_type = out[0]
    elif not _absent(out):
        raise errors.TypingError(f"{label} inside @njit: out must be an array or a tuple of "
                                 f"one array, not {out}")
    if out_type is not None:
        if not out_type.mutable:
            raise errors.TypingError(f"{label} inside @njit: out is read-only")
        out_dtype = _as_dtype(name, out_type.dtype)
        if not np.can_cast(loop_dtype, out_dtype, "same_kind"):
            raise errors.TypingError(
                f"{label} inside @njit: Cannot cast ufunc '{name}' output from {loop_dtype!r} "
                f"to {out_dtype!r} with casting rule 'same_kind'")
    else:
        out_dtype = loop_dtype

    if isinstance(where, types.Omitted) and where.value is True or where is True or (
            isinstance(where, types.BooleanLiteral) and where.literal_value is True):
        where_kind = None
    elif isinstance(where, types.Boolean):
        where_kind = "scalar"
    elif isinstance(where, types.Array) and where.dtype == types.boolean:
        where_kind = "array"
    else:
        raise errors.TypingError(f"{label} inside @njit: where must be a boolean array or a "
                                 f"bool, not {where}")

    plan = _Plan(name=name, nin=len(ins), ins=ins, arrays=arrays, out=out,
                 out_type=out_type, where=where, where_kind=where_kind,
                 loop_dtype=loop_dtype, out_dtype=out_dtype, suffix=suffix)
    return _make_impl(plan)


class _Plan:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _make_impl(plan):
    """The implementation of this call, as Python source specialised on which
    inputs are arrays, their dtypes and layouts, out= and where= (so that
    only the code this call needs is compiled, with static shapes).

    ``impl`` checks the shapes and makes or takes the output; ``core`` runs
    the loop (or the element-by-element path).  Inputs that overlap ``out``
    other than element for element are copied first, in ``core_copied``, a
    path of its own so that the usual call pays nothing for it."""
    nin, ins = plan.nin, plan.ins
    params = ["x"] if nin == 1 else ["x1", "x2"]
    is_array = [k in plan.arrays for k in range(nin)]
    lt = plan.loop_dtype
    itemsize = lt.itemsize
    # Every operand already has the loop's type and alignment: the C loop
    # takes it as it is.  Otherwise (casts, unaligned data, a where= array)
    # element by element, through the one-value formula.
    direct = (all(ins[k].dtype == numpy_support.from_dtype(lt) and ins[k].aligned
                  for k in plan.arrays)
              and (plan.out_type is None or (plan.out_dtype == lt and plan.out_type.aligned))
              and plan.where_kind != "array")
    # (name in the code, numba type) of every array operand, output last.
    operands = [(params[k], ins[k]) for k in plan.arrays]
    if plan.where_kind == "array":
        operands.append(("where", plan.where))
    in_ndim = max([t.ndim for _, t in operands], default=0)
    lines = [f"def impl({', '.join(params)}, out=None, where=True):"]
    emit = lines.append

    if plan.out_type is None and in_ndim == 0:
        # Scalars (or 0-d arrays) in, a scalar out, as NumPy gives.
        values = [f"LT({p}[()])" if is_array[k] else f"LT({p})" for k, p in enumerate(params)]
        emit(f"    return SCALAR({', '.join(values)})")
        return _compile_impl(plan, lines)
    if plan.out_type is not None:
        if plan.out_type.ndim < in_ndim:
            emit("    raise ValueError('relu_ufunc: out= has fewer dimensions than the inputs "
                 "broadcast to')")
            return _compile_impl(plan, lines)
        emit("    y = out[0]" if isinstance(plan.out, types.BaseTuple) else "    y = out")
        operands.append(("y", plan.out_type))
    nd = max(t.ndim for _, t in operands)

    # The broadcast shape, one dimension at a time (operands right-aligned).
    for j in range(nd):
        emit(f"    n{j} = 1")
        for v, t in operands:
            if j >= nd - t.ndim:
                emit(f"    n{j} = _bdim(n{j}, {v}.shape[{j - (nd - t.ndim)}])")
    emit("    shape = (" + "".join(f"n{j}, " for j in range(nd)) + ")")
    if plan.out_type is None:
        fortran = nd > 1 and all(ins[k].layout == "F" for k in plan.arrays)
        emit("    y = np.empty(shape[::-1], LT).T" if fortran else "    y = np.empty(shape, LT)")
        if _numpy_uses_hugepages():
            emit(f"    if y.nbytes >= {HUGEPAGE_FROM}:")
            emit("        _hugepage(y.ctypes.data, y.nbytes)")
    else:
        emit("    if shape != y.shape:")
        emit("        raise ValueError('relu_ufunc: non-broadcastable output operand: out= "
             "does not have the shape the inputs broadcast to')")
    if plan.where_kind == "scalar":
        emit("    if not where:")
        emit("        return y")
    if (direct and plan.out_type is None and len(plan.arrays) == 1
            and ins[plan.arrays[0]].layout in "CF" and ins[plan.arrays[0]].ndim == nd):
        # The common case, relu(x) or leaky_relu(x, 0.1) of a contiguous
        # array: one call of the loop over all of it, and nothing else.
        args = ", ".join(f"{p}.ctypes.data, {itemsize}" if is_array[k] else f"_cell(LT({p})), 0"
                         for k, p in enumerate(params))
        emit("    fn, data = ADDRESS()")
        emit(f"    LOOP(fn, data, {args}, y.ctypes.data, {itemsize}, y.size)")
        emit("    return y")
        return _compile_impl(plan, lines)
    call = f"({', '.join(params)}, y, shape, where)"
    if plan.out_type is not None and plan.arrays:
        overlap = " or ".join(f"_must_copy({params[k]}, y)" for k in plan.arrays)
        emit(f"    if {overlap}:")
        emit(f"        return core_copied{call}")
    emit(f"    return core{call}")

    # core_copied: the inputs that overlap out, copied (C-contiguous), then core.
    copied = [f"def core_copied{call}:"]
    for k in plan.arrays:
        copied.append(f"    if _must_copy({params[k]}, y):")
        copied.append(f"        {params[k]} = {params[k]}.copy()")
    copied.append(f"    return core{call}")

    core = [f"def core{call}:"]
    emit = core.append
    for k, p in enumerate(params):
        emit(f"    a{k} = {p}" if is_array[k] else f"    v{k} = LT({p})")

    def strides(v, t):
        """The operand's byte strides over the broadcast shape (0 where it is
        broadcast)."""
        parts = []
        for j in range(nd):
            i = j - (nd - t.ndim)
            parts.append("zero" if i < 0 else
                         f"({v}.strides[{i}] if {v}.shape[{i}] != 1 else zero)")
        return "(" + "".join(p + ", " for p in parts) + ")"

    emit("    zero = np.intp(0)")
    for k in range(nin):
        emit(f"    s{k} = {strides(f'a{k}', ins[k])}" if is_array[k]
             else f"    s{k} = (" + "zero, " * nd + ")")
    if direct:
        emit("    fn, data = ADDRESS()")
        for k in range(nin):
            emit(f"    p{k} = a{k}.ctypes.data" if is_array[k] else f"    p{k} = _cell(v{k})")
        if nd == 0:
            emit(f"    LOOP(fn, data, {', '.join(f'p{k}, 0' for k in range(nin))}, "
                 f"y.ctypes.data, 0, 1)")
            emit("    return y")
        else:
            # All C-contiguous (or, with a new output, all Fortran) and of one
            # shape: a single call.
            layouts = {ins[k].layout for k in plan.arrays} | (
                {plan.out_type.layout} if plan.out_type is not None else set())
            if (layouts == {"C"} or layouts == {"F"} and plan.out_type is None) and all(
                    ins[k].ndim == nd for k in plan.arrays):
                cond = " and ".join([f"a{k}.shape == shape" for k in plan.arrays]) or "True"
                args = ", ".join(f"p{k}, {itemsize}" if is_array[k] else f"p{k}, 0"
                                 for k in range(nin))
                emit(f"    if {cond}:")
                emit(f"        LOOP(fn, data, {args}, y.ctypes.data, {itemsize}, y.size)")
                emit("        return y")
            args = ", ".join(f"p{k}, s{k}" for k in range(nin))
            emit(f"    DRIVE(fn, data, shape, {args}, y.ctypes.data, y.strides)")
            emit("    return y")
    else:
        # Element by element: nested loops over the broadcast shape, reading
        # each operand at its byte offset (any alignment), casting to the
        # loop's type, and the result to out's.
        for k in plan.arrays:
            emit(f"    p{k} = a{k}.ctypes.data")
        if plan.where_kind == "array":
            emit(f"    pw, sw = where.ctypes.data, {strides('where', plan.where)}")
        emit("    py, sy = y.ctypes.data, y.strides")
        indent = "    "
        for j in range(nd):
            emit(f"{indent}for i{j} in range(shape[{j}]):")
            indent += "    "

        def offset(st):
            return " + ".join([f"i{j} * {st}[{j}]" for j in range(nd)]) or "0"

        if plan.where_kind == "array":
            emit(f"{indent}if _load(pw + {offset('sw')}, np.bool_):")
            indent += "    "
        values = ", ".join(f"LT(_load(p{k} + {offset(f's{k}')}, T{k}))" if is_array[k]
                           else f"v{k}" for k in range(nin))
        emit(f"{indent}_store(py + {offset('sy')}, OT(SCALAR({values})))")
        emit("    return y")
    return _compile_impl(plan, lines, core, copied)


def _compile_impl(plan, lines, core=(), copied=()):
    name, suffix, nin = plan.name, plan.suffix, plan.nin
    nbtype = numpy_support.from_dtype(plan.loop_dtype)
    namespace = {
        "np": np, "LT": plan.loop_dtype.type, "OT": plan.out_dtype.type,
        "SCALAR": scalar_caller(name, suffix, nbtype, nin),
        "ADDRESS": loop_address(name, suffix),
        "LOOP": _loop1 if nin == 1 else _loop2, "DRIVE": _drive1 if nin == 1 else _drive2,
        "_cell": _cell, "_bdim": _bdim, "_must_copy": _must_copy, "_hugepage": _hugepage,
        "_load": _load, "_store": _store,
    }
    for k in plan.arrays:
        namespace[f"T{k}"] = numpy_support.as_dtype(plan.ins[k].dtype).type
    source = "\n\n".join("\n".join(part) for part in (lines, core, copied) if part) + "\n"
    exec(compile(source, f"<relu_ufunc.{name} in @njit>", "exec"), namespace)
    for helper in ("core", "core_copied"):
        if helper in namespace:
            namespace[helper] = njit(namespace[helper])
    impl = namespace["impl"]
    impl.__relu_ufunc_source__ = source     # for debugging and the tests
    return impl
