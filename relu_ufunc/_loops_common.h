/*
 * What every generated loop of _loops.h.in shares: the CPU builds, the
 * overlap tests, the streaming stores, and the declarations of the runtime
 * state they read (the build that runs and the store plan, in _plan.c; the
 * threads, in _threads.c).  Only inline helpers and constants live here;
 * nothing here knows a formula (those come from cuda/relu_ufunc.h).
 */
#ifndef RELU_LOOPS_COMMON_H
#define RELU_LOOPS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Opt-in threads (relu_team_begin, relu_run_team), and RELU_HIDDEN. */
#include "_threads.h"

/* ---- CPU builds ----------------------------------------------------------
 * Every kernel is compiled once per level, and relu_level (set at import to
 * the highest this CPU and OS support, from what the CPU reports through
 * __builtin_cpu_supports) says which build runs:
 *   2  AVX-512 (F, BW, CD, DQ, VL),  1  AVX2,  0  the x86-64 baseline, SSE2.
 * This is our own dispatch rather than GCC's target_clones so that the tests
 * can run every build on a machine that has the highest (the private
 * _ufuncs._set_cpu_level), as NumPy's NPY_DISABLE_CPU_FEATURES lets its
 * tests do.  Other compilers and CPUs get one portable build, level 0.     */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(RELU_NO_CLONES) && \
    ((!defined(__clang__) && __GNUC__ >= 6) || (defined(__clang__) && __clang_major__ >= 9))
#  define RELU_LEVELS 3
#  define RELU_TARGET_AVX2 __attribute__((target("avx2")))
#  define RELU_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl")))
#else
#  define RELU_LEVELS 1
#endif
/* AVX2 with GCC's vectorizer at 128 bits, for the one loop that gains by it
 * (the stride-2 kernel of _loops.h.in says why).  Clang has no such
 * per-function switch: there it is the plain AVX2 build. */
#if RELU_LEVELS == 3 && !defined(__clang__) && __GNUC__ >= 8
#  define RELU_TARGET_AVX2_XMM __attribute__((target("avx2,prefer-vector-width=128")))
#elif RELU_LEVELS == 3
#  define RELU_TARGET_AVX2_XMM RELU_TARGET_AVX2
#endif

/* The main loop is unrolled by four: without it GCC's loop is one vector
 * per iteration, and in L1 the loop overhead is what costs (n = 1e3,
 * float32, AVX2 loop 3.1x memcpy, unrolled AVX-512 1.0x, on a Xeon). */
#if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 8)
#  define RELU_UNROLL _Pragma("GCC unroll 4")
#  define RELU_NO_UNROLL _Pragma("GCC unroll 1")
#else
#  define RELU_UNROLL
#  define RELU_NO_UNROLL
#endif

/* A kernel left scalar (see levels() in _loops.h.in): GCC's vectorizer off.
 * Clang has no per-function switch, and vectorizes such loops less eagerly. */
#if defined(__GNUC__) && !defined(__clang__)
#  define RELU_SCALAR_KERNEL __attribute__((optimize("no-tree-vectorize")))
#else
#  define RELU_SCALAR_KERNEL
#endif

/* A kernel kept out of line where another calls it (a streaming kernel
 * calls the plain one of its build for its unaligned ends). */
#if defined(__GNUC__)
#  define RELU_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#  define RELU_NOINLINE __declspec(noinline)
#else
#  define RELU_NOINLINE
#endif

/* The level of the builds that run, and the highest this CPU runs (both
 * in _plan.c, with the store plan: the runtime state of the kernels). */
RELU_HIDDEN extern int relu_level;
RELU_HIDDEN int relu_max_level(void);

/* ---- which path a call may take ------------------------------------------
 * NumPy hands an inner loop aliased operands without copying them in a few
 * cases, and then the order of the element steps is the result:
 *  - reduce: the output is input 0 at stride 0 (acc = f(acc, x1[i]));
 *  - accumulate: input 0 is the output one step behind;
 *  - exact in place (out=x): each element is read, then written.
 * The vectorized kernels and the strided blocks read many inputs before
 * they write, so they may run only when each input is either apart from the
 * output or exactly the output element for element (NumPy's nomemoverlap,
 * with the stride-0 case that its IS_BINARY_REDUCE catches).  Anything
 * else runs one element at a time, in order.                              */
