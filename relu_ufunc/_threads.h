/*
 * Opt-in threads for the kernels: relu_ufunc.set_num_threads, threads() and
 * threadpoolctl.  The state and the thread pool live in _threads.c; this
 * header declares them for the kernels (_loops.h) and the module
 * (_ufuncs.pyx).
 *
 * The threads are a small pthread pool of our own, not OpenMP: every C
 * compiler that builds the extension (gcc, clang, with or without an OpenMP
 * runtime) then has them, and a team splits a call into exactly the chunks
 * relu_split gives, so the bits never depend on the compiler or on how many
 * workers were free.
 *
 * What the kernels call
 * ---------------------
 *   int relu_team_begin(ptrdiff_t out_bytes, int *held)
 *       How many threads a call writing out_bytes may use (the calling
 *       thread's setting, at most one per RELU_THREAD_BYTES, within the
 *       budget below): 1 means run on the caller and never touch the pool.
 *       *held is what it counted in the budget (0 when it counted nothing);
 *       pass it to relu_team_end when the call is done.  Calls under
 *       2 * RELU_THREAD_BYTES return 1, hold 0 and read no setting.
 *   void relu_run_team(int k, ptrdiff_t n, size_t itemsize, relu_chunk_fn fn, void *ctx)
 *       Run fn(ctx, lo, hi) over the k chunks of [0, n) that relu_split
 *       gives: on the calling thread alone when k <= 1, else chunk 0 on the
 *       caller and the others on the pool's workers, the caller taking any
 *       chunk no worker has taken yet; returns when every chunk is done.
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
 * The pool's workers do not exist in a forked child.  A pthread_atfork
 * handler takes the pool's lock around fork() (so the child never inherits
 * it held) and, in a child forked after this process started a team, marks
 * teams unusable (relu_fork_disabled): every call in that child, and in its
 * own forked children, runs on the calling thread, with the same bits.  A
 * child forked before any team started starts workers of its own when it
 * needs them, and spawn or forkserver children are new processes.
 */
#ifndef RELU_THREADS_H
#define RELU_THREADS_H

#include <stddef.h>

#if defined(__GNUC__)
#  define RELU_HIDDEN __attribute__((visibility("hidden")))
#  define RELU_EXPORT __attribute__((visibility("default")))
#else
#  define RELU_HIDDEN
#  define RELU_EXPORT
#endif

/* Whether this build has teams (POSIX threads); 0: every call runs on its
 * caller, and set_num_threads only records the setting. */
#if defined(RELU_NO_THREADS) || defined(_WIN32)
#  define RELU_THREADS 0
#else
#  define RELU_THREADS 1
#endif

/* RELU_THREAD_BYTES: a contiguous call gets one thread per that many bytes
 * of output (relu_ufunc/_constants.py). */
#include "_constants.h"

typedef void (*relu_chunk_fn)(void *ctx, ptrdiff_t lo, ptrdiff_t hi);

RELU_HIDDEN void relu_threads_init(void);
RELU_HIDDEN int relu_get_num_threads(void);
RELU_HIDDEN int relu_get_own_threads(void);
RELU_HIDDEN void relu_set_own_threads(int n);
RELU_HIDDEN int relu_get_default_threads(void);
RELU_HIDDEN void relu_set_default_threads(int n);
RELU_HIDDEN int relu_team_begin(ptrdiff_t out_bytes, int *held);
RELU_HIDDEN void relu_team_end(int held);
RELU_HIDDEN void relu_run_team(int k, ptrdiff_t n, size_t size, relu_chunk_fn fn, void *ctx);
RELU_EXPORT int relu_ufunc_get_num_threads(void);

/* Introspection for the tests (read and set from _ufuncs.pyx). */
RELU_HIDDEN extern int relu_thread_budget;   /* CPUs; set at init */
RELU_HIDDEN extern int relu_busy;            /* threads of calls in flight */
RELU_HIDDEN extern int relu_team_started;    /* a team ever ran here */
RELU_HIDDEN extern int relu_fork_disabled;   /* forked after a team */
RELU_HIDDEN extern int relu_teams_run;       /* teams run */
RELU_HIDDEN int relu_last_team_get(void);    /* this thread's last large call's
                                                team (1: the caller alone) */

/* Start of chunk t of k, on a 64-byte boundary (every itemsize divides 64). */
static inline ptrdiff_t relu_split(ptrdiff_t n, size_t size, int k, int t)
{
    ptrdiff_t per_line = (ptrdiff_t)(64 / size), lo;
    if (t >= k)
        return n;
    lo = (ptrdiff_t)((double)n * t / k) / per_line * per_line;
    return lo < n ? lo : n;
}

#endif /* RELU_THREADS_H */
