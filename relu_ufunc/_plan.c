/*
 * The runtime state of the kernels: which build runs (relu_level), and the
 * store plan, with its measurement.  What each function promises is in
 * _loops_common.h.
 */
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#  include <sys/mman.h>
#endif
#include "_loops_common.h"

/* ---- CPU builds --------------------------------------------------------- */
int relu_level = 0;

int relu_max_level(void)
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

/* ---- the store plan -------------------------------------------------------- */
ptrdiff_t relu_stream_from[RELU_TEAM_PLANS];
static int relu_planning = 0;                     /* a thread is measuring */

/* What each plan measured: median seconds per pass, plain and streamed,
 * by size (1 MiB << k); 0 where it did not measure. */
static double relu_plan_plain[RELU_TEAM_PLANS][RELU_PLAN_SIZES];
static double relu_plan_streamed[RELU_TEAM_PLANS][RELU_PLAN_SIZES];

/* The relu float32 kernels of each build, plain and streaming. */
static const relu_plan_kernel *relu_plan_plain_k = NULL, *relu_plan_stream_k = NULL;

void relu_plan_kernels(const relu_plan_kernel *plain, const relu_plan_kernel *stream)
{
    relu_plan_plain_k = plain;
    relu_plan_stream_k = stream;
}

double relu_plan_seconds(int team, int k, int streamed)
{
    const int slot = relu_plan_slot(team);
    return streamed ? relu_plan_streamed[slot][k] : relu_plan_plain[slot][k];
}

/* ---- how far ahead the stream kernels prefetch ---------------------------- */
ptrdiff_t relu_stream_ahead = RELU_UNPLANNED;
static const ptrdiff_t relu_aheads[RELU_AHEADS] = { 0, 512, 1024, 2048 };
static double relu_ahead_s[RELU_AHEADS];        /* what each measured, 0: not */

void relu_set_ahead(ptrdiff_t ahead)
{
    if (ahead == RELU_UNPLANNED)
        for (int k = 0; k < RELU_AHEADS; k++)
            relu_ahead_s[k] = 0;
    __atomic_store_n(&relu_stream_ahead, ahead, __ATOMIC_RELEASE);
}

ptrdiff_t relu_ahead_tried(int k) { return relu_aheads[k]; }

double relu_ahead_seconds(int k) { return relu_ahead_s[k]; }

void relu_set_plans(ptrdiff_t from)
{
    if (!RELU_STREAM)
        from = RELU_NEVER;
    for (int k = 0; k < RELU_TEAM_PLANS; k++) {
        if (from == RELU_UNPLANNED)
            for (int size = 0; size < RELU_PLAN_SIZES; size++)
                relu_plan_plain[k][size] = relu_plan_streamed[k][size] = 0;
        __atomic_store_n(&relu_stream_from[k], from, __ATOMIC_RELEASE);
    }
    if (from == RELU_UNPLANNED)
        __atomic_store_n(&relu_planning, 0, __ATOMIC_RELEASE);
}

#if RELU_STREAM
static double relu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The median of v[0..n), which it sorts. */
static double relu_median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            const double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

/* A buffer as NumPy allocates an array of `bytes`: from malloc, and where
 * it is RELU_HUGEPAGE_FROM (4 MiB) or more, its whole pages advised to be huge pages (NumPy's
 * npy_alloc_cache does that on Linux).  The plan measures on such buffers,
 * not on one large block: on a Zen 3 the kind of pages alone moved the
 * result (4 MiB: streamed 0.95x plain on a 64 MiB block of small pages,
 * 1.45x on NumPy's arrays). */
static float *relu_plan_alloc(ptrdiff_t bytes)
{
    char *p = (char *)malloc((size_t)bytes);
#ifdef MADV_HUGEPAGE
    if (p != NULL && bytes >= RELU_HUGEPAGE_FROM) {
        const uintptr_t offset = 4096u - (uintptr_t)p % 4096u;
        madvise(p + offset, (size_t)bytes - offset, MADV_HUGEPAGE);
    }
#endif
    return (float *)p;
}

/* An input and an output of `bytes` each to time passes on, x half
 * negative; 0 where either could not be allocated (then neither is). */
static int relu_plan_buffers(ptrdiff_t bytes, float **x, float **y)
{
    *x = relu_plan_alloc(bytes);
    *y = relu_plan_alloc(bytes);
    if (*x == NULL || *y == NULL) {
        free(*x);
        free(*y);
        return 0;
    }
    for (ptrdiff_t i = 0; i < bytes / 4; i++)
        (*x)[i] = (i & 1) ? 1.5f : -1.5f;
    return 1;
}

