/*
 * Opt-in threads for the kernels: relu_ufunc.set_num_threads, threads() and
 * threadpoolctl.  Hand-written; the kernels include it.
 *
 * Everything here but relu_ufunc_get_num_threads is static, and the state
 * (the settings, the budget, the fork flag) lives in the translation unit
 * that includes this header.  So include it in exactly one translation
 * unit, the extension module's (as the build does today): a second one
 * would fail to link, on relu_ufunc_get_num_threads, rather than get a
 * state of its own.  Kernels split over several .c files would need these
 * definitions moved to one .c, with extern declarations here.
 *
 * What the kernels call
 * ---------------------
 *   RELU_ON_TEAM(k, n, itemsize, CALL)
 *       Run CALL over [0, n) on the calling thread (k <= 1), or on a team
 *       of k OpenMP threads that relu_team_begin granted.  CALL uses `lo`
 *       and `hi` (ptrdiff_t), the bounds of its chunk.  A kernel calls
 *       relu_team_begin, picks its stores for the team it got (the store
 *       plan is measured per team size), runs RELU_ON_TEAM and calls
 *       relu_team_end.
 *   int relu_team_begin(ptrdiff_t out_bytes, int *held)
 *       How many threads a call writing out_bytes may use (the calling
 *       thread's setting, at most one per RELU_THREAD_BYTES, within the
 *       budget below): 1 means run on the caller and never touch OpenMP.
 *       *held is what it counted in the budget (0 when it counted nothing);
 *       pass it to relu_team_end when the call is done.  Calls under
 *       2 * RELU_THREAD_BYTES return 1, hold 0 and read no setting.
 *   void relu_team_end(int held)
 *       Give back what relu_team_begin held.
 *   ptrdiff_t relu_split(ptrdiff_t n, size_t itemsize, int k, int t)
 *       Start of chunk t of k (t == k gives n), on a 64-byte boundary
 *       relative to the start of the array.
 *
 * What the module calls (under the GIL)
 * -------------------------------------
 *   void relu_threads_init(void)          once, at import
 *   int  relu_get_num_threads(void)       the calling thread's setting now:
 *                                         its own value, else the default
 *   int  relu_get_own_threads(void)       the calling thread's own value,
 *   void relu_set_own_threads(int n)      0 meaning none (use the default)
 *   int  relu_get_default_threads(void)   the process default, for threads
 *   void relu_set_default_threads(int n)  without a value of their own
 *   relu_thread_budget, relu_busy, relu_teams_run, relu_last_team,
 *   relu_team_started, relu_fork_disabled introspection for the tests
 *
 * What threadpoolctl finds
 * ------------------------
 *   int relu_ufunc_get_num_threads(void)  exported from the extension:
 *       relu_get_num_threads().  It tells threadpoolctl that this shared
 *       library is relu_ufunc's (relu_ufunc/_threadpoolctl.py).
 *
 * Per thread and per process
 * --------------------------
 * NumPy calls the inner loop on the thread that called the ufunc (it only
 * releases the GIL), so a thread-local setting is the calling Python
 * thread's.  Each thread has an own value (0: none) and uses the process
 * default while it has none.
 *
 * The budget (oversubscription)
 * -----------------------------
 * A call that asks for k > 1 threads counts itself and its workers in
 * relu_busy while it runs.  It gets workers only while relu_busy stays
 * within relu_thread_budget (the CPUs this process may run on): a call
 * that finds the budget used up runs on its caller alone, and still counts
 * as one.  So several Python threads asking for teams at once never put
 * more team threads on the CPUs than there are CPUs.  See
 * benchmarks/oversubscription.py for why.
 *
 * fork
 * ----
 * GNU OpenMP's team does not survive fork(): the child inherits the
 * parent's bookkeeping for worker threads that do not exist in it, and its
 * first parallel region waits for them for ever.  A pthread_atfork child
 * handler therefore marks the team unusable in a child forked after this
 * process started one (relu_fork_disabled): every call in that child, and
 * in its own forked children, runs on the calling thread, with the same
 * bits.  A child forked before any team started keeps its threads, and
 * spawn or forkserver children are new processes.
 */
#ifndef RELU_THREADS_H
#define RELU_THREADS_H

#include <stddef.h>
#include <limits.h>

#ifdef _OPENMP
#  include <omp.h>
#  if !defined(_WIN32)
#    include <pthread.h>
#    define RELU_ATFORK 1
#  endif
#endif
#ifndef RELU_ATFORK
#  define RELU_ATFORK 0
#endif

#if defined(_MSC_VER)
#  define RELU_THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__)
#  define RELU_THREAD_LOCAL __thread
#else
#  define RELU_THREAD_LOCAL _Thread_local
#endif

/* Relaxed loads and stores of ints shared between threads, and the
 * read-modify-writes of the budget and the counter. */
#if defined(__GNUC__)
#  define RELU_LOAD(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#  define RELU_STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)
#  define RELU_CAS(v, expected, x) \
    __atomic_compare_exchange_n(&(v), &(expected), (x), 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)
#  define RELU_ADD(v, x) ((void)__atomic_fetch_add(&(v), (x), __ATOMIC_ACQ_REL))
#else   /* no GNU builtins: a volatile int, OpenMP atomics and a critical section */
#  define RELU_LOAD(v) (*(volatile int *)&(v))
#  define RELU_STORE(v, x) ((void)(*(volatile int *)&(v) = (x)))
#endif

#if defined(__GNUC__)
#  define RELU_MAYBE_UNUSED __attribute__((unused))   /* without OpenMP */
#else
#  define RELU_MAYBE_UNUSED
#endif

