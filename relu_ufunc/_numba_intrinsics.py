"""Raw memory access for the Numba loops, which Numba has no syntax for.

NumPy hands a ufunc loop ``char **args`` and byte strides; these read and
write a typed value at a byte offset, and view a float's bits as an integer
(the sign test of cuda/relu_ufunc.h).
"""
from numba import types
from numba.core.extending import intrinsic


@intrinsic
def load(typingctx, ptr, offset, dtype):
    """The value of type `dtype` at byte `offset` from `ptr`."""
    ty = dtype.dtype

    def codegen(context, builder, sig, args):
        p = builder.gep(args[0], [args[1]])
        return builder.load(builder.bitcast(p, context.get_value_type(ty).as_pointer()))
    return ty(ptr, offset, dtype), codegen


@intrinsic
def store(typingctx, ptr, offset, value):
    """Write `value` at byte `offset` from `ptr`."""
    def codegen(context, builder, sig, args):
        p = builder.gep(args[0], [args[1]])
        builder.store(args[2], builder.bitcast(p, context.get_value_type(value).as_pointer()))
    return types.void(ptr, offset, value), codegen


@intrinsic
def sbits(typingctx, x):
    """The bits of a float32/float64 as a signed integer of the same width."""
    ity = types.int32 if x.bitwidth == 32 else types.int64

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(ity))
    return ity(x), codegen


@intrinsic
def address(typingctx, ptr):
    """A pointer's address as an integer (the loop index in `data`)."""
    def codegen(context, builder, sig, args):
        return builder.ptrtoint(args[0], context.get_value_type(types.intp))
    return types.intp(ptr), codegen


@intrinsic
def sbits16(typingctx, h):
    """float16 bits (a uint16) as a signed int16: > 0 for +0 < x <= inf, +NaN."""
    def codegen(context, builder, sig, args):
        return args[0]                   # same LLVM type (i16), new signedness
    return types.int16(h), codegen


@intrinsic
def f32_from_bits(typingctx, u):
    """A uint32's bits as a float32."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return types.float32(u), codegen


LOOP_SIGNATURE = types.void(types.CPointer(types.CPointer(types.int8)),
                            types.CPointer(types.intp), types.CPointer(types.intp),
                            types.voidptr)