static inline void relu_extent(const char *p, ptrdiff_t stride, ptrdiff_t n, ptrdiff_t size,
                               const char **lo, const char **hi)
{
    ptrdiff_t span = stride * (n - 1);
    *lo = span < 0 ? p + span : p;
    *hi = (span < 0 ? p : p + span) + size;
}

static inline int relu_independent(const char *a, ptrdiff_t sa, const char *y, ptrdiff_t sy,
                                   ptrdiff_t n, ptrdiff_t size)
{
    const char *alo, *ahi, *ylo, *yhi;
    if (n <= 0)
        return 1;
    if (a == y && sa == sy && (n == 1 || sa >= size || -sa >= size))
        return 1;                               /* the same elements */
    relu_extent(a, sa, n, size, &alo, &ahi);
    relu_extent(y, sy, n, size, &ylo, &yhi);
    return ahi <= ylo || yhi <= alo;
}

/* Elements to do one by one before y is 64-byte aligned.  Vector stores
 * that straddle cache lines cost ~40% at n = 1e5 (float32, AVX2: 14.4 us
 * against 10.5 us with NumPy's usual 16-byte alignment); memcpy aligns its
 * destination for the same reason. */
static inline ptrdiff_t relu_head(const void *y, size_t size, ptrdiff_t n)
{
    uintptr_t misalign = (uintptr_t)y & 63u;
    ptrdiff_t head;
    if (misalign == 0 || misalign % size != 0)
        return 0;
    head = (ptrdiff_t)((64u - misalign) / size);
    return head < n ? head : n;
}

/* Elements of a strided output computed at a time into an L1 block before
 * they are copied out: a loop that writes y at a stride stays scalar and
 * branches, and mispredicts on half-negative data. */
#define RELU_BLOCK 256

/* ---- streaming (non-temporal) stores -------------------------------------
 * A plain store first reads the line it writes (write-allocate), so out of
 * cache a loop moves 3 bytes per byte written; a non-temporal store writes
 * the line without reading it, as memcpy does for large copies.  In cache,
 * non-temporal stores lose badly (1.8-2.2x memcpy from 1e4 to 1e6 float32
 * on a Zen 4), so they are used only from the size that relu_stream_plan
 * measured them to win on this machine, and only where the output overlaps
 * no input (in place, the line was just read: a plain store is best).
 * A kernel computes each 256-byte piece into an aligned L1 buffer with the
 * vectorized formula, then streams the piece out, in one sequential pass.  */
#define RELU_PIECE_BYTES 256
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(RELU_NO_STREAM)
#  define RELU_STREAM 1
#  include <immintrin.h>
#else
#  define RELU_STREAM 0
#endif

#if RELU_STREAM
static inline void relu_stream_piece_baseline(void *dst, const void *src)
{
    __m128i *d = (__m128i *)dst;
    const __m128i *s = (const __m128i *)src;
    for (int k = 0; k < RELU_PIECE_BYTES / 16; k++)
        _mm_stream_si128(d + k, _mm_load_si128(s + k));
}
#  if RELU_LEVELS == 3
RELU_TARGET_AVX2 static inline void relu_stream_piece_avx2(void *dst, const void *src)
{
    __m256i *d = (__m256i *)dst;
    const __m256i *s = (const __m256i *)src;
    for (int k = 0; k < RELU_PIECE_BYTES / 32; k++)
        _mm256_stream_si256(d + k, _mm256_load_si256(s + k));
}

RELU_TARGET_AVX512 static inline void relu_stream_piece_avx512(void *dst, const void *src)
{
    __m512i *d = (__m512i *)dst;
    const __m512i *s = (const __m512i *)src;
    for (int k = 0; k < RELU_PIECE_BYTES / 64; k++)
        _mm512_stream_si512(d + k, _mm512_load_si512(s + k));
}
#  endif
/* Order the streamed stores before anything the caller does next. */
static inline void relu_stream_fence(void) { _mm_sfence(); }

/* Asks for the lines of the piece `ahead` bytes past x, for reading, as
 * little into the caches as the CPU allows (prefetchnta): the stream kernels'
 * inputs, where relu_stream_ahead (below) says it won.  A prefetch never
 * faults, past the end of x included. */
