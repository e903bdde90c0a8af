/*
 * The benchmarks' probe of a plain non-temporal copy: y = x, bytes at a
 * time, with the widest streaming stores this CPU has.  It is one of the
 * anchors L(n) of the target table from n = 1e7 up: what a loop that only
 * copies, and stores round the cache, takes on this machine.  Built by
 * benchmarks/probe.py with the package's own compiler flags
 * (relu_ufunc/_flags.py), and loaded with ctypes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

static void copy_sse2(const char *x, char *y, size_t n)
{
    for (size_t i = 0; i < n; i += 64)
        for (int k = 0; k < 4; k++)
            _mm_stream_si128((__m128i *)(y + i) + k, _mm_loadu_si128((const __m128i *)(x + i) + k));
}

__attribute__((target("avx2")))
static void copy_avx2(const char *x, char *y, size_t n)
{
    for (size_t i = 0; i < n; i += 64)
        for (int k = 0; k < 2; k++)
            _mm256_stream_si256((__m256i *)(y + i) + k,
                                _mm256_loadu_si256((const __m256i *)(x + i) + k));
}

__attribute__((target("avx512f")))
static void copy_avx512(const char *x, char *y, size_t n)
{
    for (size_t i = 0; i < n; i += 64)
        _mm512_stream_si512((__m512i *)(y + i), _mm512_loadu_si512((const void *)(x + i)));
}

/* The widest streaming store this CPU runs: 2 AVX-512, 1 AVX2, 0 SSE2. */
int nt_level(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 2;
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}

void nt_copy(const void *src, void *dst, size_t bytes, int level)
{
    const char *x = (const char *)src;
    char *y = (char *)dst;
    size_t head = (64 - ((uintptr_t)y & 63)) & 63, body;
    if (head > bytes)
        head = bytes;
    memcpy(y, x, head);                         /* align the stores */
    body = (bytes - head) & ~(size_t)63;
    if (level == 2)
        copy_avx512(x + head, y + head, body);
    else if (level == 1)
        copy_avx2(x + head, y + head, body);
    else
        copy_sse2(x + head, y + head, body);
    _mm_sfence();
    memcpy(y + head + body, x + head + body, bytes - head - body);
}
