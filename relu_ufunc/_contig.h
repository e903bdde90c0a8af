/*
 * Contiguous kernels for the Cython ufunc loops, as C macros.
 *
 * They live in C rather than in the .pyx because they carry a function
 * attribute that Cython cannot spell: each kernel is built for AVX-512, for
 * AVX2 and for the baseline, and relu_level picks one per call (as NumPy's
 * own loops dispatch).  The arithmetic is the formula F from
 * cuda/relu_ufunc.h.
 */
#ifndef RELU_CONTIG_H
#define RELU_CONTIG_H

#include <stddef.h>
#include <stdint.h>
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(RELU_NO_STREAM)
#  include <emmintrin.h>        /* SSE2, baseline on x86-64: every clone has it */
#  include <unistd.h>
#  define RELU_STREAM 1
#else
#  define RELU_STREAM 0
#endif

/* CPU levels.  Every kernel is built three times, and relu_level (set
 * once at import, from what this CPU and OS support) says which build runs:
 *   2  AVX-512 (F, BW, CD, DQ, VL),  1  AVX2,  0  the x86-64 baseline, SSE2.
 * AVX2 matters for float64: SSE2 has no 64-bit integer compare, so the
 * baseline float64 loops are scalar and branchy.  AVX-512 and unrolling by
 * four close the in-cache gap to memcpy.  Measured here (Xeon with AVX-512,
 * float32, C harness, time / memcpy): n = 1e3: AVX2 3.1, AVX2 unrolled 1.7,
 * AVX-512 unrolled 1.0; n = 1e4 .. 1e5: AVX2 1.3, AVX2 unrolled 1.03-1.11,
 * AVX-512 unrolled 1.01.  Without unrolling GCC's loop is one vector per
 * iteration, and in L1 its loop overhead is what costs.
 * This is our own dispatch rather than GCC's target_clones so that the
 * tests can run every build on a machine that has the highest (the private
 * _ufuncs._set_cpu_level), as NumPy's NPY_DISABLE_CPU_FEATURES lets its
 * tests do.  Other compilers and CPUs get one portable build, level 0.  */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(RELU_NO_CLONES) && \
    ((!defined(__clang__) && __GNUC__ >= 6) || (defined(__clang__) && __clang_major__ >= 9))
#  define RELU_LEVELS 3
#  define RELU_TARGET_1 __attribute__((target("avx2")))
#  define RELU_TARGET_2 __attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl")))
#else
#  define RELU_LEVELS 1
#endif
#if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 8)
#  define RELU_UNROLL _Pragma("GCC unroll 4")
#else
#  define RELU_UNROLL
#endif

static int relu_level = 0;

/* The highest level this CPU (and its OS, which must save the vector
 * registers: libgcc checks that too) supports. */
static int relu_max_level(void)
{
#if RELU_LEVELS == 3
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2"))
        return 1;
#endif
    return 0;
}

/* How many elements to do one by one before y is 64-byte aligned.  Vector
 * stores that straddle cache lines cost ~40% at n = 1e5 (float32, AVX2:
 * 14.4 us vs 10.5 us with NumPy's usual 16-byte alignment); memcpy avoids
 * it the same way, by aligning its destination first. */
static inline ptrdiff_t relu_head(const void *y, size_t size, ptrdiff_t n)
{
    uintptr_t misalign = (uintptr_t)y & 63u;
    ptrdiff_t head;
    if (misalign == 0 || misalign % size != 0)
        return 0;
    head = (ptrdiff_t)((64u - misalign) / size);
    return head < n ? head : n;
}