static inline void relu_stream_prefetch(const void *x, ptrdiff_t ahead)
{
    for (int k = 0; k < RELU_PIECE_BYTES; k += 64)
        _mm_prefetch((const char *)((uintptr_t)x + (uintptr_t)(ahead + k)), _MM_HINT_NTA);
}
#endif

/* ---- a strided y, a window at a time (AVX2, AVX-512) ----------------------
 * Whether the windows kernels (_loops.h.in) take a stride of sy bytes:
 * 2 or more elements of 1 to 8 bytes, either sign, that divide 32 bytes
 * (so every window, of 32 or 64 bytes, holds y's elements at the same
 * lanes). */
static inline int relu_window_stride(ptrdiff_t sy, ptrdiff_t size)
{
    const ptrdiff_t bytes = sy < 0 ? -sy : sy;
    return size <= 8 && bytes >= 2 * size && 32 % bytes == 0;
}

/* The lanes of a W-element window that hold elements at a stride of k. */
static inline uint64_t relu_window_lanes(int w, ptrdiff_t k)
{
    uint64_t lanes = 0;
    for (int l = 0; l < w; l += (int)k)
        lanes |= (uint64_t)1 << l;
    return lanes;
}

#if RELU_LEVELS == 3
#  include <immintrin.h>
/* Asks for the line RELU_WINDOW_AHEAD bytes past dst, to be written: out of
 * cache a masked store that misses waits for its line, which the hardware
 * prefetchers, following the loads, do not fetch ahead of it (relu float32
 * x[::2] into y[::2] at 1e7: 1.18x np.abs without, Zen 5).  A prefetch
 * never faults, past the end of y included. */
#  define RELU_WINDOW_AHEAD 1024
static inline void relu_prefetch_window(const void *dst)
{
    __builtin_prefetch((const char *)dst + RELU_WINDOW_AHEAD, 1, 3);
}

/* Stores the lanes of the 64 bytes at src that `lanes` names to dst, and
 * nothing else: the bytes between them are neither read nor written (a
 * masked store), so another thread may own them. */
RELU_TARGET_AVX512 static inline void
relu_window_store_avx512(void *dst, const void *src, uint64_t lanes, size_t size)
{
    const __m512i v = _mm512_loadu_si512(src);
    switch (size) {
    case 1: _mm512_mask_storeu_epi8(dst, (__mmask64)lanes, v); break;
    case 2: _mm512_mask_storeu_epi16(dst, (__mmask32)lanes, v); break;
    case 4: _mm512_mask_storeu_epi32(dst, (__mmask16)lanes, v); break;
    default: _mm512_mask_storeu_epi64(dst, (__mmask8)lanes, v); break;
    }
}

#endif

/* ---- the store plan -------------------------------------------------------
 * relu_stream_from[team - 1]: output bytes from which a contiguous run that
 * overlaps no input streams its stores, when it runs on a team of that
 * many threads (1: the calling thread alone).  Each is RELU_UNPLANNED until
 * the first call on that team size whose output reaches RELU_PLAN_FROM,
 * which measures it (relu_stream_plan, in _plan.c: plain against streaming
 * stores of the relu float32 kernel, at doubling sizes, on that many
 * threads); RELU_NEVER where streaming never won, or this build has no
 * streaming stores.  Per team size, because the answer moves with it: on a
 * Zen 3 with 2 vCPUs, one thread streams from 4 MiB, while with 2 threads
 * at 8 MiB plain stores win (283 against 408 us, float32) and streaming
 * only from 16 MiB: two threads draw twice the cache bandwidth but share one
 * memory bus.  Teams of RELU_TEAM_PLANS threads or more share the last plan.
 * Below RELU_PLAN_FROM the input and output fit in the caches of any x86-64
 * CPU, where streaming cannot win, so no call that small ever pays for the
 * measurement.  Python may set every plan instead (RELU_UFUNC_STREAM_FROM,
 * or _ufuncs._set_stream_from in tests).  */
#define RELU_UNPLANNED ((ptrdiff_t)-1)
#define RELU_NEVER PTRDIFF_MAX
#define RELU_PLAN_FROM ((ptrdiff_t)1 << 20)
#define RELU_PLAN_SIZES 7                         /* 1, 2, 4, ..., 64 MiB */
#define RELU_TEAM_PLANS 64

RELU_HIDDEN extern ptrdiff_t relu_stream_from[RELU_TEAM_PLANS];

