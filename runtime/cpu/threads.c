/* A small persistent thread pool: the caller works too; pieces are handed out through an
 * atomic counter so uneven pieces balance. One job at a time (a mutex serializes callers).
 *
 * Workers and the caller spin for up to KD_POOL_SPIN_NS before they sleep on a condition
 * variable: a decode step issues its ops back to back, and waking a sleeping thread costs
 * 15-20 us on a VM (measured: a 64-row GEMV took 41 us on 2 threads against 7 us on one),
 * which is several percent of a 1 ms GEMV. The spin is short, so an idle pool sleeps.
 *
 * The caller waits for the pieces to be done, not for the workers to check in: a worker
 * that the OS has not scheduled (another process on its core) joins late or not at all,
 * and the caller runs the pieces it leaves. (Waiting for every worker to see each job
 * made a 5 us GEMV take 0.4 ms while another process kept the second core busy.) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cpu_ops.h"
#include "kd_clock.h"

#define KD_POOL_SPIN_NS 200000 /* 200 us */

struct kd_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t run_lock; /* one job at a time */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    _Atomic uint64_t generation; /* bumped (under lock) to publish a job or a stop */
    atomic_int stopping;
    /* The current job: fn, arg, n and piece are written before claim is published and
     * stay as they are until every piece is done, so whoever holds a piece reads them. */
    kd_range_fn fn;
    void *arg;
    int64_t n, piece;
    /* (pieces << 32) | next piece: one word, so that a claim made with a stale view of
     * the job (a worker that woke late) fails its compare-and-swap instead of taking a
     * piece of the next job by another job's count. */
    _Atomic uint64_t claim;
    atomic_int_fast64_t pieces_done;
};

/* Takes the next piece of the current job: its index, and the job's piece count in
 * *pieces; -1 when none is left. */
static int64_t claim_piece(kd_pool *p, int64_t *pieces)
{
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    while ((c & 0xffffffffu) < (c >> 32))
        if (atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *pieces = (int64_t)(c >> 32);
            return (int64_t)(c & 0xffffffffu);
        }
    return -1;
}

/* Runs pieces until none is left. Whoever finishes the job's last piece wakes the caller,
 * which may be asleep waiting for it. */
static void work_on_job(kd_pool *p)
{
    int64_t pieces;
    for (int64_t i; (i = claim_piece(p, &pieces)) >= 0;) {
        int64_t b = i * p->piece, e = b + p->piece < p->n ? b + p->piece : p->n;
        p->fn(p->arg, b, e);
        if (atomic_fetch_add_explicit(&p->pieces_done, 1, memory_order_acq_rel) + 1 == pieces) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins until done(p, arg) holds or KD_POOL_SPIN_NS pass; returns whether it holds. */
static int spin_until(int (*done)(kd_pool *, const void *), kd_pool *p, const void *arg)
{
    int64_t start = 0;
    for (unsigned i = 0;; i++) {
        if (done(p, arg))
            return 1;
        cpu_relax();
        if (i % 64 == 63) { /* the clock only now and then: it costs more than a pause */
            int64_t t = kd_monotonic_ns();
            if (!start)
                start = t;
            else if (t - start > KD_POOL_SPIN_NS)
                return 0;
        }
    }
}

static int job_published(kd_pool *p, const void *seen)
{
    return atomic_load_explicit(&p->generation, memory_order_acquire) != *(const uint64_t *)seen;
}

static int job_done(kd_pool *p, const void *pieces)
{
    return atomic_load_explicit(&p->pieces_done, memory_order_acquire) == *(const int64_t *)pieces;
}

static void *worker_main(void *arg)
{
    kd_pool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(job_published, p, &seen)) {
            pthread_mutex_lock(&p->lock);
            while (atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (atomic_load(&p->stopping))
            break;
        work_on_job(p);
    }
    return NULL;
}

kd_pool *kd_pool_create(int threads)
{
    kd_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads > 0 ? threads : 1;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->workers = calloc((size_t)p->threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < p->threads; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
            p->threads = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

void kd_pool_destroy(kd_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stopping, 1);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->threads; i++)
        pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p->workers);
    free(p);
}

int kd_pool_threads(const kd_pool *p) { return p->threads; }

void kd_pool_for(kd_pool *p, int64_t n, int64_t grain, kd_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (p->threads == 1 || n <= grain) {
        fn(arg, 0, n);
        return;
    }
    /* About four pieces per thread: big enough to stream, small enough to balance. */
    int64_t piece = (n + 4 * p->threads - 1) / (4 * p->threads);
    piece = piece < grain ? grain : piece;
    const int64_t pieces = (n + piece - 1) / piece; /* <= 4 * threads */
    pthread_mutex_lock(&p->run_lock);
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->piece = piece;
    atomic_store_explicit(&p->pieces_done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)pieces << 32, memory_order_release);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release); /* wakes the workers */
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    work_on_job(p);
    if (!spin_until(job_done, p, &pieces)) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load(&p->pieces_done) < pieces)
            pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&p->run_lock);
}

typedef struct units_job { kd_range_fn fn; void *arg; int64_t unit, n; } units_job;

static void run_units(void *arg, int64_t u0, int64_t u1)
{
    const units_job *u = arg;
    u->fn(u->arg, u0 * u->unit, u1 * u->unit < u->n ? u1 * u->unit : u->n);
}

void kd_pool_for_units(kd_pool *p, int64_t n, int64_t unit, int64_t grain, kd_range_fn fn, void *arg)
{
    if (unit <= 1) {
        kd_pool_for(p, n, grain, fn, arg);
        return;
    }
    units_job u = {fn, arg, unit, n};
    kd_pool_for(p, (n + unit - 1) / unit, (grain + unit - 1) / unit, run_units, &u);
}
