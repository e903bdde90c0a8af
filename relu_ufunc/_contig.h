/*
 * Contiguous kernels for the Cython ufunc loops, as C macros.
 *
 * They live in C rather than in the .pyx because they carry a function
 * attribute that Cython cannot spell: target_clones builds the loop for AVX2
 * and for the baseline and picks one at load time (as NumPy's own loops
 * dispatch).  This matters: x86-64's baseline SSE2 has no 64-bit integer
 * compare, so without AVX2 the float64 loops are scalar and branchy.
 * The arithmetic is the formula F from cuda/relu_ufunc.h.
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

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(RELU_NO_CLONES) && \
    ((!defined(__clang__) && __GNUC__ >= 6) || (defined(__clang__) && __clang_major__ >= 14))
#  define RELU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#  define RELU_CLONES
#endif

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

/* Non-temporal stores for outputs larger than the cache.  A plain store
 * first reads the line it writes (write-allocate): out of cache a loop then
 * moves 3 bytes per byte written, and at n = 1e8 relu(x, out=y) took 1.6x
 * np.copyto, whose memcpy streams.  Stores go round the cache only when the
 * output does not overlap an input (in place, the line has just been read,
 * so a plain store is best) and is larger than 3/4 of the last-level cache,
 * glibc's own threshold for memcpy.  Each block is computed into an L1
 * buffer by the vectorized formula, then streamed out 16 bytes at a time.  */
#define RELU_BLOCK_BYTES 4096

#if RELU_STREAM
static ptrdiff_t relu_stream_threshold(void)
{
    static ptrdiff_t threshold = 0;      /* computed once; a race is benign */
    if (threshold == 0) {
        long l3 = -1;
#  ifdef _SC_LEVEL3_CACHE_SIZE
        l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#  endif
        threshold = l3 > 0 ? (ptrdiff_t)l3 / 4 * 3 : (ptrdiff_t)32 << 20;
        if (threshold < ((ptrdiff_t)8 << 20))
            threshold = (ptrdiff_t)8 << 20;
    }
    return threshold;
}

static inline int relu_apart(const void *a, const void *y, ptrdiff_t bytes)
{
    const char *p = (const char *)a, *q = (const char *)y;
    return p + bytes <= q || q + bytes <= p;
}

#  if defined(__GNUC__)
#    include <immintrin.h>
__attribute__((target("avx2")))
static void relu_stream_out_avx2(void *dst, const void *src, size_t bytes)
{
    __m256i *d = (__m256i *)dst;
    const __m256i *s = (const __m256i *)src;
    size_t k;
    for (k = 0; k < bytes / 32; k++)
        _mm256_stream_si256(d + k, _mm256_load_si256(s + k));
}
#  endif

/* 32-byte streaming stores where the CPU has AVX2 (41.5 ms vs 48 ms for a
 * 400 MB stream here; glibc's memcpy takes 37). */
static void relu_stream_out(void *dst, const void *src, size_t bytes)
{
    __m128i *d = (__m128i *)dst;
    const __m128i *s = (const __m128i *)src;
    size_t k;
#  if defined(__GNUC__)
    static int avx2 = -1;
    if (avx2 < 0)
        avx2 = __builtin_cpu_supports("avx2") != 0;
    if (avx2) {
        relu_stream_out_avx2(dst, src, bytes);
        return;
    }
#  endif
    for (k = 0; k < bytes / 16; k++)
        _mm_stream_si128(d + k, _mm_load_si128(s + k));
}

#  define RELU_STREAM_BLOCKS(T, i, n, y, EXPR_K)                              \
    do {                                                                      \
        enum { B = RELU_BLOCK_BYTES / sizeof(T) };                            \
        _Alignas(64) T buf[B];                                                \
        for (; (i) + B <= (n); (i) += B) {                                    \
            for (ptrdiff_t j = 0; j < B; j++) {                               \
                const ptrdiff_t k = (i) + j;                                  \
                buf[j] = (EXPR_K);                                            \
            }                                                                 \
            relu_stream_out((y) + (i), buf, sizeof buf);                      \
        }                                                                     \
        _mm_sfence();   /* order the streamed stores before anything later */ \
    } while (0)
#else
#  define RELU_STREAM_BLOCKS(T, i, n, y, EXPR_K) do { } while (0)
static inline int relu_apart(const void *a, const void *y, ptrdiff_t bytes)
{ (void)a; (void)y; (void)bytes; return 0; }
#endif

/* Opt-in threads (relu_ufunc.set_num_threads): a contiguous call with at
 * least RELU_THREAD_BYTES of output per thread is split into that many
 * chunks, on 64-byte boundaries, run by an OpenMP team.  Smaller calls, and
 * the default of one thread, never touch OpenMP.  The setting is one int for
 * the whole process.                                                       */
#define RELU_THREAD_BYTES ((ptrdiff_t)128 << 10)
static int relu_num_threads = 1;

static inline int relu_team_size(ptrdiff_t bytes)
{
    ptrdiff_t k = bytes / RELU_THREAD_BYTES;
    if (relu_num_threads <= 1 || k <= 1)
        return 1;
    return k < relu_num_threads ? (int)k : relu_num_threads;
}

/* Start of chunk t of k, on a 64-byte boundary (every itemsize divides 64). */
static inline ptrdiff_t relu_split(ptrdiff_t n, size_t size, int k, int t)
{
    ptrdiff_t per_line = (ptrdiff_t)(64 / size), lo;
    if (t >= k)
        return n;
    lo = (ptrdiff_t)((double)n * t / k) / per_line * per_line;
    return lo < n ? lo : n;
}