static inline int relu_plan_slot(int team)
{
    return team <= 1 ? 0 : team >= RELU_TEAM_PLANS ? RELU_TEAM_PLANS - 1 : team - 1;
}

/* The kernels the plan measures: the relu float32 plain and streaming
 * kernels of each build (the module hands them over at import). */
typedef void (*relu_plan_kernel)(const float *x, float *y, ptrdiff_t n);
RELU_HIDDEN void relu_plan_kernels(const relu_plan_kernel *plain, const relu_plan_kernel *stream);
/* Measure the plan of `team` (once; a call made while another thread
 * measures gets RELU_NEVER) and return it. */
RELU_HIDDEN ptrdiff_t relu_stream_plan(int team);
/* Set every team size's plan to `from`; RELU_UNPLANNED: measure again. */
RELU_HIDDEN void relu_set_plans(ptrdiff_t from);
/* What the plan of `team` measured at size k (1 MiB << k): median seconds
 * per pass with plain or streamed stores, 0 where it did not measure. */
RELU_HIDDEN double relu_plan_seconds(int team, int k, int streamed);

/* ---- how far ahead the stream kernels prefetch ---------------------------
 * relu_stream_ahead: bytes ahead of each piece at which a stream kernel
 * asks for its inputs' lines (relu_stream_prefetch); 0: it does not.  Out of
 * cache one core streaming x into y can wait on its loads, where the
 * hardware prefetchers do not run far enough ahead of them: relu_grad
 * float32 at 1e8 on a Zen 1 took 1.21x np.copyto without, 0.86x with the
 * lines asked for 1 KiB ahead; 2 KiB ahead was slower than 1 there, and a
 * Zen 4 had lost with prefetched pieces, so no distance is fixed here.
 * relu_ahead_plan measures the stream kernel (relu float32) with each of
 * RELU_AHEADS distances, none included, at 64 MiB on the calling thread,
 * once per process: in the first store plan, or at the first streamed call
 * where the plan was set instead.  RELU_UNPLANNED until then (no prefetch).
 * A kernel with two input arrays asks for each at half the distance: what
 * the one-input kernel measured is the bytes in flight a core keeps up
 * (relu_backward float32 at 1e8 on the Zen 1, both inputs 1 KiB ahead:
 * 0.80x np.add; 512 bytes each: 0.68x).  Python may set it
 * (_ufuncs._set_stream_ahead, for tests).  */
#define RELU_AHEADS 4                 /* distances tried: relu_aheads, _plan.c */
RELU_HIDDEN extern ptrdiff_t relu_stream_ahead;
/* Measure relu_stream_ahead, unless another thread measures now. */
RELU_HIDDEN void relu_ahead_plan(void);
/* Set it; RELU_UNPLANNED: measure again. */
RELU_HIDDEN void relu_set_ahead(ptrdiff_t ahead);
/* The distance tried k-th and its median seconds per pass (0: not measured). */
RELU_HIDDEN ptrdiff_t relu_ahead_tried(int k);
RELU_HIDDEN double relu_ahead_seconds(int k);

/* Whether a call writing `bytes` on `team` threads streams (measuring the
 * plan of that team size first, where it is not yet, and the prefetch
 * distance where a call streams before either was measured). */
static inline int relu_should_stream(ptrdiff_t bytes, int team)
{
#if RELU_STREAM
    ptrdiff_t from = __atomic_load_n(&relu_stream_from[relu_plan_slot(team)], __ATOMIC_RELAXED);
    if (from == RELU_UNPLANNED) {
        if (bytes < RELU_PLAN_FROM)
            return 0;
        from = relu_stream_plan(team);
    }
    if (bytes < from)
        return 0;
    if (__atomic_load_n(&relu_stream_ahead, __ATOMIC_RELAXED) == RELU_UNPLANNED)
        relu_ahead_plan();
    return 1;
#else
    (void)bytes;
    (void)team;
    return 0;
#endif
}

/* Whether the output [y, y + bytes) shares no byte with the input at a. */
static inline int relu_disjoint(const void *a, const void *y, ptrdiff_t bytes)
{
    const char *p = (const char *)a, *q = (const char *)y;
    return p + bytes <= q || q + bytes <= p;
}


#endif /* RELU_LOOPS_COMMON_H */
