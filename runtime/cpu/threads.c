/* A small persistent thread pool: the caller works too; pieces are handed out through an
 * atomic counter so uneven pieces balance. One job at a time (a mutex serializes callers). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cpu_ops.h"

struct kd_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t run_lock; /* one job at a time */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    uint64_t generation;
    int stopping;
    int busy; /* workers still on the current job */
    /* the current job */
    kd_range_fn fn;
    void *arg;
    int64_t n, piece;
    atomic_int_fast64_t next;
};

static void work_on_job(kd_pool *p)
{
    for (;;) {
        int64_t b = atomic_fetch_add(&p->next, p->piece);
        if (b >= p->n)
            break;
        int64_t e = b + p->piece < p->n ? b + p->piece : p->n;
        p->fn(p->arg, b, e);
    }
}

static void *worker_main(void *arg)
{
    kd_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->generation == seen && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        work_on_job(p);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
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
    p->stopping = 1;
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
    pthread_mutex_lock(&p->run_lock);
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->piece = piece;
    atomic_store(&p->next, 0);
    p->busy = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    work_on_job(p);
    pthread_mutex_lock(&p->lock);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->run_lock);
}