#ifdef _OPENMP
#  define RELU_OMP_FOR _Pragma("omp parallel for num_threads(k) schedule(static)")
#else
#  define RELU_OMP_FOR
#endif

/* Run CALL (which uses lo and hi) over [0, n), on a team when it pays. */
#define RELU_PARALLEL(n, size, CALL)                                          \
    do {                                                                      \
        int k = relu_team_size((n) * (ptrdiff_t)(size));                      \
        if (k <= 1) {                                                         \
            ptrdiff_t lo = 0, hi = (n);                                       \
            CALL;                                                             \
        } else {                                                              \
            int t;                                                            \
            RELU_OMP_FOR                                                      \
            for (t = 0; t < k; t++) {                                         \
                ptrdiff_t lo = relu_split((n), (size), k, t);                 \
                ptrdiff_t hi = relu_split((n), (size), k, t + 1);             \
                CALL;                                                         \
            }                                                                 \
        }                                                                     \
    } while (0)

#if RELU_STREAM
#  define RELU_STREAM_WORTH(bytes) ((bytes) >= relu_stream_threshold())
#else
#  define RELU_STREAM_WORTH(bytes) 0
#endif

/* One kernel: y[k] = EXPR_K for k in [0, n), where EXPR_K reads the
 * parameters (the variadic part) at index k.  Aligns y, streams big outputs. */
#define RELU_DEFINE_RUN(RUN, T, EXPR_K, ...)                                  \
    RELU_CLONES static void RUN(__VA_ARGS__, T *y, ptrdiff_t n, int stream)   \
    {                                                                         \
        ptrdiff_t i = 0, head = relu_head(y, sizeof(T), n);                   \
        for (; i < head; i++) { const ptrdiff_t k = i; y[i] = (EXPR_K); }     \
        if (stream && ((uintptr_t)(y + i) & 63u) == 0)                        \
            RELU_STREAM_BLOCKS(T, i, n, y, EXPR_K);                           \
        for (; i < n; i++) { const ptrdiff_t k = i; y[i] = (EXPR_K); }        \
    }

/* Strided data goes through the same vectorized kernel in blocks: gather
 * into L1 buffers, compute, scatter.  A scalar loop over the formulas would
 * branch, and mispredict on half-negative data (about 3.5 ns per element). */
#define RELU_GATHER 256

#define RELU_CONTIG_1(NAME, T, F)                                             \
    RELU_DEFINE_RUN(NAME##_run, T, (F(x0[k])), const T *x0)                   \
    static void NAME(const T *x0, T *y, ptrdiff_t n)                          \
    {                                                                         \
        ptrdiff_t bytes = n * (ptrdiff_t)sizeof(T);                           \
        int stream = RELU_STREAM_WORTH(bytes) && relu_apart(x0, y, bytes);    \
        RELU_PARALLEL(n, sizeof(T), NAME##_run(x0 + lo, y + lo, hi - lo, stream)); \
    }                                                                         \
    static void NAME##_strided(const char *xp0, ptrdiff_t s0, char *yp,       \
                               ptrdiff_t sy, ptrdiff_t n)                     \
    {                                                                         \
        T xb0[RELU_GATHER], yb[RELU_GATHER];                                  \
        ptrdiff_t i, j, m;                                                    \
        for (i = 0; i < n; i += m) {                                          \
            m = n - i < RELU_GATHER ? n - i : RELU_GATHER;                    \
            for (j = 0; j < m; j++) xb0[j] = *(const T *)(xp0 + (i + j) * s0); \
            NAME##_run(xb0, yb, m, 0);                                        \
            for (j = 0; j < m; j++) *(T *)(yp + (i + j) * sy) = yb[j];        \
        }                                                                     \
    }

/* Binary: either input may be one value repeated (stride 0), as a scalar
 * alpha for leaky_relu is; that case keeps a contiguous kernel of its own. */
#define RELU_CONTIG_2(NAME, T, F)                                             \
    RELU_DEFINE_RUN(NAME##_run, T, (F(x0[k], x1[k])), const T *x0, const T *x1) \
    RELU_DEFINE_RUN(NAME##_run_v1, T, (F(x0[k], v1)), const T *x0, T v1)      \
    RELU_DEFINE_RUN(NAME##_run_v0, T, (F(v0, x1[k])), T v0, const T *x1)      \
    /* one0/one1: that input is a single value (stride 0), not both */        \
    static void NAME(const T *x0, const T *x1, T *y, ptrdiff_t n,             \
                     int one0, int one1)                                      \
    {                                                                         \
        ptrdiff_t bytes = n * (ptrdiff_t)sizeof(T);                           \
        int worth = RELU_STREAM_WORTH(bytes);                                 \
        if (one1) {                                                           \
            T v1 = *x1;                                                       \
            int stream = worth && relu_apart(x0, y, bytes);                   \
            RELU_PARALLEL(n, sizeof(T), NAME##_run_v1(x0 + lo, v1, y + lo, hi - lo, stream)); \
        } else if (one0) {                                                    \
            T v0 = *x0;                                                       \
            int stream = worth && relu_apart(x1, y, bytes);                   \
            RELU_PARALLEL(n, sizeof(T), NAME##_run_v0(v0, x1 + lo, y + lo, hi - lo, stream)); \
        } else {                                                              \
            int stream = worth && relu_apart(x0, y, bytes) && relu_apart(x1, y, bytes); \
            RELU_PARALLEL(n, sizeof(T), NAME##_run(x0 + lo, x1 + lo, y + lo, hi - lo, stream)); \
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
            NAME##_run(xb0, xb1, yb, m, 0);                                   \
            for (j = 0; j < m; j++) *(T *)(yp + (i + j) * sy) = yb[j];        \
        }                                                                     \
    }

#endif /* RELU_CONTIG_H */