/* A contiguous call gets one thread per RELU_THREAD_BYTES of output. */
#define RELU_THREAD_BYTES ((ptrdiff_t)128 << 10)

static int relu_default_threads = 1;                /* the process default */
static RELU_THREAD_LOCAL int relu_own_threads = 0;  /* this thread's; 0: none */
static RELU_MAYBE_UNUSED int relu_thread_budget = 1;  /* CPUs; set at init */
static RELU_MAYBE_UNUSED int relu_busy = 0;         /* threads of calls in flight */
static RELU_MAYBE_UNUSED int relu_team_started = 0; /* a team ever ran here */
static RELU_MAYBE_UNUSED int relu_fork_disabled = 0;  /* forked after a team */
static RELU_MAYBE_UNUSED int relu_teams_run = 0;    /* teams run, for the tests */
/* The threads this thread's last call of 2 * RELU_THREAD_BYTES or more ran
 * on (1: on the caller alone), for the tests. */
static RELU_THREAD_LOCAL RELU_MAYBE_UNUSED int relu_last_team = 0;

static inline int relu_get_num_threads(void)
{
    int own = relu_own_threads;
    return own > 0 ? own : RELU_LOAD(relu_default_threads);
}

static inline int relu_get_own_threads(void) { return relu_own_threads; }
static inline void relu_set_own_threads(int n) { relu_own_threads = n > 0 ? n : 0; }
static inline int relu_get_default_threads(void) { return RELU_LOAD(relu_default_threads); }
static inline void relu_set_default_threads(int n) { RELU_STORE(relu_default_threads, n > 0 ? n : 1); }

#if defined(_WIN32)
#  define RELU_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#  define RELU_EXPORT __attribute__((visibility("default")))
#else
#  define RELU_EXPORT
#endif

RELU_EXPORT int relu_ufunc_get_num_threads(void);
RELU_EXPORT int relu_ufunc_get_num_threads(void)
{
    return relu_get_num_threads();
}

#if RELU_ATFORK
/* Runs in the child, on its only thread, before fork() returns there. */
static void relu_atfork_child(void)
{
    if (relu_team_started)
        relu_fork_disabled = 1;
    relu_busy = 0;      /* calls in flight in the parent are not in the child */
}
#endif

static void relu_threads_init(void)
{
#ifdef _OPENMP
    int cpus = omp_get_num_procs();     /* honours the CPU affinity mask */
    relu_thread_budget = cpus > 0 ? cpus : 1;
#endif
#if RELU_ATFORK
    pthread_atfork(NULL, NULL, relu_atfork_child);
#endif
}

static int relu_team_begin(ptrdiff_t out_bytes, int *held)
{
#ifdef _OPENMP
    ptrdiff_t chunks = out_bytes / RELU_THREAD_BYTES;
    int want, grant;
    *held = 0;
    if (chunks <= 1)
        return 1;
    relu_last_team = 1;
    want = relu_get_num_threads();
    if (want <= 1 || RELU_LOAD(relu_fork_disabled))
        return 1;
    if (chunks < want)
        want = (int)chunks;
#  if defined(__GNUC__)
    {
        int busy = RELU_LOAD(relu_busy);
        do {
            int room = relu_thread_budget - busy;
            grant = room < want ? room : want;
            if (grant < 2)
                grant = 1;              /* the caller alone, counted as one */
        } while (!RELU_CAS(relu_busy, busy, busy + grant));
    }
#  else
#    pragma omp critical(relu_budget)
    {
        int room = relu_thread_budget - relu_busy;
        grant = room < want ? room : want;
        if (grant < 2)
            grant = 1;
        relu_busy += grant;
    }
#  endif
    *held = grant;
    relu_last_team = grant;
    if (grant > 1) {
        RELU_STORE(relu_team_started, 1);
#  if defined(__GNUC__)
        RELU_ADD(relu_teams_run, 1);
#  else
#    pragma omp atomic
        relu_teams_run++;
#  endif
    }
    return grant;
#else
    (void)out_bytes;
    *held = 0;
    return 1;
#endif
}

static inline void relu_team_end(int held)
{
#ifdef _OPENMP
    if (held <= 0)
        return;
#  if defined(__GNUC__)
    RELU_ADD(relu_busy, -held);
#  else
#    pragma omp atomic
    relu_busy -= held;
#  endif
#else
    (void)held;
#endif
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
#  define RELU_OMP_FOR _Pragma("omp parallel for num_threads(team_) schedule(static)")
#else
#  define RELU_OMP_FOR
#endif

/* Run CALL (which uses lo and hi) over [0, n) on a team of k threads that
 * relu_team_begin granted (k <= 1: on the caller).  A team may come with
 * fewer threads than k: the loop still covers every chunk, each with the
 * same bounds, so the bits do not depend on it. */
#define RELU_ON_TEAM(k, n, size, CALL)                                        \
    do {                                                                      \
        const int team_ = (k);                                                \
        if (team_ <= 1) {                                                     \
            ptrdiff_t lo = 0, hi = (n);                                       \
            CALL;                                                             \
        } else {                                                              \
            int t;                                                            \
            RELU_OMP_FOR                                                      \
            for (t = 0; t < team_; t++) {                                     \
                ptrdiff_t lo = relu_split((n), (size), team_, t);             \
                ptrdiff_t hi = relu_split((n), (size), team_, t + 1);         \
                CALL;                                                         \
            }                                                                 \
        }                                                                     \
    } while (0)

#endif /* RELU_THREADS_H */
