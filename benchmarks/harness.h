/* What the C harnesses of benchmarks/ share: a clock, a median, and the
 * median time per call. */
#ifndef RELU_BENCH_HARNESS_H
#define RELU_BENCH_HARNESS_H

#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* sorts v in place */
static double median(double *v, int n)
{
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (v[b] < v[a]) { double q = v[a]; v[a] = v[b]; v[b] = q; }
    return v[n / 2];
}

/* Seconds per call of the statement `call`: the median of 15 timings, each
 * of `reps` calls (the empty asm after each call keeps the compiler from
 * merging or dropping calls whose output it sees no use of).  A GNU
 * statement expression, as the harnesses are GCC/clang only. */
#define SECONDS_PER_CALL(reps, call) __extension__ ({                         \
    double ts_[15];                                                           \
    for (int r_ = 0; r_ < 15; r_++) {                                         \
        const double s_ = now();                                              \
        for (long k_ = 0; k_ < (reps); k_++) {                                \
            call;                                                             \
            __asm__ volatile("" : : : "memory");                              \
        }                                                                     \
        ts_[r_] = (now() - s_) / (reps);                                      \
    }                                                                         \
    median(ts_, 15); })

#endif
