/*
 * The in-cache floor of an AVX2 CPU for the selecting functions on
 * bfloat16, which the ml_dtypes rows of docs/performance.md cite: what a
 * loop with relu_grad's vector work costs against a copy of the same bytes,
 * measured outside NumPy (no per-call overhead; 16-bit elements):
 *
 *   memcpy, and a plain AVX2 load/store loop (the copy's own floor);
 *   relu: one compare and an AND-NOT, 2 vector ops a vector (the kernel
 *         the ufunc runs);
 *   relu_grad without its NaN rule: a compare and an AND, 2 ops; not the
 *         contract (a NaN gives 1 or 0), only the cost of the rest;
 *   relu_grad, 5 ops: that and the NaN test as one signed compare of
 *         x | sign with -inf's bits, blended in (the fewest ops found);
 *   relu_grad, the header's formula as GCC vectorizes it (relu_grad_bf16
 *         of cuda/relu_ufunc.h: 6 ops, its NaN test an unsigned compare);
 *   and relu_backward(dy, x) of the header against an add of the same two
 *         arrays as integers (the anchor of benchmarks/ml_formats.py);
 *   then relu and relu_grad of the header on float32 and float64.
 *
 * On a CPU whose vector units are 128 bits wide (AMD Zen 1) each 256-bit op
 * is two, so relu_grad's work, not the memory, sets its speed in L1 and L2.
 *
 * Then the streamed floor, 1e8 float32 (400 MB, past every cache): memcpy
 * (glibc's non-temporal copy at this size), a plain AVX2 non-temporal copy
 * loop (benchmarks/ntcopy.c's), and relu and relu_grad of the header
 * computed a 256-byte piece at a time and streamed out, as the stream
 * kernels of relu_ufunc/_loops.h.in do (GCC keeps the piece in registers:
 * 8 loads, the formula, 8 vmovntdq), and relu_grad with x prefetched 1 KiB
 * ahead, as they do where the store plan measured that distance to win
 * (the Zen 1's).  Interleaved, medians of 11.
 *
 *     gcc -O3 -fno-trapping-math -o /tmp/avx2_floor benchmarks/avx2_floor.c && /tmp/avx2_floor
 *
 * `/tmp/avx2_floor --check` only checks that the 5-op kernel gives the
 * header's bits (tests/test_benchmarks.py runs it), which every timing run
 * checks first too.
 * (the extension's flags: relu_ufunc/_flags.py).  Medians of 15 timings,
 * each repeating the call for about 20 M elements.
 * x86-64 with AVX2 only.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cuda/relu_ufunc.h"
#include "harness.h"

typedef unsigned short T;
#define AVX2 __attribute__((target("avx2"), noinline))

__attribute__((noinline)) static void copy_memcpy(const T *x, T *y, long n) { memcpy(y, x, n * 2); }

AVX2 static void copy_vector(const T *x, T *y, long n)
{
    for (long i = 0; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_loadu_si256((const __m256i *)(x + i)));
}

AVX2 static void relu_vector(const T *x, T *y, long n)
{
    const __m256i last = _mm256_set1_epi16((short)0xff80);     /* bfloat16 -inf */
    for (long i = 0; i + 16 <= n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_andnot_si256(_mm256_cmpgt_epi16(last, v), v));
    }
}

AVX2 static void grad_no_nan(const T *x, T *y, long n)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi16(0x3f80);
    for (long i = 0; i + 16 <= n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_and_si256(_mm256_cmpgt_epi16(v, zero), one));
    }
}

AVX2 static void grad_5_ops(const T *x, T *y, long n)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi16(0x3f80);
    const __m256i sign = _mm256_set1_epi16((short)0x8000), ninf = _mm256_set1_epi16((short)0xff80);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i g = _mm256_and_si256(_mm256_cmpgt_epi16(v, zero), one);
        __m256i nan = _mm256_cmpgt_epi16(_mm256_or_si256(v, sign), ninf);
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_blendv_epi8(g, v, nan));
    }
    for (; i < n; i++)
        y[i] = relu_grad_bf16(x[i]);
}

AVX2 static void grad_header(const T *restrict x, T *restrict y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = relu_grad_bf16(x[i]);
}

AVX2 static void add_ints(const T *restrict dy, const T *restrict x, T *restrict y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = (T)(dy[i] + x[i]);
}