/* Long runs are done in glibc's large_memcpy_4x order: four 4 KiB pages at
 * a time, 256 bytes of each in turn, each stream prefetched 512 bytes
 * ahead.  Four streams keep more memory pages busy than one.  Measured here
 * (2-vCPU Xeon VM, float32, 400 MB): streaming relu 41 ms against memcpy's
 * 43 ms, where streaming 4 KiB blocks took 54 ms; in place 36 ms against
 * 52 ms in one sequential pass.  Only in-place and streamed runs take this
 * order (see relu_mode); the rest, and what is left after the last group of
 * four pages, is one plain loop.
 *
 * Non-temporal stores for outputs larger than the cache.  A plain store
 * first reads the line it writes (write-allocate): out of cache, a loop then
 * moves 3 bytes per byte written, and at n = 1e8 relu(x, out=y) took 1.6x
 * np.copyto, whose memcpy streams.  Stores go round the cache only when the
 * output does not overlap an input (in place, the line has just been read,
 * so a plain store is best) and is larger than 3/4 of this CPU's share of
 * the last-level cache (L3 / online CPUs), as glibc decides for memcpy, so
 * that np.copyto and relu make the same choice.  Each 256-byte piece is
 * computed by the vectorized formula into an L1 buffer, then streamed out
 * (32-byte stores from level 1 up, else 16-byte).                  */
#define RELU_PAGE_BYTES 4096
#define RELU_PIECE_BYTES 256

#if defined(__GNUC__)
#  define RELU_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#  define RELU_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
#else
#  define RELU_PREFETCH(p) ((void)(p))
#  define RELU_PREFETCH_W(p) ((void)(p))
#endif

/* Compute y[k] = EXPR_K for each 256-byte piece (starting at element c0,
 * stored by STORE) in page order, over whole groups of four pages from i;
 * PREFETCH_K prefetches the inputs at element k.  Leaves i at the first
 * element not done. */
#define RELU_PAGE_ORDER(T, i, n, y, EXPR_K, PREFETCH_K, STORE)                \
    do {                                                                      \
        enum { P = RELU_PAGE_BYTES / sizeof(T) };                             \
        for (; (i) + 4 * P <= (n); (i) += 4 * P)                              \
            for (ptrdiff_t j = 0; j < P; j += RELU_PIECE_BYTES / sizeof(T))   \
                for (int p = 0; p < 4; p++) {                                 \
                    const ptrdiff_t c0 = (i) + p * P + j;                     \
                    { const ptrdiff_t k = c0 + 512 / sizeof(T); PREFETCH_K; } \
                    STORE(T, c0, y, EXPR_K);                                  \
                }                                                             \
    } while (0)

#if RELU_STREAM
static ptrdiff_t relu_stream_threshold = 0;     /* 0: not yet computed */

static ptrdiff_t relu_get_stream_threshold(void)
{
    if (relu_stream_threshold == 0) {   /* computed once; a race is benign */
        long l3 = -1, cpus = 1;
        ptrdiff_t t;
#  ifdef _SC_LEVEL3_CACHE_SIZE
        l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#  endif
#  ifdef _SC_NPROCESSORS_ONLN
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
#  endif
        if (cpus < 1)
            cpus = 1;
        t = l3 > 0 ? (ptrdiff_t)(l3 / cpus) / 4 * 3 : (ptrdiff_t)32 << 20;
        relu_stream_threshold = t < ((ptrdiff_t)4 << 20) ? (ptrdiff_t)4 << 20 : t;
    }
    return relu_stream_threshold;
}

static inline int relu_apart(const void *a, const void *y, ptrdiff_t bytes)
{
    const char *p = (const char *)a, *q = (const char *)y;
    return p + bytes <= q || q + bytes <= p;
}

#  if RELU_LEVELS == 3
#    include <immintrin.h>
RELU_TARGET_1
static inline void relu_stream_piece_avx2(void *dst, const void *src)
{
    __m256i *d = (__m256i *)dst;
    const __m256i *s = (const __m256i *)src;
    for (int k = 0; k < RELU_PIECE_BYTES / 32; k++)
        _mm256_stream_si256(d + k, _mm256_load_si256(s + k));
}
#  endif

/* One 256-byte piece from an aligned L1 buffer to dst (64-byte aligned). */
static inline void relu_stream_piece(void *dst, const void *src)
{
    __m128i *d = (__m128i *)dst;
    const __m128i *s = (const __m128i *)src;
#  if RELU_LEVELS == 3
    if (relu_level >= 1) {
        relu_stream_piece_avx2(dst, src);
        return;
    }
#  endif
    for (int k = 0; k < RELU_PIECE_BYTES / 16; k++)
        _mm_stream_si128(d + k, _mm_load_si128(s + k));
}

