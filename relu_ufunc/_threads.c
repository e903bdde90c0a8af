/*
 * The opt-in threads of the kernels: the settings, the budget, fork
 * handling and a small pthread pool.  What each function promises is in
 * _threads.h.
 */
#include "_threads.h"

#if RELU_THREADS
#  include <pthread.h>
#  include <sched.h>
#  include <time.h>
#  include <unistd.h>
#  if defined(__x86_64__) || defined(__i386__)
#    include <immintrin.h>
#    define RELU_PAUSE() _mm_pause()
#  elif defined(__aarch64__)
#    define RELU_PAUSE() __asm__ __volatile__("yield")
#  else
#    define RELU_PAUSE() ((void)0)
#  endif
/* The one atomics layer: GCC's builtins, which gcc and clang both have
 * (every pthread platform we build on has one of them). */
#  define RELU_LOAD(v) __atomic_load_n(&(v), __ATOMIC_ACQUIRE)
#  define RELU_STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELEASE)
#  define RELU_CAS(v, expected, x) \
    __atomic_compare_exchange_n(&(v), &(expected), (x), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#  define RELU_ADD(v, x) __atomic_add_fetch(&(v), (x), __ATOMIC_ACQ_REL)
#  define RELU_THREAD_LOCAL __thread
#else
#  define RELU_LOAD(v) (v)
#  define RELU_STORE(v, x) ((void)((v) = (x)))
#  define RELU_THREAD_LOCAL
#endif

static int relu_default_threads = 1;                  /* the process default */
static RELU_THREAD_LOCAL int relu_own_threads = 0;    /* this thread's; 0: none */
static RELU_THREAD_LOCAL int relu_last_team = 0;
int relu_thread_budget = 1;
int relu_busy = 0;
int relu_team_started = 0;
int relu_fork_disabled = 0;
int relu_teams_run = 0;

int relu_get_num_threads(void)
{
    int own = relu_own_threads;
    return own > 0 ? own : RELU_LOAD(relu_default_threads);
}

int relu_get_own_threads(void) { return relu_own_threads; }
void relu_set_own_threads(int n) { relu_own_threads = n > 0 ? n : 0; }
int relu_get_default_threads(void) { return RELU_LOAD(relu_default_threads); }
void relu_set_default_threads(int n) { RELU_STORE(relu_default_threads, n > 0 ? n : 1); }
int relu_last_team_get(void) { return relu_last_team; }
int relu_ufunc_get_num_threads(void) { return relu_get_num_threads(); }

#if RELU_THREADS

/* ---- the pool --------------------------------------------------------------
 * A job is one team call, on its caller's stack: k chunks, of which `next`
 * is the first nobody has taken and `done` counts those finished.  Jobs with
 * chunks left to take wait in a list.  Workers sleep on `work` until a job
 * is posted, spinning a little first: a team call comes every few
 * microseconds in a loop of calls, and a futex wake-up costs about as much
 * as a chunk of a call at the team threshold (256 KiB).  The caller runs
 * chunk 0, then takes what is left, then waits for the chunks the workers
 * took, again spinning a little before it sleeps on `done`.  Everything
 * is written under the lock; the counts that spinning threads watch
 * without it (`done`, and relu_pool_pending, the chunks posted and not yet
 * taken) are written atomically.                                           */
struct relu_job {
    relu_chunk_fn fn;
    void *ctx;
    ptrdiff_t n;
    size_t size;
    int k, next, done;
    struct relu_job *link;
};

static pthread_mutex_t relu_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t relu_pool_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t relu_pool_done = PTHREAD_COND_INITIALIZER;
static struct relu_job *relu_pool_jobs = NULL;    /* jobs with chunks to take */
static int relu_pool_workers = 0;                 /* started */
static int relu_pool_sleeping = 0;                /* waiting on relu_pool_work */
static int relu_pool_pending = 0;                 /* chunks posted, not taken */

/* How long a thread spins before it sleeps: 100 us, by the clock rather than
 * by a count of pause instructions, whose length differs tenfold between
 * CPUs (a count tuned to 20 us slept between the calls of a loop on one,
 * and every team call then paid a futex wake-up: 15-16 us against libgomp's
 * 13-14 us at 3e5 float32).  Long enough to span the gap between the calls
 * of a loop, short enough that an idle worker gives its CPU back at once. */
#define RELU_SPIN_NS 100000

static long long relu_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Spin while *count (read atomically) compares as `until_above` says with
 * `bound`, for at most RELU_SPIN_NS; whether the wait ended in time. */
static int relu_spin(int *count, int bound, int until_above)
{
    long long deadline = 0;
    for (int s = 0;; s++) {
        int v = RELU_LOAD(*count);
        if (until_above ? v > bound : v >= bound)
            return 1;
        RELU_PAUSE();
        if ((s & 63) == 63) {
            long long now = relu_now_ns();
            if (deadline == 0)
                deadline = now + RELU_SPIN_NS;
            else if (now > deadline)
                return 0;
        }
    }
}

/* Take the next chunk of `job` (under the lock); unlink the job once its
 * last chunk is taken. */
static int relu_take(struct relu_job *job)
{
    int t = job->next++;
    RELU_ADD(relu_pool_pending, -1);
    if (job->next >= job->k) {
        struct relu_job **p = &relu_pool_jobs;
        while (*p != job)
            p = &(*p)->link;
        *p = job->link;
    }
    return t;
}

static void relu_run_chunk(const struct relu_job *job, int t)
{
    job->fn(job->ctx, relu_split(job->n, job->size, job->k, t),
            relu_split(job->n, job->size, job->k, t + 1));
}

static void *relu_worker(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&relu_pool_lock);
    for (;;) {
        struct relu_job *job;
        int t;
        if (relu_pool_jobs == NULL) {
            pthread_mutex_unlock(&relu_pool_lock);
            relu_spin(&relu_pool_pending, 0, 1);          /* until a chunk is posted */
            pthread_mutex_lock(&relu_pool_lock);
            while (relu_pool_jobs == NULL) {
                relu_pool_sleeping++;
                pthread_cond_wait(&relu_pool_work, &relu_pool_lock);
                relu_pool_sleeping--;
            }
        }
        job = relu_pool_jobs;
        t = relu_take(job);
        pthread_mutex_unlock(&relu_pool_lock);
        relu_run_chunk(job, t);
        pthread_mutex_lock(&relu_pool_lock);
        /* The job may end (its caller return) as soon as this is counted
         * and the lock is let go: nothing here touches it afterwards. */
        if (RELU_ADD(job->done, 1) == job->k)
            pthread_cond_broadcast(&relu_pool_done);
    }
    return NULL;
}

