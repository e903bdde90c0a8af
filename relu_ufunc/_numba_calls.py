"""Calls from Numba-compiled code into relu_ufunc's compiled loops and
formulas, by symbol name, and the raw memory access that needs: the
intrinsics the implementations in _numba_impls.py are written with.

Compiled code calls the loops and formulas by name (_numba_ext registers the
names with LLVM), never through an address baked into it, so code cached
with ``cache=True`` runs in a new process once the names are registered
again.
"""
import mmap

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic
from numba.core.imputils import impl_ret_borrowed


def scalar_symbol(name, suffix):
    return f"relu_ufunc_{name}_{suffix}"


def loop_symbol(name, suffix):
    return f"relu_ufunc_{name}_{suffix}_loop"


def data_symbol(name, suffix):
    return f"relu_ufunc_{name}_{suffix}_loop_data"


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
def loop1(typingctx, fn, data, p0, s0, py, sy, n):
    """Run loop fn (with its data) on n elements: pointers and byte steps."""
    return types.void(*[types.intp] * 7), _loop_codegen(2)


@intrinsic
def loop2(typingctx, fn, data, p0, s0, p1, s1, py, sy, n):
    return types.void(*[types.intp] * 9), _loop_codegen(3)


@intrinsic
def cell(typingctx, value):
    """The address of a stack slot holding value, valid for the rest of the
    calling function (a scalar input's stride-0 operand)."""
    def codegen(context, builder, sig, args):
        slot = cgutils.alloca_once(builder, args[0].type)
        builder.store(args[0], slot)
        return builder.ptrtoint(slot, context.get_value_type(types.intp))
    return types.intp(value), codegen


@intrinsic
def load(typingctx, address, dtype):
    """The value of type dtype at address (any alignment)."""
    t = dtype.dtype

    def codegen(context, builder, sig, args):
        p = builder.inttoptr(args[0], context.get_data_type(t).as_pointer())
        return context.data_model_manager[t].from_data(builder, builder.load(p, align=1))
    return t(address, dtype), codegen


@intrinsic
def store(typingctx, address, value):
    """Store value at address (any alignment)."""
    def codegen(context, builder, sig, args):
        p = builder.inttoptr(args[0], context.get_data_type(value).as_pointer())
        builder.store(context.data_model_manager[value].as_data(builder, args[1]), p, align=1)
        return context.get_dummy_value()
    return types.void(address, value), codegen


@intrinsic
def hugepage(typingctx, address, nbytes):
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


# ---- operands: an array or a number, one spelling for both -----------------
# The implementations take each input as it comes, array or number.  These
# intrinsics turn either into what the loops need, in generated LLVM IR
# rather than per-type overloads: each overload is a function Numba compiles
# on its own, for every new layout and ndim, and that tripled the time to
# compile a call.

def _ndim(t):
    return t.ndim if isinstance(t, types.Array) else 0


def _array_fields(context, builder, t, value):
    ary = context.make_array(t)(context, builder, value)
    shape = [builder.extract_value(ary.shape, i) for i in range(t.ndim)]
    strides = [builder.extract_value(ary.strides, i) for i in range(t.ndim)]
    return ary, shape, strides


@intrinsic
def padded_shapes(typingctx, a, b, c, d):
    """The shapes of four operands (arrays, numbers, or an absent out= or
    where=), each padded on the left with 1s to the most dimensions any of
    them has: the inputs of broadcasting."""
    nd = max(_ndim(t) for t in (a, b, c, d))
    shape_t = types.UniTuple(types.intp, nd)
    ret = types.UniTuple(shape_t, 4)

    def codegen(context, builder, sig, args):
        one = context.get_constant(types.intp, 1)
        shapes = []
        for t, v in zip(sig.args, args):
            dims = _array_fields(context, builder, t, v)[1] if isinstance(t, types.Array) else []
            dims = [one] * (nd - len(dims)) + dims
            shapes.append(context.make_tuple(builder, shape_t, dims))
        return context.make_tuple(builder, ret, shapes)
    return ret(a, b, c, d), codegen


