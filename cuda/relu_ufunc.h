/*
 * relu_ufunc.h -- the one definition of every relu_ufunc formula.
 *
 * Valid C99, C++ and CUDA.  The Cython ufunc loops (relu_ufunc/_ufuncs.pyx.in)
 * and the CuPy kernels (relu_ufunc/cuda/__init__.py) both include this file,
 * so the value table in docs/contract.md is written down exactly once, here.
 * relu_ufunc.get_include() is the folder that holds it.
 *
 * PUBLIC API.  The functions listed here, and only these, are public: other
 * code may call them, for instance a cupy.ElementwiseKernel that fuses a bias
 * add with the activation (docs/gpu.md, "Fused kernels").  They keep their names,
 * argument types and values (the contract's (docs/contract.md) table, bit for bit) from one release
 * to the next.  Everything else in this file (the RELU_* macros, relu_sbits_*,
 * relu_f16_to_f32 and the other helpers) is internal and may change.
 *
 *   T relu_S(T x)                       S: i8 u8 i16 u16 i32 u32 i64 u64 f16 f32 f64 ld
 *   T relu_grad_S(T x)                  S: i8 u8 i16 u16 i32 u32 i64 u64 f16 f32 f64 ld
 *   T relu_backward_S(T dy, T x)        S: i8 u8 i16 u16 i32 u32 i64 u64 f16 f32 f64 ld
 *   T leaky_relu_S(T x, T alpha)        S: f16 f32 f64 ld
 *   T leaky_relu_grad_S(T x, T alpha)   S: f16 f32 f64 ld
 *   T add_relu_S(T x, T b)              S: i8 u8 i16 u16 i32 u32 i64 u64 f16 f32 f64 ld
 *   and all six for the ml_dtypes formats, S: bf16 f8e3m4 f8e4m3 f8e4m3b11fnuz
 *   f8e4m3fn f8e4m3fnuz f8e5m2 f8e5m2fnuz f6e2m3fn f6e3m2fn f4e2m1fn, each on
 *   its bits: T unsigned short for bf16, unsigned char for the others
 *   (RELU_DEFINE_SMALL below; docs/contract.md, "ml_dtypes formats").
 *
 * T by suffix S: i8 signed char, u8 unsigned char, i16 short, u16 unsigned
 * short, i32 int, u32 unsigned int, i64 long long, u64 unsigned long long,
 * f16 unsigned short (the IEEE binary16 bits: in CuPy, a float16 array's
 * .view(cupy.uint16)), f32 float, f64 double, ld long double (host code
 * only: CUDA has none).  They are static inline functions in C and C++, and
 * static __device__ __forceinline__ ones under nvcc and NVRTC, so a CUDA
 * kernel calls them and host code calls them, each in its own compile.
 * Under CuPy's -ftz=true the values stay exact: f32 leaky_relu multiplies in
 * float64 on the device (see RELU_F32_MUL), the rest only select.
 *
 * Every formula is written once, in RELU_DEFINE_FORMULAS and
 * RELU_DEFINE_LEAKY, in terms of three per-type pieces:
 *   POS(x)    the sign is clear and x is not zero: for any x that is not a
 *             NaN, exactly "x > 0".  Every formula decides NaN first (or
 *             alongside), so POS never has to rule NaN out itself;
 *   ISNAN(x)  x is a NaN (constant 0 for integers);
 *   KEEP(x)   relu returns x itself: x > 0, x is a NaN, or x is +0 (its own
 *             relu).  For floats that is one integer compare on the bits,
 *             sbits(x) > sbits(-inf): every bit pattern above -inf's, as a
 *             signed integer, is a positive number, +0 or a NaN (of either
 *             sign).  relu then costs 4 vector ops per vector instead of 6,
 *             which measured 10-15% faster in cache;
 *   ZERO/ONE  the constants of the type.
 * The type families below only say what those pieces are.
 *
 * Why not just `x > 0`, and NaN as `x != x`?  On x86 an ordered compare
 * (comiss, cmpltps) is a *signalling* compare, so NaN data would set
 * FE_INVALID and NumPy would warn; GCC even vectorizes C99 isgreater() into
 * one.  And every float compare, the quiet `x != x` (ucomiss, vcmpunordps)
 * included, raises FE_INVALID on a *signalling* NaN, where NumPy's own
 * np.isnan and np.maximum raise nothing.  So for floats both POS and ISNAN
 * are integer compares on the bits (sbits(x) > 0; |bits| > bits(+inf)):
 * no float compare is ever made, and the loops vectorize tightly.
 * The "NaN, else select" formulas select first and blend the NaN in last:
 * the same value, but GCC then emits fewer vector ops (relu_grad ran at
 * 0.133 instead of 0.224 ns/element, float32, AVX2, with that order).
 */
