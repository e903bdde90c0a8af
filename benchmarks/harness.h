/* What the C harnesses of benchmarks/ share: a clock and a median. */
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

#endif