@intrinsic
def operand(typingctx, v, shape, lt):
    """(number, address, byte strides over `shape`, itemsize) of an input:
    for an array, its data and its strides (0 along the axes it is broadcast
    on); for a number, the number cast to the loop's type `lt`, address 0
    and strides 0."""
    nd = len(shape)
    lt_type = lt.instance_type
    ret = types.Tuple((lt_type, types.intp, types.UniTuple(types.intp, nd), types.intp))

    def codegen(context, builder, sig, args):
        intp = context.get_value_type(types.intp)
        zero = ir.Constant(intp, 0)
        if isinstance(v, types.Array):
            ary, dims, steps = _array_fields(context, builder, v, args[0])
            number = context.get_constant(lt_type, 0)
            address = builder.ptrtoint(ary.data, intp)
            strides = [zero] * (nd - v.ndim) + [
                builder.select(builder.icmp_signed("==", n, ir.Constant(intp, 1)), zero, s)
                for n, s in zip(dims, steps)]
            itemsize = ir.Constant(intp, context.get_abi_sizeof(context.get_data_type(v.dtype)))
        else:
            number = (context.cast(builder, args[0], v, lt_type)
                      if isinstance(v, (types.Number, types.Boolean))
                      else context.get_constant(lt_type, 0))
            address, strides, itemsize = zero, [zero] * nd, zero
        return context.make_tuple(builder, ret, [
            number, address, context.make_tuple(builder, ret[2], strides), itemsize])
    return ret(v, shape, lt), codegen


@intrinsic
def read(typingctx, v, number, address, lt):
    """Element by element: an array input's element at `address` (any
    alignment) cast to `lt`; a number input's `number`, already `lt`."""
    lt_type = lt.instance_type

    def codegen(context, builder, sig, args):
        if not isinstance(v, types.Array):
            return args[1]
        p = builder.inttoptr(args[2], context.get_data_type(v.dtype).as_pointer())
        value = context.data_model_manager[v.dtype].from_data(builder, builder.load(p, align=1))
        return context.cast(builder, value, v.dtype, lt_type)
    return lt_type(v, number, address, lt), codegen


@intrinsic
def go(typingctx, where):
    """False only for where=False (a where= array is applied per element)."""
    def codegen(context, builder, sig, args):
        if isinstance(where, types.Boolean):
            return args[0]
        return context.get_constant(types.boolean, True)
    return types.boolean(where), codegen


@intrinsic
def given(typingctx, out):
    """The out= array, given as the array or as a tuple of one array."""
    ret = out[0] if isinstance(out, types.BaseTuple) else out

    def codegen(context, builder, sig, args):
        value = builder.extract_value(args[0], 0) if ret is not out else args[0]
        return impl_ret_borrowed(context, builder, ret, value)
    return ret(out), codegen


@intrinsic
def keep_alive(typingctx, a, b):
    """Uses a and b: Numba frees an array after its last use, and the loop
    reads these buffers through their addresses only."""
    def codegen(context, builder, sig, args):
        return context.get_dummy_value()
    return types.void(a, b), codegen


DRIVE_SYMBOL = "relu_ufunc_drive"
_P_INTP = _INTP.as_pointer()
_DRIVE_FNTY = ir.FunctionType(ir.VoidType(), [_INTP, _INTP, _INTP, _INTP, _P_INTP, _INTP, _P_INTP,
                                              _INTP, _INTP, _P_INTP, _INTP, _INTP, _P_INTP, _INTP])


@intrinsic
def drive(typingctx, kind, fn, data, shape, p0, s0, i0, p1, s1, i1, py, sy, iy):
    """Call the driver (_numba_impls.compiled_driver) by name: the shape and
    strides tuples go by pointer, with their length."""
    def codegen(context, builder, sig, args):
        callee = cgutils.get_or_insert_function(builder.module, _DRIVE_FNTY, DRIVE_SYMBOL)
        nd = ir.Constant(_INTP, len(sig.args[3]))

        def pointer(value):
            return builder.bitcast(cgutils.alloca_once_value(builder, value), _P_INTP)
        kind_, fn_, data_, shape_, p0_, s0_, i0_, p1_, s1_, i1_, py_, sy_, iy_ = args
        builder.call(callee, [kind_, fn_, data_, nd, pointer(shape_), p0_, pointer(s0_), i0_, p1_,
                              pointer(s1_), i1_, py_, pointer(sy_), iy_])
        return context.get_dummy_value()
    i = types.intp
    sig = types.void(i, i, i, shape, i, s0, i, i, s1, i, i, sy, i)
    return sig, codegen