/* One timed pass of a relu float32 kernel over n elements on `team`
 * threads, as a call would split it. */
struct relu_plan_run { relu_plan_kernel kernel; const float *x; float *y; };

static void relu_plan_chunk(void *ctx, ptrdiff_t lo, ptrdiff_t hi)
{
    const struct relu_plan_run *a = (const struct relu_plan_run *)ctx;
    a->kernel(a->x + lo, a->y + lo, hi - lo);
}

static double relu_plan_pass(relu_plan_kernel kernel, const float *x, float *y, ptrdiff_t n,
                             int team)
{
    struct relu_plan_run run = { kernel, x, y };
    double t = relu_seconds();
    relu_run_team(team, n, sizeof(float), relu_plan_chunk, &run);
    return relu_seconds() - t;
}

/* Median seconds per pass of each kind of pass (a kernel, and the prefetch
 * distance it runs with; -1: relu_stream_ahead as it is), timed in rounds:
 * each round runs each kind warm and in a row, as a program calling it
 * again and again would (with `warm_each`, an untimed pass first: a
 * streamed pass leaves y out of the cache, and would slow a plain pass
 * right after it; without, where every kind streams, one untimed pass
 * before the first round), then times one pass.  Rounds, so that every
 * kind sees the same moments of a shared machine: measured one kind after
 * the other, 2 threads on 2 vCPUs found streaming 0.55x plain at 8 MiB in
 * one plan and 1.23x in the next.  At least 5 rounds, and as many more as
 * fit in about 4 ms (at most 31). */
#define RELU_PLAN_ROUNDS 31
#define RELU_PLAN_KINDS (RELU_AHEADS > 2 ? RELU_AHEADS : 2)   /* the plan measures 2 */
struct relu_plan_kind { relu_plan_kernel kernel; ptrdiff_t ahead; };

static void relu_plan_measure(const struct relu_plan_kind *kinds, int count, int warm_each,
                              const float *x, float *y, ptrdiff_t n, int team, double *seconds)
{
    double t[RELU_PLAN_KINDS][RELU_PLAN_ROUNDS];
    int rounds = RELU_PLAN_ROUNDS;
    if (!warm_each)
        relu_plan_pass(kinds[0].kernel, x, y, n, team);
    for (int r = 0; r < rounds; r++) {
        double round = 0;
        for (int c = 0; c < count; c++) {
            if (kinds[c].ahead >= 0)
                __atomic_store_n(&relu_stream_ahead, kinds[c].ahead, __ATOMIC_RELAXED);
            if (warm_each)
                relu_plan_pass(kinds[c].kernel, x, y, n, team);
            t[c][r] = relu_plan_pass(kinds[c].kernel, x, y, n, team);
            round += (warm_each ? 2 : 1) * t[c][r];
        }
        if (r == 0) {
            rounds = round > 0 ? (int)(4e-3 / round) : RELU_PLAN_ROUNDS;
            rounds = rounds < 5 ? 5 : rounds > RELU_PLAN_ROUNDS ? RELU_PLAN_ROUNDS : rounds;
        }
    }
    for (int c = 0; c < count; c++)
        seconds[c] = relu_median(t[c], rounds);
}

/* The distance that measured fastest, where it was at least 5% faster than
 * none: a prefetch costs instructions, and a win inside the noise of one
 * measurement is none.  At 64 MiB on one thread, the calling one: past the
 * caches of every CPU met so far, as the calls that stream are, and one
 * core's wait on its loads is what a prefetch can cut.  With relu_planning
 * held. */
#define RELU_AHEAD_WIN 0.95
static void relu_ahead_measure(int level)
{
    const ptrdiff_t bytes = RELU_PLAN_FROM << (RELU_PLAN_SIZES - 1), n = bytes / 4;
    float *x, *y;
    int best = 0;
    for (int k = 0; k < RELU_AHEADS; k++)
        relu_ahead_s[k] = 0;
    if (relu_plan_buffers(bytes, &x, &y)) {
        struct relu_plan_kind kinds[RELU_AHEADS];
        for (int k = 0; k < RELU_AHEADS; k++) {
            kinds[k].kernel = relu_plan_stream_k[level];
            kinds[k].ahead = relu_aheads[k];
        }
        relu_plan_measure(kinds, RELU_AHEADS, 0, x, y, n, 1, relu_ahead_s);
        for (int k = 1; k < RELU_AHEADS; k++)
            if (relu_ahead_s[k] < relu_ahead_s[best])
                best = k;
        if (!(relu_ahead_s[best] < RELU_AHEAD_WIN * relu_ahead_s[0]))
            best = 0;
        free(x);
        free(y);
    }
    __atomic_store_n(&relu_stream_ahead, relu_aheads[best], __ATOMIC_RELEASE);
}

