"""The ml_dtypes formats in Numba: the twins of relu_small_to_f32 and
relu_f32_to_small in cuda/relu_ufunc.h, line for line, on the bits (Numba
has no such types).  The format's constants (bits, significand bits, bias,
kind) are arguments, as in C; the generated loops pass the literals of the
header's RELU_DEFINE_SMALL line, which LLVM folds where it inlines these.
Plain @njit functions, not inline="always": inlining them in Numba's IR at
every call made the backend's first compile 9x slower.
Integers are int64 here (Numba's), which holds every intermediate of the
C's 32-bit unsigned arithmetic without wrapping."""
import numpy as np
from numba import njit

from relu_ufunc._numba_intrinsics import f32_from_bits, sbits

IEEE, FN, FNUZ, FINITE = 0, 1, 2, 3     # RELU_IEEE ... RELU_FINITE
KINDS = {"IEEE": IEEE, "FN": FN, "FNUZ": FNUZ, "FINITE": FINITE}


@njit
def small_isnan(u, bits, man, kind):
    sign = 1 << (bits - 1)
    mag = u & (sign - 1)
    if kind == IEEE:
        return mag > (((sign - 1) >> man) << man)
    if kind == FN:
        return mag == sign - 1
    if kind == FNUZ:
        return u == sign
    return False


@njit
def small_to_f32(u, bits, man, bias, kind):
    u = np.int64(u)
    sign = 1 << (bits - 1)
    mag = u & (sign - 1)
    s32 = 0x80000000 if u & sign else 0
    if bits - 1 - man == 8 and bias == 127:          # float32's top bits: bfloat16
        return f32_from_bits(np.uint32(u << (32 - bits)))
    if small_isnan(u, bits, man, kind):
        return f32_from_bits(np.uint32(s32 | 0x7FC00000))
    if kind == IEEE and mag == (((sign - 1) >> man) << man):
        return f32_from_bits(np.uint32(s32 | 0x7F800000))
    e, m = mag >> man, mag & ((1 << man) - 1)
    if e != 0:
        return f32_from_bits(np.uint32(s32 | ((e + 127 - bias) << 23) | (m << (23 - man))))
    f = np.float32(m) * f32_from_bits(np.uint32((128 - bias - man) << 23))
    return f32_from_bits(np.uint32(s32 | np.int64(sbits(f))))


@njit
def small_from_f32(f, bits, man, bias, kind):
    x = np.int64(sbits(f)) & 0xFFFFFFFF
    ax = x & 0x7FFFFFFF
    sign = 1 << (bits - 1)
    s = sign if x >> 31 else 0
    inf = ((sign - 1) >> man) << man
    if kind == IEEE:
        maxmag, over = inf - 1, s | inf
    elif kind == FN:
        maxmag, over = sign - 2, s | (sign - 1)
    elif kind == FNUZ:
        maxmag, over = sign - 1, sign
    else:
        maxmag, over = sign - 1, s | (sign - 1)
    e32 = ax >> 23
    e = e32 - 127 + bias
    if ax > 0x7F800000:                               # NaN
        return s | inf | (1 << (man - 1)) if kind == IEEE else over
    if ax == 0x7F800000:
        return over
    if e >= 1 and e32 != 0:
        shift = 23 - man
        t = ax + ((1 << (shift - 1)) - 1) + ((ax >> shift) & 1)
        mag = (t >> shift) - ((127 - bias) << man)
    else:
        big = e32 if e32 != 0 else 1
        sig = ((ax & 0x7FFFFF) | 0x800000) if e32 != 0 else ax
        sh = 151 - (man + bias) - big
        if sh > 24:
            mag = 0
        else:
            q, rem, half = sig >> sh, sig & ((1 << sh) - 1), 1 << (sh - 1)
            mag = q + (1 if rem > half or (rem == half and (q & 1)) else 0)
    if mag > maxmag:
        return over
    if mag == 0 and kind == FNUZ:
        return 0
    return s | mag