#ifndef RELU_UFUNC_H
#define RELU_UFUNC_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#  define RELU_INLINE static __device__ __forceinline__
#  define RELU_HAS_LONGDOUBLE 0
#else
#  include <string.h>   /* memcpy: the portable, vectorizable bit cast */
#  include <math.h>     /* signbit, for long double */
#  define RELU_INLINE static inline
#  define RELU_HAS_LONGDOUBLE 1
#endif

/* ---- the formulas (docs/contract.md, "Values, exactly") ------------------------- */

#define RELU_DEFINE_FORMULAS(S, T, POS, ISNAN, KEEP, ZERO, ONE)               \
    /* relu: x where x > 0, +0 where x <= 0, NaN stays NaN */                 \
    RELU_INLINE T relu_##S(T x)                                               \
    { return KEEP(x) ? x : ZERO; }                                            \
    /* relu_grad: 1 where x > 0, 0 where x <= 0, NaN stays NaN */             \
    RELU_INLINE T relu_grad_##S(T x)                                          \
    { T g = POS(x) ? ONE : ZERO; return ISNAN(x) ? x : g; }                   \
    /* relu_backward: dy where x > 0 (whatever dy is), else 0; NaN x -> NaN */ \
    RELU_INLINE T relu_backward_##S(T dy, T x)                                \
    { T g = POS(x) ? dy : ZERO; return ISNAN(x) ? x : g; }

/* The leaky pair, for floating types; MUL(a, x) is the type's one rounding
 * multiply.  alpha * (-0.0) keeps its sign; NaN x stays NaN.               */
#define RELU_DEFINE_LEAKY(S, T, POS, ISNAN, ONE, MUL)                         \
    /* leaky_relu: x where x > 0, alpha * x where x <= 0, as slope * x:       \
     * 1 * x is exactly x (inf too), NaN stays NaN, and no product is made   \
     * only to be thrown away (which would keep GCC from vectorizing, and   \
     * could raise a flag for a value not returned). */                      \
    RELU_INLINE T leaky_relu_##S(T x, T alpha)                                \
    { return MUL(POS(x) ? ONE : alpha, x); }                                  \
    RELU_DEFINE_LEAKY_GRAD(S, T, POS, ISNAN, ONE)

/* leaky_relu_grad: 1 where x > 0, alpha where x <= 0, NaN stays NaN */
#define RELU_DEFINE_LEAKY_GRAD(S, T, POS, ISNAN, ONE)                         \
    RELU_INLINE T leaky_relu_grad_##S(T x, T alpha)                           \
    { T g = POS(x) ? ONE : alpha; return ISNAN(x) ? x : g; }

#define RELU_MUL(a, b) ((a) * (b))

/* add_relu: relu(x + b), the sum as NumPy's np.add makes it (ADD: the type's
 * one rounding add; integers wrap), then relu: so NaN, -0.0 and the FP
 * flags are np.add's, and the result is never -0.0.                        */