/* Start workers (under the lock) until `want` exist, within the budget;
 * a worker that cannot start leaves its chunks to the caller. */
static void relu_grow_pool(int want)
{
    int most = relu_thread_budget - 1;
    if (want > most)
        want = most;
    while (relu_pool_workers < want) {
        pthread_t thread;
        pthread_attr_t attr;
        int failed;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        failed = pthread_create(&thread, &attr, relu_worker, NULL);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        relu_pool_workers++;
    }
}

void relu_run_team(int k, ptrdiff_t n, size_t size, relu_chunk_fn fn, void *ctx)
{
    struct relu_job job;
    if (k <= 1) {
        fn(ctx, 0, n);
        return;
    }
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.size = size;
    job.k = k;
    job.next = 1;                       /* chunk 0 is the caller's */
    job.done = 0;
    pthread_mutex_lock(&relu_pool_lock);
    job.link = relu_pool_jobs;
    relu_pool_jobs = &job;
    RELU_ADD(relu_pool_pending, k - 1);
    relu_grow_pool(k - 1);
    if (relu_pool_sleeping > 0)
        pthread_cond_broadcast(&relu_pool_work);
    pthread_mutex_unlock(&relu_pool_lock);

    relu_run_chunk(&job, 0);
    pthread_mutex_lock(&relu_pool_lock);
    RELU_ADD(job.done, 1);
    while (job.next < job.k) {          /* chunks no worker took yet */
        int t = relu_take(&job);
        pthread_mutex_unlock(&relu_pool_lock);
        relu_run_chunk(&job, t);
        pthread_mutex_lock(&relu_pool_lock);
        RELU_ADD(job.done, 1);
    }
    if (job.done < job.k) {
        pthread_mutex_unlock(&relu_pool_lock);
        relu_spin(&job.done, job.k, 0);                   /* until every chunk is done */
        pthread_mutex_lock(&relu_pool_lock);
        while (job.done < job.k)
            pthread_cond_wait(&relu_pool_done, &relu_pool_lock);
    }
    pthread_mutex_unlock(&relu_pool_lock);
}

/* ---- fork ------------------------------------------------------------------ */
static void relu_atfork_prepare(void) { pthread_mutex_lock(&relu_pool_lock); }
static void relu_atfork_parent(void) { pthread_mutex_unlock(&relu_pool_lock); }

/* Runs in the child, on its only thread, before fork() returns there. */
static void relu_atfork_child(void)
{
    pthread_mutex_init(&relu_pool_lock, NULL);
    pthread_cond_init(&relu_pool_work, NULL);
    pthread_cond_init(&relu_pool_done, NULL);
    relu_pool_jobs = NULL;
    relu_pool_workers = relu_pool_sleeping = relu_pool_pending = 0;
    if (relu_team_started)
        relu_fork_disabled = 1;
    relu_busy = 0;      /* calls in flight in the parent are not in the child */
}

static int relu_cpus(void)
{
#  if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)     /* honours the affinity mask */
        return CPU_COUNT(&set);
#  endif
    {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
    }
}

void relu_threads_init(void)
{
    relu_thread_budget = relu_cpus();
    pthread_atfork(relu_atfork_prepare, relu_atfork_parent, relu_atfork_child);
}

int relu_team_begin(ptrdiff_t out_bytes, int *held)
{
    ptrdiff_t chunks = out_bytes / RELU_THREAD_BYTES;
    int want, grant, busy;
    *held = 0;
    if (chunks <= 1)
        return 1;
    relu_last_team = 1;
    want = relu_get_num_threads();
    if (want <= 1 || RELU_LOAD(relu_fork_disabled))
        return 1;
    if (chunks < want)
        want = (int)chunks;
    busy = RELU_LOAD(relu_busy);
    do {
        int room = RELU_LOAD(relu_thread_budget) - busy;
        grant = room < want ? room : want;
        if (grant < 2)
            grant = 1;                  /* the caller alone, counted as one */
    } while (!RELU_CAS(relu_busy, busy, busy + grant));
    *held = grant;
    relu_last_team = grant;
    if (grant > 1) {
        RELU_STORE(relu_team_started, 1);
        RELU_ADD(relu_teams_run, 1);
    }
    return grant;
}

void relu_team_end(int held)
{
    if (held > 0)
        RELU_ADD(relu_busy, -held);
}

#else  /* no threads: every call on its caller */

void relu_threads_init(void) {}

int relu_team_begin(ptrdiff_t out_bytes, int *held)
{
    (void)out_bytes;
    *held = 0;
    return 1;
}

void relu_team_end(int held) { (void)held; }

void relu_run_team(int k, ptrdiff_t n, size_t size, relu_chunk_fn fn, void *ctx)
{
    (void)k;
    (void)size;
    fn(ctx, 0, n);
}

#endif