AVX2 static void backward_header(const T *restrict dy, const T *restrict x, T *restrict y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = relu_backward_bf16(dy[i], x[i]);
}

static void backward(void)
{
    for (long n = 10000; n <= 1000000; n *= 10) {
        T *x = aligned_alloc(64, n * 2), *dy = aligned_alloc(64, n * 2), *y = aligned_alloc(64, n * 2);
        long reps = 20000000 / n;
        double t[2];
        for (long i = 0; i < n; i++) { x[i] = (T)rand(); dy[i] = (T)rand(); }
        for (int f = 0; f < 2; f++)
            t[f] = SECONDS_PER_CALL(reps, (f == 0 ? add_ints : backward_header)(dy, x, y, n));
        printf("n=%7ld:  add (ints) %.3f us  relu_backward, header %.3f us (%.2fx)\n",
               n, t[0] * 1e6, t[1] * 1e6, t[1] / t[0]);
        free(x);
        free(dy);
        free(y);
    }
}

/* The same in-cache floor for float32 and float64: relu and relu_grad of
 * the header (GCC: relu 2 vector ops a vector, relu_grad 6, for both
 * widths) against memcpy of the same bytes. */
typedef void (*wide_fn)(const void *, void *, long);
__attribute__((noinline)) static void wide_memcpy4(const void *x, void *y, long n) { memcpy(y, x, n * 4); }
__attribute__((noinline)) static void wide_memcpy8(const void *x, void *y, long n) { memcpy(y, x, n * 8); }
AVX2 static void relu4(const void *restrict x, void *restrict y, long n)
{
    for (long i = 0; i < n; i++) ((float *)y)[i] = relu_f32(((const float *)x)[i]);
}
AVX2 static void grad4(const void *restrict x, void *restrict y, long n)
{
    for (long i = 0; i < n; i++) ((float *)y)[i] = relu_grad_f32(((const float *)x)[i]);
}
AVX2 static void relu8(const void *restrict x, void *restrict y, long n)
{
    for (long i = 0; i < n; i++) ((double *)y)[i] = relu_f64(((const double *)x)[i]);
}
AVX2 static void grad8(const void *restrict x, void *restrict y, long n)
{
    for (long i = 0; i < n; i++) ((double *)y)[i] = relu_grad_f64(((const double *)x)[i]);
}

static void wide(void)
{
    const wide_fn fns[2][3] = {{wide_memcpy4, relu4, grad4}, {wide_memcpy8, relu8, grad8}};
    for (int w = 0; w < 2; w++)
        for (long n = 10000; n <= 1000000; n *= 10) {
            const size_t size = w ? 8 : 4;
            char *x = aligned_alloc(64, n * size), *y = aligned_alloc(64, n * size);
            long reps = 20000000 / n;
            double t[3];
            for (long i = 0; i < n; i++) {
                const double v = (double)(rand() - RAND_MAX / 2);
                if (w) ((double *)x)[i] = v; else ((float *)x)[i] = (float)v;
            }
            for (int f = 0; f < 3; f++)
                t[f] = SECONDS_PER_CALL(reps, fns[w][f](x, y, n));
            printf("%s n=%7ld:  memcpy %.3f us  relu, header %.3f us (%.2fx)  relu_grad, header %.3f us (%.2fx)\n",
                   w ? "float64" : "float32", n, t[0] * 1e6, t[1] * 1e6, t[1] / t[0], t[2] * 1e6, t[2] / t[0]);
            free(x);
            free(y);
        }
}

AVX2 static void stream_copy(const float *x, float *y, long n)
{
    for (long i = 0; i + 16 <= n; i += 16) {
        _mm256_stream_ps(y + i, _mm256_loadu_ps(x + i));
        _mm256_stream_ps(y + i + 8, _mm256_loadu_ps(x + i + 8));
    }
    _mm_sfence();
}

#define PIECE 64    /* floats: RELU_PIECE_BYTES */
/* a piece of PIECE floats with the formula f, then streamed, x's lines
 * asked for `ahead` bytes ahead where it is not 0 (relu_stream_prefetch):
 * inlined into each caller, where f and ahead are constants */
