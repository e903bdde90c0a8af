/*
 * Two floors of this CPU that the ml_dtypes rows of docs/performance.md
 * cite, measured outside NumPy (16-bit elements, as bfloat16):
 *
 *   copy: memcpy and `rep movsb` against a plain AVX-512 load/store loop
 *         and that loop with relu's one compare and zeroing move, from L1
 *         to memory.  At L2 sizes memcpy's string moves write lines
 *         without reading them first; any loop of vector stores (so any
 *         loop that computes) pays that read.
 *   select: relu_backward's shape at 1e7 (two inputs, one output, 20 MB
 *         each): np.add's integer add against a compare whose mask
 *         selects through a mask register (what GCC emits for
 *         `POS(x) ? dy : 0`) and through a vector mask and an AND.
 *
 *     gcc -O2 -o /tmp/store_floor benchmarks/store_floor.c && /tmp/store_floor
 *
 * Medians of 15 (copy) or 11 (select) timings.  x86-64 with AVX-512BW only.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

typedef unsigned short T;
#define AVX512 __attribute__((target("avx512f,avx512bw"), noinline))

__attribute__((noinline)) static void copy_memcpy(const T *x, T *y, long n) { memcpy(y, x, n * 2); }

__attribute__((noinline)) static void copy_movsb(const T *x, T *y, long n)
{
    size_t c = n * 2;
    void *d = y;
    const void *s = x;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(c) : : "memory");
}

AVX512 static void copy_vector(const T *x, T *y, long n)
{
    for (long i = 0; i + 32 <= n; i += 32)
        _mm512_storeu_si512(y + i, _mm512_loadu_si512(x + i));
}

AVX512 static void relu_vector(const T *x, T *y, long n)
{
    const __m512i last = _mm512_set1_epi16((short)0xff80);     /* bfloat16 -inf */
    for (long i = 0; i + 32 <= n; i += 32) {
        __m512i v = _mm512_loadu_si512(x + i);
        _mm512_storeu_si512(y + i, _mm512_maskz_mov_epi16(_mm512_cmpgt_epi16_mask(v, last), v));
    }
}

AVX512 static void add_ints(const T *dy, const T *x, T *y, long n)
{
    for (long i = 0; i + 32 <= n; i += 32)
        _mm512_storeu_si512(y + i, _mm512_add_epi16(_mm512_loadu_si512(x + i),
                                                    _mm512_loadu_si512(dy + i)));
}

AVX512 static void select_kmask(const T *dy, const T *x, T *y, long n)
{
    const __m512i zero = _mm512_setzero_si512();
    for (long i = 0; i + 32 <= n; i += 32) {
        __mmask32 pos = _mm512_cmpgt_epi16_mask(_mm512_loadu_si512(x + i), zero);
        _mm512_storeu_si512(y + i, _mm512_maskz_mov_epi16(pos, _mm512_loadu_si512(dy + i)));
    }
}

AVX512 static void select_vector(const T *dy, const T *x, T *y, long n)
{
    const __m512i zero = _mm512_setzero_si512();
    for (long i = 0; i + 32 <= n; i += 32) {
        __m512i pos = _mm512_movm_epi16(_mm512_cmpgt_epi16_mask(_mm512_loadu_si512(x + i), zero));
        _mm512_storeu_si512(y + i, _mm512_and_si512(pos, _mm512_loadu_si512(dy + i)));
    }
}

int main(void)
{
    typedef void (*copy_fn)(const T *, T *, long);
    copy_fn copies[] = {copy_memcpy, copy_movsb, copy_vector, relu_vector};
    const char *copy_names[] = {"memcpy", "rep movsb", "AVX-512 copy", "AVX-512 relu"};
    for (long n = 1000; n <= 1000000; n *= 10) {
        T *x = aligned_alloc(64, n * 2), *y = aligned_alloc(64, n * 2);
        for (long i = 0; i < n; i++) x[i] = (T)rand();
        long reps = n < 1000000 ? 20000000 / n : 20;
        double t[4];
        for (int f = 0; f < 4; f++)
            t[f] = SECONDS_PER_CALL(reps, copies[f](x, y, n));
        printf("copy   n=%7ld:", n);
        for (int f = 0; f < 4; f++) printf("  %s %.3f us (%.2fx)", copy_names[f], t[f] * 1e6, t[f] / t[0]);
        printf("\n");
        free(x);
        free(y);
    }
    typedef void (*select_fn)(const T *, const T *, T *, long);
    select_fn selects[] = {add_ints, select_kmask, select_vector};
    const char *select_names[] = {"add", "mask-register select", "vector-mask select"};
    long n = 10000000;
    T *x = aligned_alloc(64, n * 2), *dy = aligned_alloc(64, n * 2), *y = aligned_alloc(64, n * 2);
    for (long i = 0; i < n; i++) { x[i] = (T)rand(); dy[i] = (T)rand(); y[i] = 0; }
    printf("select n=%ld:", n);
    for (int f = 0; f < 3; f++) {
        double ts[11];
        for (int r = 0; r < 11; r++) {
            double s = now();
            selects[f](dy, x, y, n);
            ts[r] = now() - s;
        }
        printf("  %s %.3f ms", select_names[f], median(ts, 11) * 1e3);
    }
    printf("\n");
    return 0;
}