#define RELU_DEFINE_ADD(S, T, ADD)                                            \
    RELU_INLINE T add_relu_##S(T x, T b)                                      \
    { return relu_##S(ADD(x, b)); }

#define RELU_ADD(a, b) ((a) + (b))

/* ---- integers: no NaN, and compares never trap ------------------------- */

#define RELU_INT_POS(x)   ((x) > 0)
#define RELU_INT_ISNAN(x) 0
/* The sum wraps, as np.add's does: added in the unsigned type U (signed
 * overflow is undefined in C), converted back (modulo, in every compiler
 * relu_ufunc builds with).                                                  */
#define RELU_DEFINE_INT(S, T, U)                                              \
    RELU_DEFINE_FORMULAS(S, T, RELU_INT_POS, RELU_INT_ISNAN, RELU_INT_POS, (T)0, (T)1) \
    RELU_INLINE T relu_add_##S(T a, T b) { return (T)((U)a + (U)b); }        \
    RELU_DEFINE_ADD(S, T, relu_add_##S)

/* ---- binary floating point: sign and NaN from the bits ------------------ */

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
RELU_INLINE int relu_sbits_f32(float x) { return __float_as_int(x); }
RELU_INLINE long long relu_sbits_f64(double x) { return __double_as_longlong(x); }
RELU_INLINE float relu_f32_from_bits(unsigned int u) { return __uint_as_float(u); }
#else
RELU_INLINE int relu_sbits_f32(float x)
{ int s; memcpy(&s, &x, sizeof s); return s; }
RELU_INLINE long long relu_sbits_f64(double x)
{ long long s; memcpy(&s, &x, sizeof s); return s; }
RELU_INLINE float relu_f32_from_bits(unsigned int u)
{ float f; memcpy(&f, &u, sizeof f); return f; }
#endif

/* As a signed integer the bits are > 0 exactly for +0 < x <= +inf and +NaN. */
#define RELU_F32_POS(x)   (relu_sbits_f32(x) > 0)
#define RELU_F64_POS(x)   (relu_sbits_f64(x) > 0)
/* |bits| above +inf's: a NaN, quiet or signalling, tested without a float
 * compare (which would raise FE_INVALID on a signalling NaN). */
#define RELU_F32_ISNAN(x) ((relu_sbits_f32(x) & 0x7fffffff) > 0x7f800000)
#define RELU_F64_ISNAN(x) ((relu_sbits_f64(x) & 0x7fffffffffffffffLL) > 0x7ff0000000000000LL)
/* sbits(-inf): 0xff800000 and 0xfff0000000000000 as signed integers */
#define RELU_F32_KEEP(x)  (relu_sbits_f32(x) > -0x7fffff - 1)
#define RELU_F64_KEEP(x)  (relu_sbits_f64(x) > -0xfffffffffffffLL - 1)

/* ---- float16, as its IEEE binary16 bits in an unsigned short ----------- */
/* Integer operations on the bits are exact and raise nothing, and need no
 * compiler support for a half type: the same code serves C and CUDA, and
 * float16 is computed as float16, never through another dtype's buffers.  */

#define RELU_F16_ISNAN(h) (((h) & 0x7fffu) > 0x7c00u)
#define RELU_F16_POS(h)   ((short)(h) > 0)
#define RELU_F16_KEEP(h)  ((short)(h) > -0x400)      /* -inf is 0xfc00 */

RELU_DEFINE_FORMULAS(f16, unsigned short, RELU_F16_POS, RELU_F16_ISNAN, RELU_F16_KEEP,
                     (unsigned short)0, (unsigned short)0x3c00u)

/* float16 multiply, exactly rounded: a half has an 11-bit significand, so the
 * product of two halves is exact in float32 (22 bits, exponents in range),
 * and the one rounding is float32 -> float16, to nearest even.  On the
 * host the conversions are integer operations only: no FP flags, and no
 * need for a compiler half type.                                           */
#if defined(__CUDA_ARCH__)
/* On the GPU the hardware converts: exactly, and to nearest even, subnormal
 * halves too.  Written as PTX so that CuPy's -ftz=true cannot add .ftz; the
 * float32 product of two halves is never subnormal.  The integer versions
 * below cost enough instructions that float16 leaky_relu ran at 57% of copy
 * bandwidth on an H100.                                                    */
RELU_INLINE float relu_f16_to_f32(unsigned short h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

RELU_INLINE unsigned short relu_f32_to_f16(float f)
{
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
#else
RELU_INLINE float relu_f16_to_f32(unsigned short h)
{
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1fu)                                    /* inf, NaN */
        return relu_f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp != 0)                                        /* normal */
        return relu_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24, exact in float32 */
    return relu_f32_from_bits(sign | relu_sbits_f32((float)man * 5.9604644775390625e-8f));
}

/* NumPy's conversion raises "overflow" for a finite float that rounds to
 * inf and "underflow" for one whose half is subnormal or zero and inexact
 * (npy_floatbits_to_halfbits); so does this one, by a float operation that
 * raises it, so that float16 arithmetic warns where np.add's and
 * np.multiply's do.  volatile: the compiler may not fold it away.          */
RELU_INLINE void relu_raise_overflow(void)
{ volatile float big = 1e38f; big = big * big; }
RELU_INLINE void relu_raise_underflow(void)
{ volatile float tiny = 1e-30f; tiny = tiny * tiny; }

RELU_INLINE unsigned short relu_f32_to_f16(float f)
{
    unsigned int x = (unsigned int)relu_sbits_f32(f);
    unsigned int sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)                                /* NaN: keep it quiet */
        return (unsigned short)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) {                             /* rounds to inf */
        if (ax != 0x7f800000u)
            relu_raise_overflow();
        return (unsigned short)(sign | 0x7c00u);
    }
    if (ax >= 0x38800000u) {                             /* a normal half */
        ax += 0xfffu + ((ax >> 13) & 1u);                /* to nearest even */
        return (unsigned short)(sign | ((ax - 0x38000000u) >> 13));
    }
    {                                                    /* subnormal or 0 */
        unsigned int e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        unsigned int shift = 126u - e, q, rem, half;
        if (shift > 24u) {
            if (ax != 0u)
                relu_raise_underflow();
            return (unsigned short)sign;
        }
        q = m >> shift;
        rem = m & ((1u << shift) - 1u);
        half = 1u << (shift - 1u);
        if (rem != 0u)
            relu_raise_underflow();
        q += (rem > half) || (rem == half && (q & 1u));
        return (unsigned short)(sign | q);
    }
}
#endif

