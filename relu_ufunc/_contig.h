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

#define RELU_CONTIG_1(NAME, T, F)                                             \
    RELU_CLONES static void NAME(const T *x0, T *y, ptrdiff_t n)              \
    {                                                                         \
        ptrdiff_t i = 0, head = relu_head(y, sizeof(T), n);                   \
        for (; i < head; i++) y[i] = F(x0[i]);                                \
        for (; i < n; i++) y[i] = F(x0[i]);                                   \
    }

#define RELU_CONTIG_2(NAME, T, F)                                             \
    RELU_CLONES static void NAME(const T *x0, const T *x1, T *y, ptrdiff_t n) \
    {                                                                         \
        ptrdiff_t i = 0, head = relu_head(y, sizeof(T), n);                   \
        for (; i < head; i++) y[i] = F(x0[i], x1[i]);                         \
        for (; i < n; i++) y[i] = F(x0[i], x1[i]);                            \
    }

#endif /* RELU_CONTIG_H */