__attribute__((target("avx2"), always_inline)) static inline void
stream_pieces(const float *x, float *y, long n, float (*f)(float), long ahead)
{
    for (long i = 0; i + PIECE <= n; i += PIECE) {
        _Alignas(64) float piece[PIECE];
        if (ahead)
            for (int k = 0; k < PIECE * 4; k += 64)
                _mm_prefetch((const char *)(x + i) + ahead + k, _MM_HINT_NTA);
        for (int q = 0; q < PIECE; q++)
            piece[q] = f(x[i + q]);
        for (int k = 0; k < PIECE / 8; k++)
            _mm256_stream_ps(y + i + 8 * k, _mm256_load_ps(piece + 8 * k));
    }
    _mm_sfence();
}

AVX2 static void stream_relu(const float *x, float *y, long n) { stream_pieces(x, y, n, relu_f32, 0); }

AVX2 static void stream_grad(const float *x, float *y, long n) { stream_pieces(x, y, n, relu_grad_f32, 0); }

AVX2 static void stream_grad_ahead(const float *x, float *y, long n)
{
    stream_pieces(x, y, n, relu_grad_f32, 1024);
}

__attribute__((noinline)) static void stream_memcpy(const float *x, float *y, long n)
{
    memcpy(y, x, n * 4);
}

static void streamed(void)
{
    typedef void (*fn)(const float *, float *, long);
    fn fns[] = {stream_memcpy, stream_copy, stream_relu, stream_grad, stream_grad_ahead};
    const char *names[] = {"memcpy", "AVX2 non-temporal copy", "relu streamed", "relu_grad streamed",
                           "relu_grad streamed, prefetched 1 KiB ahead"};
    enum { F = sizeof fns / sizeof fns[0], R = 11 };
    const long n = 100000000;
    float *x = aligned_alloc(4096, n * 4), *y = aligned_alloc(4096, n * 4);
    double t[F][R], m[F];
    for (long i = 0; i < n; i++) { x[i] = (float)(rand() - RAND_MAX / 2); y[i] = 0.0f; }
    for (int r = 0; r < R; r++)
        for (int f = 0; f < F; f++) {
            int g = (f + r) % F;            /* a new order each round */
            double s = now();
            fns[g](x, y, n);
            t[g][r] = now() - s;
        }
    printf("streamed, n=%ld float32:", n);
    for (int f = 0; f < F; f++) {
        m[f] = median(t[f], R);
        printf("  %s %.1f ms (%.2fx)", names[f], m[f] * 1e3, m[f] / m[0]);
    }
    printf("\n");
    free(x);
    free(y);
}

int main(int argc, char **argv)
{
    int check_only = argc > 1 && strcmp(argv[1], "--check") == 0;
    typedef void (*fn)(const T *, T *, long);
    fn fns[] = {copy_memcpy, copy_vector, relu_vector, grad_no_nan, grad_5_ops, grad_header};
    const char *names[] = {"memcpy", "AVX2 copy", "relu", "grad, no NaN", "grad, 5 ops", "grad, header"};
    enum { F = sizeof fns / sizeof fns[0] };
    for (long n = 1000; n <= 1000000; n *= 10) {
        T *x = aligned_alloc(64, n * 2), *y = aligned_alloc(64, n * 2), *check = aligned_alloc(64, n * 2);
        for (long i = 0; i < n; i++) x[i] = (T)rand();
        /* the 5-op kernel keeps the contract: the header's bits, for these x */
        grad_header(x, check, n);
        grad_5_ops(x, y, n);
        if (memcmp(check, y, n * 2) != 0) { printf("grad, 5 ops: not the header's bits\n"); return 1; }
        if (check_only) {
            printf("n=%7ld: grad, 5 ops: the header's bits\n", n);
            free(x);
            free(y);
            free(check);
            continue;
        }
        long reps = 20000000 / n;
        double t[F];
        for (int f = 0; f < F; f++)
            t[f] = SECONDS_PER_CALL(reps, fns[f](x, y, n));
        printf("n=%7ld:", n);
        for (int f = 0; f < F; f++) printf("  %s %.3f us (%.2fx)", names[f], t[f] * 1e6, t[f] / t[0]);
        printf("\n");
        free(x);
        free(y);
        free(check);
    }
    if (!check_only) {
        backward();
        wide();
        streamed();
    }
    return 0;
}