#define RELU_F16_MUL(a, b) relu_f32_to_f16(relu_f16_to_f32(a) * relu_f16_to_f32(b))

RELU_DEFINE_LEAKY(f16, unsigned short, RELU_F16_POS, RELU_F16_ISNAN,
                  (unsigned short)0x3c00u, RELU_F16_MUL)
/* As NumPy adds halves: in float32, rounded once to float16. */
#define RELU_F16_ADD(a, b) relu_f32_to_f16(relu_f16_to_f32(a) + relu_f16_to_f32(b))
RELU_DEFINE_ADD(f16, unsigned short, RELU_F16_ADD)
/* float32 multiply on the GPU.  CuPy compiles every kernel with -ftz=true
 * (cupy/cuda/compiler.py appends it after the user's options, cupy#9576), so
 * a float32 multiply there flushes subnormal inputs and results to zero,
 * where NumPy keeps them.  On the device the product is therefore made in
 * float64, where it is exact (24 + 24 significand bits), and rounded to
 * float32 once, to nearest even, with float64 operations and bit moves
 * only: -ftz touches float32 arithmetic alone.  Host code multiplies.      */
#if defined(__CUDA_ARCH__)
RELU_INLINE double relu_f32_to_f64(float x)
{
    unsigned int b = __float_as_uint(x);
    double m;
    if ((b & 0x7f800000u) != 0u)             /* normal, inf, NaN: exact */
        return (double)x;
    m = (double)(b & 0x7fffffu) * __longlong_as_double(0x36a0000000000000LL);  /* 2^-149 */
    return (b >> 31) ? -m : m;
}

RELU_INLINE float relu_f64_to_f32(double p)
{
    if (fabs(p) < __longlong_as_double(0x3810000000000000LL)) {  /* < 2^-126 */
        /* a float32 subnormal or zero: k * 2^-149, k rounded to nearest even
         * (k == 2^23 is 2^-126, whose bits are k too) */
        unsigned int k = (unsigned int)rint(fabs(p) * __longlong_as_double(0x4940000000000000LL));
        return __uint_as_float((__double_as_longlong(p) < 0 ? 0x80000000u : 0u) | k);
    }
    return __double2float_rn(p);                 /* a normal result, inf or NaN */
}
#  define RELU_F32_MUL(a, b) relu_f64_to_f32(relu_f32_to_f64(a) * relu_f32_to_f64(b))
/* The sum too: float64's 53 bits round a float32 sum innocuously
 * (53 >= 2 * 24 + 2), so rounding it once more to float32 gives the float32
 * sum, subnormals kept.                                                    */
#  define RELU_F32_ADD(a, b) relu_f64_to_f32(relu_f32_to_f64(a) + relu_f32_to_f64(b))
#else
#  define RELU_F32_MUL RELU_MUL
#  define RELU_F32_ADD RELU_ADD
#endif