void relu_ahead_plan(void)
{
    int idle = 0;
    if (relu_plan_stream_k == NULL)
        return;
    if (!__atomic_compare_exchange_n(&relu_planning, &idle, 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    if (__atomic_load_n(&relu_stream_ahead, __ATOMIC_ACQUIRE) == RELU_UNPLANNED)
        relu_ahead_measure(relu_level);
    __atomic_store_n(&relu_planning, 0, __ATOMIC_RELEASE);
}

/* Measure, once per process and team size, from which output size
 * streaming stores beat plain ones on this machine, as FFTW's planner
 * measures rather than guesses: the relu float32 kernels of the build that
 * runs, split over `team` threads as a call is, at 64, 32, 16, ... 1 MiB
 * of output, on buffers of their own allocated as NumPy allocates arrays,
 * the median of warm passes of each, timed in rounds.  Streaming is chosen
 * from the smallest size down to which it was at least 15% faster at every
 * size (the sizes below the first where it was not are not measured);
 * where it did not win so at 64 MiB, never.  15%, not less, because the risk is lopsided: streaming
 * an output that would have stayed in cache costs up to 2x, while near
 * the caches' limit, where a measurement can be off by 10%, it gains
 * little (Zen 3, 2 threads, 8 MiB: measured 0.94x in one plan of a run in
 * which the calls themselves streamed at 1.5x plain).
 * Reported cache sizes are not used: in VMs they have been ten times off.
 * Costs about 0.2-0.5 s, in the first call on that many threads with at
 * least 1 MiB of output, which runs on the threads its call was granted
 * (and once per process 0.2-0.3 s more: the prefetch distance, first).
 * A call made while another thread measures stores plainly. */
#define RELU_PLAN_WIN 0.85
ptrdiff_t relu_stream_plan(int team)
{
    int idle = 0;
    const int slot = relu_plan_slot(team), level = relu_level;
    ptrdiff_t from;
    if (relu_plan_plain_k == NULL || relu_plan_stream_k == NULL)
        return RELU_NEVER;
    if (!__atomic_compare_exchange_n(&relu_planning, &idle, 1, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return RELU_NEVER;
    from = __atomic_load_n(&relu_stream_from[slot], __ATOMIC_ACQUIRE);
    if (from != RELU_UNPLANNED) {                 /* another call just planned it */
        __atomic_store_n(&relu_planning, 0, __ATOMIC_RELEASE);
        return from;
    }
    from = RELU_NEVER;
    for (int k = 0; k < RELU_PLAN_SIZES; k++)
        relu_plan_plain[slot][k] = relu_plan_streamed[slot][k] = 0;
    /* The streamed passes below run at the distance they will run at. */
    if (__atomic_load_n(&relu_stream_ahead, __ATOMIC_ACQUIRE) == RELU_UNPLANNED)
        relu_ahead_measure(level);
    /* From the largest size down, as long as streaming wins: the largest
     * sizes, where it wins by 30-50% if at all, also warm the machine up
     * (a first plan measured from 1 MiB up in a new process found plain
     * stores at 1 and 2 MiB 1.5-2x slower than every plan after it). */
    for (int k = RELU_PLAN_SIZES - 1; k >= 0; k--) {
        const ptrdiff_t bytes = RELU_PLAN_FROM << k, n = bytes / 4;
        const struct relu_plan_kind kinds[2] = { { relu_plan_plain_k[level], -1 },
                                                 { relu_plan_stream_k[level], -1 } };
        double seconds[2];
        float *x, *y;
        if (!relu_plan_buffers(bytes, &x, &y)) {
            from = RELU_NEVER;
            break;
        }
        relu_plan_measure(kinds, 2, 1, x, y, n, team, seconds);
        relu_plan_plain[slot][k] = seconds[0];
        relu_plan_streamed[slot][k] = seconds[1];
        free(x);
        free(y);
        if (!(relu_plan_streamed[slot][k] < RELU_PLAN_WIN * relu_plan_plain[slot][k]))
            break;
        from = bytes;
    }
    __atomic_store_n(&relu_stream_from[slot], from, __ATOMIC_RELEASE);
    __atomic_store_n(&relu_planning, 0, __ATOMIC_RELEASE);
    return from;
}
#else
/* No streaming stores in this build (not x86-64): nothing to measure. */
ptrdiff_t relu_stream_plan(int team)
{
    (void)team;
    return RELU_NEVER;
}

void relu_ahead_plan(void) {}
#endif