#  define RELU_STREAM_RUN(T, i, n, y, EXPR_K, PREFETCH_K)                     \
    do {                                                                      \
        RELU_PAGE_ORDER(T, i, n, y, EXPR_K, PREFETCH_K, RELU_STREAM_PIECE);   \
        _mm_sfence();   /* order the streamed stores before anything later */ \
    } while (0)
#  define RELU_STREAM_PIECE(T, c0, y, EXPR_K)                                 \
    do {                                                                      \
        _Alignas(64) T buf[RELU_PIECE_BYTES / sizeof(T)];                     \
        for (ptrdiff_t q = 0; q < (ptrdiff_t)(RELU_PIECE_BYTES / sizeof(T)); q++) { \
            const ptrdiff_t k = (c0) + q;                                     \
            buf[q] = (EXPR_K);                                                \
        }                                                                     \
        relu_stream_piece(y + (c0), buf);                                     \
    } while (0)
#  define RELU_STREAM_WORTH(bytes) ((bytes) >= relu_get_stream_threshold())
#else
#  define RELU_STREAM_RUN(T, i, n, y, EXPR_K, PREFETCH_K) do { } while (0)
#  define RELU_STREAM_WORTH(bytes) 0
static ptrdiff_t relu_stream_threshold = 0;
static inline int relu_apart(const void *a, const void *y, ptrdiff_t bytes)
{ (void)a; (void)y; (void)bytes; return 0; }
#endif

/* Opt-in threads: RELU_PARALLEL and what it needs (relu_ufunc.set_num_threads,
 * threads(), threadpoolctl, fork) are in _threads.h. */
#include "_threads.h"

/* How a run stores: one plain pass; in page order (in place, where it
 * measured 0.80-0.90x a sequential pass from 40 KB up, float32 and float64;
 * out of place in cache it measured 5-10% slower, so only in place); or in
 * page order with streaming stores (big outputs that overlap no input). */
enum { RELU_SEQUENTIAL = 0, RELU_PAGES = 1, RELU_STREAMED = 2 };

static inline int relu_mode(int stream, int in_place)
{
    return stream ? RELU_STREAMED : in_place ? RELU_PAGES : RELU_SEQUENTIAL;
}

/* A sequential run out of L1 goes in 256-byte pieces, each prefetching
 * its inputs and (for writing) its output 1 KiB ahead, every line.  The
 * hardware prefetchers alone leave the loop waiting on its loads and on the
 * reads its stores start (write-allocate), where memcpy's rep movsb writes
 * whole lines without that read.  Measured here (float64, AVX-512, C
 * harness, time / memcpy, three runs): n = 1e5 (L2) 1.00/0.94/1.04 against
 * 1.14/1.07/1.14 without; n = 1e7 0.87/0.70/0.88 against 1.06/0.82/1.04;
 * from 3e4 to 1e6 no worse.  In L1 the prefetches would only cost. */
#define RELU_AHEAD 1024
#define RELU_PREFETCHED_FROM ((ptrdiff_t)128 << 10)    /* output bytes */
#define RELU_PREFETCHED_PIECES(T, i, n, y, EXPR_K, PREFETCH_K)                \
    do {                                                                      \
        enum { Q = RELU_PIECE_BYTES / sizeof(T) };                            \
        for (; (i) + Q <= (n); (i) += Q) {                                    \
            for (int l = 0; l < RELU_PIECE_BYTES; l += 64) {                  \
                const ptrdiff_t k = (i) + (RELU_AHEAD + l) / (ptrdiff_t)sizeof(T); \
                PREFETCH_K;                                                   \
                RELU_PREFETCH_W(y + k);                                       \
            }                                                                 \
            RELU_PLAIN_PIECE(T, (i), y, EXPR_K);                              \
        }                                                                     \
    } while (0)