RELU_DEFINE_LEAKY(f32, float,  RELU_F32_POS, RELU_F32_ISNAN, 1.0f, RELU_F32_MUL)
RELU_DEFINE_LEAKY(f64, double, RELU_F64_POS, RELU_F64_ISNAN, 1.0, RELU_MUL)
RELU_DEFINE_FORMULAS(f32, float,  RELU_F32_POS, RELU_F32_ISNAN, RELU_F32_KEEP, 0.0f, 1.0f)
RELU_DEFINE_FORMULAS(f64, double, RELU_F64_POS, RELU_F64_ISNAN, RELU_F64_KEEP, 0.0, 1.0)
RELU_DEFINE_ADD(f32, float, RELU_F32_ADD)
RELU_DEFINE_ADD(f64, double, RELU_ADD)

/* ---- the ML formats of ml_dtypes, on their bits ------------------------ */
/* bfloat16 and the float8, float6 and float4 formats: BITS bits (the low
 * ones of T), the top one the sign, then the exponent, then MAN significand
 * bits; exponent bias BIAS.  KIND says where the format keeps its special
 * values, as ml_dtypes defines them:                                        */
#define RELU_IEEE   0   /* +-inf, and NaN: exponent all ones, significand not 0 */
#define RELU_FN     1   /* no inf; NaN: every bit but the sign set (e4m3fn)     */
#define RELU_FNUZ   2   /* no inf, no -0: NaN is the bit pattern of -0          */
#define RELU_FINITE 3   /* no inf, no NaN (float6, float4)                      */
/* The selecting formulas (relu, relu_grad, relu_backward, leaky_relu_grad)
 * are integer operations on the bits, as for float16: exact, no FP flags,
 * NaN kept bit for bit.  The arithmetic (leaky_relu's product, add_relu's
 * sum) is ml_dtypes' own: the operands widened exactly to float32, one
 * float32 operation, the result rounded to nearest even to the format, as
 * ml_dtypes converts (relu_f32_to_small): its overflow, NaN and -0 rules.
 * These functions take the format's constants as arguments; each format's
 * formulas (RELU_DEFINE_SMALL) pass literals, which the compiler folds.     */

RELU_INLINE unsigned int relu_small_sign(int bits) { return 1u << (bits - 1); }
/* the magnitude of +-inf in an IEEE format: the exponent all ones */
RELU_INLINE unsigned int relu_small_inf(int bits, int man)
{ return ((relu_small_sign(bits) - 1u) >> man) << man; }

RELU_INLINE int relu_small_isnan(unsigned int u, int bits, int man, int kind)
{
    unsigned int sign = relu_small_sign(bits), mag = u & (sign - 1u);
    return kind == RELU_IEEE ? mag > relu_small_inf(bits, man)
         : kind == RELU_FN   ? mag == sign - 1u
         : kind == RELU_FNUZ ? u == sign : 0;
}

/* The tests below are one compare each, so that GCC vectorizes them in the
 * format's own width (two compares and a branch ran relu_grad at 1/4 of
 * copy speed on bfloat16).  s is the bits as a signed integer of T's width
 * (RELU_SMALL_SIGNED), u as unsigned; full: the format fills T.           */
#define RELU_SMALL_SIGNED(T, x) (sizeof(T) == 1 ? (int)(signed char)(x) : (int)(short)(x))

/* the sign is clear and x is not zero (any NaN is decided first) */
RELU_INLINE int relu_small_pos(int s, unsigned int u, int bits, int full)
{ return full ? s > 0 : u - 1u < relu_small_sign(bits) - 1u; }

/* relu keeps x: the sign is clear (+0, x > 0, +NaN), or x is a NaN.  As
 * for float32, in a format that fills T the bits above those of the
 * largest negative non-NaN value, as signed, are exactly these.           */
RELU_INLINE int relu_small_keep(int s, unsigned int u, int bits, int man, int kind, int full)
{
    unsigned int sign = relu_small_sign(bits);
    unsigned int last = sign | (kind == RELU_IEEE ? relu_small_inf(bits, man) : sign - 2u);
    if (kind == RELU_FNUZ)
        return u <= sign;                        /* the one NaN is -0's pattern */
    if (kind == RELU_FINITE)
        return u < sign;
    return full ? s > (int)last - (int)(2u * sign) : u < sign || relu_small_isnan(u, bits, man, kind);
}

