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

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(RELU_NO_CLONES) && \
    ((!defined(__clang__) && __GNUC__ >= 6) || (defined(__clang__) && __clang_major__ >= 14))
#  define RELU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#  define RELU_CLONES
#endif

#define RELU_CONTIG_1(NAME, T, F)                                             \
    RELU_CLONES static void NAME(const T *x0, T *y, ptrdiff_t n)              \
    { for (ptrdiff_t i = 0; i < n; i++) y[i] = F(x0[i]); }

#define RELU_CONTIG_2(NAME, T, F)                                             \
    RELU_CLONES static void NAME(const T *x0, const T *x1, T *y, ptrdiff_t n) \
    { for (ptrdiff_t i = 0; i < n; i++) y[i] = F(x0[i], x1[i]); }

#endif /* RELU_CONTIG_H */