/* One kernel: y[k] = EXPR_K for k in [0, n), where EXPR_K reads the
 * parameters (the variadic part) at index k, and PREFETCH_K prefetches the
 * inputs it reads.  Aligns y, then stores as `mode` says. */
#define RELU_RUN_BODY(RUN, TARGET, T, EXPR_K, PREFETCH_K, ...)               \
    TARGET static void RUN(__VA_ARGS__, T *y, ptrdiff_t n, int mode)          \
    {                                                                         \
        ptrdiff_t i = 0, head = relu_head(y, sizeof(T), n);                   \
        for (; i < head; i++) { const ptrdiff_t k = i; y[i] = (EXPR_K); }     \
        if (mode != RELU_SEQUENTIAL && ((uintptr_t)(y + i) & 63u) == 0) {     \
            if (mode == RELU_STREAMED)                                        \
                RELU_STREAM_RUN(T, i, n, y, EXPR_K, PREFETCH_K);              \
            else                                                              \
                RELU_PAGE_ORDER(T, i, n, y, EXPR_K, PREFETCH_K, RELU_PLAIN_PIECE); \
        } else if (n * (ptrdiff_t)sizeof(T) >= RELU_PREFETCHED_FROM)          \
            RELU_PREFETCHED_PIECES(T, i, n, y, EXPR_K, PREFETCH_K);           \
        RELU_UNROLL                                                           \
        for (; i < n; i++) { const ptrdiff_t k = i; y[i] = (EXPR_K); }        \
    }