/* The value as a float32, exactly (every one of these formats fits). */
RELU_INLINE float relu_small_to_f32(unsigned int u, int bits, int man, int bias, int kind)
{
    unsigned int sign = relu_small_sign(bits), mag = u & (sign - 1u);
    unsigned int s32 = (u & sign) ? 0x80000000u : 0u;
    unsigned int e = mag >> man, m = mag & ((1u << man) - 1u);
    float f;
    if (bits - 1 - man == 8 && bias == 127)      /* float32's top bits: bfloat16 */
        return relu_f32_from_bits(u << (32 - bits));
    if (relu_small_isnan(u, bits, man, kind))
        return relu_f32_from_bits(s32 | 0x7fc00000u);
    if (kind == RELU_IEEE && mag == relu_small_inf(bits, man))
        return relu_f32_from_bits(s32 | 0x7f800000u);
    if (e != 0u)                                 /* normal */
        return relu_f32_from_bits(s32 | ((e + 127u - (unsigned int)bias) << 23) | (m << (23 - man)));
    /* zero or subnormal: m * 2^(1 - bias - man), a normal float32 or 0 (its
     * exponent is above float32's least), so exact under -ftz too */
    f = (float)m * relu_f32_from_bits((unsigned int)(128 - bias - man) << 23);
    return relu_f32_from_bits(s32 | (unsigned int)relu_sbits_f32(f));
}

/* A float32 to the format, rounded to nearest even, as ml_dtypes converts:
 * a magnitude above the largest finite one (after rounding) and inf become
 * inf (IEEE), NaN (FN, FNUZ) or the largest finite value (FINITE); NaN
 * becomes the format's quiet NaN, signed (IEEE, FN) or its only one (FNUZ);
 * -0 is +0 in an FNUZ format.  Integer operations only: no FP flags.       */
RELU_INLINE unsigned int relu_f32_to_small(float f, int bits, int man, int bias, int kind)
{
    unsigned int x = (unsigned int)relu_sbits_f32(f), ax = x & 0x7fffffffu;
    unsigned int sign = relu_small_sign(bits), s = (x >> 31) ? sign : 0u;
    unsigned int inf = relu_small_inf(bits, man);
    unsigned int maxmag = kind == RELU_IEEE ? inf - 1u : kind == RELU_FN ? sign - 2u : sign - 1u;
    unsigned int over = kind == RELU_IEEE ? s | inf : kind == RELU_FN ? s | (sign - 1u)
                      : kind == RELU_FNUZ ? sign : s | maxmag;
    unsigned int e32 = ax >> 23, mag;
    int e = (int)e32 - 127 + bias;               /* the format's biased exponent */
    if (ax > 0x7f800000u)                        /* NaN */
        return kind == RELU_IEEE ? s | inf | (1u << (man - 1)) : over;
    if (ax == 0x7f800000u)
        return over;
    if (e >= 1 && e32 != 0u) {                   /* normal in the format, or above */
        unsigned int shift = 23u - (unsigned int)man;
        unsigned int t = ax + ((1u << (shift - 1u)) - 1u) + ((ax >> shift) & 1u);
        mag = (t >> shift) - ((unsigned int)(127 - bias) << man);
    } else {                                     /* subnormal or zero in the format */
        unsigned int big = e32 != 0u ? e32 : 1u;
        unsigned int sig = e32 != 0u ? (ax & 0x7fffffu) | 0x800000u : ax;
        unsigned int sh = 151u - (unsigned int)(man + bias) - big;
        if (sh > 24u) {
            mag = 0u;
        } else {
            unsigned int q = sig >> sh, rem = sig & ((1u << sh) - 1u), half = 1u << (sh - 1u);
            mag = q + ((rem > half) || (rem == half && (q & 1u)));
        }
    }
    if (mag > maxmag)
        return over;
    if (mag == 0u && kind == RELU_FNUZ)
        return 0u;
    return s | mag;
}

/* One format's formulas.  leaky_relu and add_relu are ml_dtypes' arithmetic:
 * leaky_relu(x, a) is x where x > 0 and fmt(float32(a) * float32(x))
 * where x <= 0, which is (x.astype(float32) * a.astype(float32)).astype(fmt)
 * there; add_relu is relu(fmt(float32(x) + float32(b))), ml_dtypes' np.add.
 * A NaN x is kept bit for bit by leaky_relu, with no product made.         */
