/*
 * kdispatch fleet over MPI: which ranks share a host, the seed from rank 0, each rank's
 * record gathered to rank 0 (its length by a point-to-point message rank 0 can wait on
 * with a clock, then the bytes by MPI_Igatherv), and a deadline on every phase: a rank
 * that has not reported in time is named and the job aborted, so nothing hangs.
 */
#include "fleet.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAG_LENGTH 7101
#define POLL_NS 5000000L          /* 5 ms between tests of pending receives */
#define OWN_WORK_GRACE_S 5.0      /* a rank's own alarm fires this long after rank 0's clock */
#define ABORT_STATUS 3

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void pause_poll(void)
{
    struct timespec d = {0, POLL_NS};
    nanosleep(&d, NULL);
}

/* ---- a rank's own watchdog: its own work may not outlive the deadline ----------------------- */

static char alarm_message[256];

static void on_alarm(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, alarm_message, strlen(alarm_message));
    (void)w;
    _exit(ABORT_STATUS); /* mpirun sees the rank end without MPI_Finalize and ends the job */
}

static void arm_watchdog(const kd_fleet_identity *id, double seconds)
{
    snprintf(alarm_message, sizeof alarm_message,
             "kdispatch fleet: rank %d (node %s, host %s) did not finish its own work within "
             "the deadline (%.0f s): ending it\n", id->rank, id->node, id->hostname, seconds);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)ceil(seconds));
}

/* ---- who is where ---------------------------------------------------------------------------- */

/* Ranks on one shared-memory node with the same node name form a host; the first
 * ranks_per_host of them do device work. */
static int find_host(kd_fleet_identity *id, int ranks_per_host)
{
    MPI_Comm shm, host;
    int srank, ssize;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, id->rank, MPI_INFO_NULL, &shm))
        return -1;
    MPI_Comm_rank(shm, &srank);
    MPI_Comm_size(shm, &ssize);
    char *names = malloc((size_t)ssize * FLEET_NAME_MAX);
    if (!names)
        return -1;
    MPI_Allgather(id->node, FLEET_NAME_MAX, MPI_CHAR, names, FLEET_NAME_MAX, MPI_CHAR, shm);
    int color = 0;
    while (strncmp(names + (size_t)color * FLEET_NAME_MAX, id->node, FLEET_NAME_MAX))
        color++;
    free(names);
    MPI_Comm_split(shm, color, srank, &host);
    MPI_Comm_rank(host, &id->host_rank);
    MPI_Comm_size(host, &id->host_size);
    id->worker = id->host_rank < ranks_per_host;
    MPI_Comm_free(&host);
    MPI_Comm_free(&shm);
    return 0;
}

/* ---- test hooks ---------------------------------------------------------------------------- */

static int hook_is_me(const char *env, int rank)
{
    const char *v = getenv(env);
    return v && *v && atoi(v) == rank;
}

/* KD_FLEET_TEST_DIE / _HANG: this rank dies or hangs before it reports (the tests of the
 * deadline and of a rank killed mid-run). */
static void test_hooks(int rank)
{
    if (hook_is_me("KD_FLEET_TEST_DIE", rank)) {
        fprintf(stderr, "kdispatch fleet: rank %d: KD_FLEET_TEST_DIE: killing myself\n", rank);
        fflush(stderr);
        raise(SIGKILL);
    }
    if (hook_is_me("KD_FLEET_TEST_HANG", rank)) {
        fprintf(stderr, "kdispatch fleet: rank %d: KD_FLEET_TEST_HANG: hanging\n", rank);
        fflush(stderr);
        for (;;)
            pause();
    }
}

/* ---- gathering on rank 0 ----------------------------------------------------------------------- */

static const char *name_at(const char *names, int r) { return names + (size_t)r * 2 * FLEET_NAME_MAX; }

static void abort_missing(const char *phase, const int *done, int n, const char *names,
                          double deadline)
{
    fprintf(stderr, "kdispatch fleet: deadline (%.0f s) passed in phase '%s'; these ranks did "
            "not report:\n", deadline, phase);
    for (int r = 0; r < n; r++)
        if (!done[r])
            fprintf(stderr, "  rank %d (node %s, host %s)\n", r, name_at(names, r),
                    name_at(names, r) + FLEET_NAME_MAX);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, ABORT_STATUS);
}

/* Rank 0: every rank's record length, waited for until the deadline. */
static void wait_lengths(long long *lens, MPI_Request *req, int n, const char *names, double t0,
                         double deadline)
{
    int *done = calloc((size_t)n, sizeof *done), *idx = malloc(sizeof(int) * (size_t)n);
    int left = n - 1;
    if (!done || !idx) {
        fprintf(stderr, "kdispatch fleet: out of memory waiting for %d ranks\n", n);
        MPI_Abort(MPI_COMM_WORLD, ABORT_STATUS);
    }
    done[0] = 1;
    (void)lens; /* filled in by the receives */
    while (left > 0) {
        int got = 0;
        if (MPI_Testsome(n - 1, req + 1, &got, idx, MPI_STATUSES_IGNORE) == MPI_SUCCESS &&
            got != MPI_UNDEFINED)
            for (int k = 0; k < got; k++, left--)
                done[idx[k] + 1] = 1;
        if (left > 0 && now_s() - t0 > deadline)
            abort_missing("work", done, n, names, deadline);
        if (left > 0)
            pause_poll();
    }
    free(done);
    free(idx);
}

/* Rank 0's receive layout; -1 if the records do not fit MPI's int counts. */
static int layout(const long long *lens, int n, int *counts, int *displs, long long *total)
{
    *total = 0;
    for (int r = 0; r < n; r++) {
        if (lens[r] < 0 || *total + lens[r] > INT_MAX)
            return -1;
        counts[r] = (int)lens[r];
        displs[r] = (int)*total;
        *total += lens[r];
    }
    return 0;
}