/* RUN is then a table of the builds, and RELU_CALL(RUN) the one to run. */
#if RELU_LEVELS == 3
#  define RELU_DEFINE_RUN(RUN, T, EXPR_K, PREFETCH_K, ...)                    \
    RELU_RUN_BODY(RUN##_0, , T, EXPR_K, PREFETCH_K, __VA_ARGS__)              \
    RELU_RUN_BODY(RUN##_1, RELU_TARGET_1, T, EXPR_K, PREFETCH_K, __VA_ARGS__) \
    RELU_RUN_BODY(RUN##_2, RELU_TARGET_2, T, EXPR_K, PREFETCH_K, __VA_ARGS__) \
    static __typeof__(RUN##_0) *const RUN[3] = {RUN##_0, RUN##_1, RUN##_2};
#  define RELU_CALL(RUN) (RUN[relu_level])
#else
#  define RELU_DEFINE_RUN(RUN, T, EXPR_K, PREFETCH_K, ...)                    \
    RELU_RUN_BODY(RUN, , T, EXPR_K, PREFETCH_K, __VA_ARGS__)
#  define RELU_CALL(RUN) (RUN)
#endif
#define RELU_PLAIN_PIECE(T, c0, y, EXPR_K)                                    \
    for (ptrdiff_t q = 0; q < (ptrdiff_t)(RELU_PIECE_BYTES / sizeof(T)); q++) { \
        const ptrdiff_t k = (c0) + q;                                         \
        y[k] = (EXPR_K);                                                      \
    }

/* Strided data goes through the same vectorized kernel in blocks: gather
 * into L1 buffers, compute, scatter.  A scalar loop over the formulas would
 * branch, and mispredict on half-negative data (about 3.5 ns per element). */
#define RELU_GATHER 256

#define RELU_CONTIG_1(NAME, T, F)                                             \
    RELU_DEFINE_RUN(NAME##_run, T, (F(x0[k])), RELU_PREFETCH(x0 + k), const T *x0) \
    static void NAME(const T *x0, T *y, ptrdiff_t n)                          \
    {                                                                         \
        ptrdiff_t bytes = n * (ptrdiff_t)sizeof(T);                           \
        int mode = relu_mode(RELU_STREAM_WORTH(bytes) && relu_apart(x0, y, bytes), \
                             x0 == y);                                        \
        RELU_PARALLEL(n, sizeof(T), RELU_CALL(NAME##_run)(x0 + lo, y + lo, hi - lo, mode)); \
    }                                                                         \
    static void NAME##_strided(const char *xp0, ptrdiff_t s0, char *yp,       \
                               ptrdiff_t sy, ptrdiff_t n)                     \
    {                                                                         \
        T xb0[RELU_GATHER], yb[RELU_GATHER];                                  \
        ptrdiff_t i, j, m;                                                    \
        for (i = 0; i < n; i += m) {                                          \
            m = n - i < RELU_GATHER ? n - i : RELU_GATHER;                    \
            for (j = 0; j < m; j++) xb0[j] = *(const T *)(xp0 + (i + j) * s0); \
            RELU_CALL(NAME##_run)(xb0, yb, m, RELU_SEQUENTIAL);               \
            for (j = 0; j < m; j++) *(T *)(yp + (i + j) * sy) = yb[j];        \
        }                                                                     \
    }

/* Binary: either input may be one value repeated (stride 0), as a scalar
 * alpha for leaky_relu is; that case keeps a contiguous kernel of its own. */
#define RELU_CONTIG_2(NAME, T, F)                                             \
    RELU_DEFINE_RUN(NAME##_run, T, (F(x0[k], x1[k])),                         \
                    (RELU_PREFETCH(x0 + k), RELU_PREFETCH(x1 + k)),           \
                    const T *x0, const T *x1)                                 \
    RELU_DEFINE_RUN(NAME##_run_v1, T, (F(x0[k], v1)), RELU_PREFETCH(x0 + k),  \
                    const T *x0, T v1)                                        \
    RELU_DEFINE_RUN(NAME##_run_v0, T, (F(v0, x1[k])), RELU_PREFETCH(x1 + k),  \
                    T v0, const T *x1)                                        \
    /* one0/one1: that input is a single value (stride 0), not both */        \
    static void NAME(const T *x0, const T *x1, T *y, ptrdiff_t n,             \
                     int one0, int one1)                                      \
    {                                                                         \
        ptrdiff_t bytes = n * (ptrdiff_t)sizeof(T);                           \
        int worth = RELU_STREAM_WORTH(bytes);                                 \
        if (one1) {                                                           \
            T v1 = *x1;                                                       \
            int mode = relu_mode(worth && relu_apart(x0, y, bytes), x0 == y); \
            RELU_PARALLEL(n, sizeof(T), RELU_CALL(NAME##_run_v1)(x0 + lo, v1, y + lo, hi - lo, mode)); \
        } else if (one0) {                                                    \
            T v0 = *x0;                                                       \
            int mode = relu_mode(worth && relu_apart(x1, y, bytes), x1 == y); \
            RELU_PARALLEL(n, sizeof(T), RELU_CALL(NAME##_run_v0)(v0, x1 + lo, y + lo, hi - lo, mode)); \
        } else {                                                              \
            int mode = relu_mode(worth && relu_apart(x0, y, bytes)            \
                                 && relu_apart(x1, y, bytes), x0 == y || x1 == y); \
            RELU_PARALLEL(n, sizeof(T), RELU_CALL(NAME##_run)(x0 + lo, x1 + lo, y + lo, hi - lo, mode)); \
        }                                                                     \
    }                                                                         \
    static void NAME##_strided(const char *xp0, ptrdiff_t s0, const char *xp1, \
                               ptrdiff_t s1, char *yp, ptrdiff_t sy,          \
                               ptrdiff_t n)                                   \
    {                                                                         \
        T xb0[RELU_GATHER], xb1[RELU_GATHER], yb[RELU_GATHER];                \
        ptrdiff_t i, j, m;                                                    \
        for (i = 0; i < n; i += m) {                                          \
            m = n - i < RELU_GATHER ? n - i : RELU_GATHER;                    \
            for (j = 0; j < m; j++) {                                         \
                xb0[j] = *(const T *)(xp0 + (i + j) * s0);                    \
                xb1[j] = *(const T *)(xp1 + (i + j) * s1);                    \
            }                                                                 \
            RELU_CALL(NAME##_run)(xb0, xb1, yb, m, RELU_SEQUENTIAL);          \
            for (j = 0; j < m; j++) *(T *)(yp + (i + j) * sy) = yb[j];        \
        }                                                                     \
    }

#endif /* RELU_CONTIG_H */