#define RELU_DEFINE_SMALL(S, T, BITS, MAN, BIAS, KIND)                        \
    RELU_INLINE int relu_isnan_##S(T x) { return relu_small_isnan(x, BITS, MAN, KIND); } \
    RELU_INLINE int relu_pos_##S(T x)                                         \
    { return relu_small_pos(RELU_SMALL_SIGNED(T, x), x, BITS, BITS == 8 * (int)sizeof(T)); } \
    RELU_INLINE int relu_keep_##S(T x)                                        \
    { return relu_small_keep(RELU_SMALL_SIGNED(T, x), x, BITS, MAN, KIND,     \
                             BITS == 8 * (int)sizeof(T)); }                   \
    RELU_INLINE float relu_##S##_to_f32(T x)                                  \
    { return relu_small_to_f32(x, BITS, MAN, BIAS, KIND); }                   \
    RELU_INLINE T relu_f32_to_##S(float f)                                    \
    { return (T)relu_f32_to_small(f, BITS, MAN, BIAS, KIND); }                \
    RELU_DEFINE_FORMULAS(S, T, relu_pos_##S, relu_isnan_##S, relu_keep_##S,   \
                         (T)0, (T)((BIAS) << (MAN)))                          \
    RELU_DEFINE_LEAKY_GRAD(S, T, relu_pos_##S, relu_isnan_##S, (T)((BIAS) << (MAN))) \
    RELU_INLINE T leaky_relu_##S(T x, T alpha)                                \
    {                                                                         \
        int one = relu_pos_##S(x) || relu_isnan_##S(x);                       \
        float slope = one ? 1.0f : relu_##S##_to_f32(alpha);                  \
        float xf = relu_isnan_##S(x) ? 0.0f : relu_##S##_to_f32(x);           \
        T y = relu_f32_to_##S(RELU_F32_MUL(slope, xf));                       \
        return relu_isnan_##S(x) ? x : y;                                     \
    }                                                                         \
    RELU_INLINE T relu_add_##S(T x, T b)                                      \
    { return relu_f32_to_##S(RELU_F32_ADD(relu_##S##_to_f32(x), relu_##S##_to_f32(b))); } \
    RELU_DEFINE_ADD(S, T, relu_add_##S)

/*                S               T               BITS MAN BIAS KIND            ml_dtypes name */
RELU_DEFINE_SMALL(bf16,          unsigned short, 16,  7,  127, RELU_IEEE)    /* bfloat16 */
RELU_DEFINE_SMALL(f8e3m4,        unsigned char,  8,   4,  3,   RELU_IEEE)    /* float8_e3m4 */
RELU_DEFINE_SMALL(f8e4m3,        unsigned char,  8,   3,  7,   RELU_IEEE)    /* float8_e4m3 */
RELU_DEFINE_SMALL(f8e4m3b11fnuz, unsigned char,  8,   3,  11,  RELU_FNUZ)    /* float8_e4m3b11fnuz */
RELU_DEFINE_SMALL(f8e4m3fn,      unsigned char,  8,   3,  7,   RELU_FN)      /* float8_e4m3fn */
RELU_DEFINE_SMALL(f8e4m3fnuz,    unsigned char,  8,   3,  8,   RELU_FNUZ)    /* float8_e4m3fnuz */
RELU_DEFINE_SMALL(f8e5m2,        unsigned char,  8,   2,  15,  RELU_IEEE)    /* float8_e5m2 */
RELU_DEFINE_SMALL(f8e5m2fnuz,    unsigned char,  8,   2,  16,  RELU_FNUZ)    /* float8_e5m2fnuz */
RELU_DEFINE_SMALL(f6e2m3fn,      unsigned char,  6,   3,  1,   RELU_FINITE)  /* float6_e2m3fn */
RELU_DEFINE_SMALL(f6e3m2fn,      unsigned char,  6,   2,  3,   RELU_FINITE)  /* float6_e3m2fn */
RELU_DEFINE_SMALL(f4e2m1fn,      unsigned char,  4,   1,  1,   RELU_FINITE)  /* float4_e2m1fn */

#if RELU_HAS_LONGDOUBLE
/* long double, from its bits as well.  Its layout differs by platform, as
 * LDBL_MANT_DIG tells: x87 extended on x86 (64: a 64-bit significand with
 * an explicit integer bit, then sign and exponent, then padding), IEEE
 * binary128 on AArch64 Linux (113), or plain double (53).  Little-endian
 * layouts only; any other (PowerPC's double-double) falls back to float
 * compares, which are right but raise FE_INVALID on a signalling NaN.     */
#include <float.h>
#if LDBL_MANT_DIG == 64 && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* lo: the significand; hi: sign (bit 15) and exponent (bits 0-14) */
RELU_INLINE void relu_ld_words(long double x, unsigned long long *lo, unsigned long long *hi)
{ unsigned short se; memcpy(lo, &x, 8); memcpy(&se, (const char *)&x + 8, 2); *hi = se; }
#  define RELU_LD_SIGN(hi)              ((hi) >> 15)
#  define RELU_LD_EXP_ONES(hi)          (((hi) & 0x7fffu) == 0x7fffu)
#  define RELU_LD_FRACTION(hi, lo)      ((lo) << 1)              /* not the integer bit */
#  define RELU_LD_MAGNITUDE(hi, lo)     (((hi) & 0x7fffu) | (lo))
#elif LDBL_MANT_DIG == 113 && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* lo: the low 64 bits of the fraction; hi: sign, exponent, 48 fraction bits */
RELU_INLINE void relu_ld_words(long double x, unsigned long long *lo, unsigned long long *hi)
{ memcpy(lo, &x, 8); memcpy(hi, (const char *)&x + 8, 8); }
#  define RELU_LD_SIGN(hi)              ((hi) >> 63)
#  define RELU_LD_EXP_ONES(hi)          ((((hi) >> 48) & 0x7fffu) == 0x7fffu)
#  define RELU_LD_FRACTION(hi, lo)      (((hi) & 0xffffffffffffULL) | (lo))
#  define RELU_LD_MAGNITUDE(hi, lo)     (((hi) << 1) | (lo))
#endif
#ifdef RELU_LD_SIGN
RELU_INLINE int relu_ld_isnan(long double x)
{
    unsigned long long lo, hi;
    relu_ld_words(x, &lo, &hi);
    return RELU_LD_EXP_ONES(hi) && RELU_LD_FRACTION(hi, lo) != 0;
}
/* the sign is clear and x is not zero */
RELU_INLINE int relu_ld_pos(long double x)
{
    unsigned long long lo, hi;
    relu_ld_words(x, &lo, &hi);
    return !RELU_LD_SIGN(hi) && RELU_LD_MAGNITUDE(hi, lo) != 0;
}
#elif LDBL_MANT_DIG == 53                       /* long double is double */
RELU_INLINE int relu_ld_isnan(long double x) { return RELU_F64_ISNAN((double)x); }
RELU_INLINE int relu_ld_pos(long double x) { return RELU_F64_POS((double)x); }
#else
RELU_INLINE int relu_ld_isnan(long double x) { return x != x; }
RELU_INLINE int relu_ld_pos(long double x) { return !signbit(x) && x != 0; }
#endif
#define RELU_LD_POS(x) relu_ld_pos(x)
#define RELU_LD_ISNAN(x) relu_ld_isnan(x)
#define RELU_LD_KEEP(x) (RELU_LD_POS(x) || RELU_LD_ISNAN(x))
RELU_DEFINE_FORMULAS(ld, long double, RELU_LD_POS, RELU_LD_ISNAN, RELU_LD_KEEP, 0.0L, 1.0L)
RELU_DEFINE_LEAKY(ld, long double, RELU_LD_POS, RELU_LD_ISNAN, 1.0L, RELU_MUL)
RELU_DEFINE_ADD(ld, long double, RELU_ADD)
#endif

/* ---- every integer width, named by kind and bits ----------------------- */

RELU_DEFINE_INT(i8,  signed char,        unsigned char)
RELU_DEFINE_INT(u8,  unsigned char,      unsigned char)
RELU_DEFINE_INT(i16, short,              unsigned short)
RELU_DEFINE_INT(u16, unsigned short,     unsigned short)
RELU_DEFINE_INT(i32, int,                unsigned int)
RELU_DEFINE_INT(u32, unsigned int,       unsigned int)
RELU_DEFINE_INT(i64, long long,          unsigned long long)
RELU_DEFINE_INT(u64, unsigned long long, unsigned long long)

#endif /* RELU_UFUNC_H */