static void wait_request(MPI_Request *req, const char *phase, int n, const char *names,
                         double deadline)
{
    double t0 = now_s();
    int flag = 0;
    while (MPI_Test(req, &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && !flag) {
        if (now_s() - t0 > deadline) {
            fprintf(stderr, "kdispatch fleet: deadline (%.0f s) passed in phase '%s' (every rank "
                    "had reported its length; the byte gather did not complete)\n", deadline,
                    phase);
            MPI_Abort(MPI_COMM_WORLD, ABORT_STATUS);
        }
        pause_poll();
    }
}

/* ---- the command --------------------------------------------------------------------------- */

static int root_report(const kd_fleet_opts *o, char *rec, long long len, MPI_Request *req,
                       long long *lens, const char *names, int n, double t0)
{
    wait_lengths(lens, req, n, names, t0, o->deadline_s);
    int *counts = malloc(sizeof(int) * (size_t)n), *displs = malloc(sizeof(int) * (size_t)n);
    long long total = 0;
    if (!counts || !displs || layout(lens, n, counts, displs, &total)) {
        fprintf(stderr, "kdispatch fleet: the records (%d ranks) do not fit one gather\n", n);
        MPI_Abort(MPI_COMM_WORLD, ABORT_STATUS);
    }
    char *all = malloc((size_t)total + 1);
    MPI_Request g;
    MPI_Igatherv(rec, (int)len, MPI_CHAR, all, counts, displs, MPI_CHAR, 0, MPI_COMM_WORLD, &g);
    wait_request(&g, "gather", n, names, o->deadline_s);
    char **records = malloc(sizeof(char *) * (size_t)n);
    size_t *sizes = malloc(sizeof(size_t) * (size_t)n);
    for (int r = 0; r < n; r++) {
        records[r] = counts[r] > 0 ? all + displs[r] : NULL;
        sizes[r] = (size_t)counts[r];
    }
    int rc = kd_fleet_report(o, records, sizes, n);
    free(records);
    free(sizes);
    free(all);
    free(counts);
    free(displs);
    return rc;
}

static void identify(kd_fleet_identity *id, int ranks_per_host)
{
    MPI_Comm_rank(MPI_COMM_WORLD, &id->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &id->size);
    kd_fleet_node_name(id->node, sizeof id->node, id->hostname, sizeof id->hostname);
    if (find_host(id, ranks_per_host)) {
        fprintf(stderr, "kdispatch fleet: rank %d: cannot group the ranks by host\n", id->rank);
        MPI_Abort(MPI_COMM_WORLD, ABORT_STATUS);
    }
}

int kd_fleet_mpi_main(int argc, char **argv)
{
    MPI_Init(NULL, NULL);
    kd_fleet_identity id = {0};
    MPI_Comm_rank(MPI_COMM_WORLD, &id.rank);
    kd_fleet_opts o;
    int parsed = kd_fleet_parse(argc, argv, &o, id.rank == 0);
    if (parsed) {
        MPI_Finalize();
        return parsed > 0 ? 0 : 2;
    }
    double t0 = now_s();
    identify(&id, o.ranks_per_host);
    MPI_Bcast(&o.seed, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    /* node and host names on rank 0, to name a rank that does not report */
    char mine[2 * FLEET_NAME_MAX] = {0}, *names = NULL;
    snprintf(mine, FLEET_NAME_MAX, "%s", id.node);
    snprintf(mine + FLEET_NAME_MAX, FLEET_NAME_MAX, "%s", id.hostname);
    if (id.rank == 0 && !(names = calloc((size_t)id.size, sizeof mine)))
        MPI_Abort(MPI_COMM_WORLD, ABORT_STATUS);
    MPI_Gather(mine, (int)sizeof mine, MPI_CHAR, names, (int)sizeof mine, MPI_CHAR, 0,
               MPI_COMM_WORLD);

    long long *lens = NULL;
    MPI_Request *req = NULL;
    if (id.rank == 0) { /* posted first: rank 0's own work does not delay the others */
        lens = calloc((size_t)id.size, sizeof *lens);
        req = calloc((size_t)id.size, sizeof *req);
        for (int r = 1; r < id.size; r++)
            MPI_Irecv(&lens[r], 1, MPI_LONG_LONG, r, TAG_LENGTH, MPI_COMM_WORLD, &req[r]);
    }
    arm_watchdog(&id, o.deadline_s + (id.rank ? OWN_WORK_GRACE_S : 0));
    size_t len = 0;
    char *rec = kd_fleet_local_record(&o, &id, &len);
    test_hooks(id.rank); /* inside the watchdog's window, as a real hang would be */
    alarm(0);
    if (!rec) {
        fprintf(stderr, "kdispatch fleet: rank %d: out of memory for its record\n", id.rank);
        len = 0;
    }
    long long my_len = (long long)len;
    int rc = 0;
    if (id.rank == 0) {
        lens[0] = my_len;
        rc = root_report(&o, rec, my_len, req, lens, names, id.size, t0);
    } else {
        MPI_Send(&my_len, 1, MPI_LONG_LONG, 0, TAG_LENGTH, MPI_COMM_WORLD);
        MPI_Request g;
        MPI_Igatherv(rec, (int)len, MPI_CHAR, NULL, NULL, NULL, MPI_CHAR, 0, MPI_COMM_WORLD, &g);
        MPI_Wait(&g, MPI_STATUS_IGNORE);
    }
    free(rec);
    free(lens);
    free(req);
    free(names);
    MPI_Finalize();
    return rc;
}
