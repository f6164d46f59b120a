/*
 * kdispatch fleet: one subcommand (devices, compare, bench, ptx-check, tune) on every rank
 * of an MPI job, one report from rank 0 (SPEC section 10).
 *
 *   fleet.c         the command entry; without MPI it says so and fails
 *   fleet_local.c   what one rank does: its node's facts, the subcommand run in-process
 *                   with its JSON captured, the agreement digests; the rank's JSON record
 *   fleet_report.c  rank 0: the records of every rank into text, JSON, CSV and a plot
 *   fleet_mpi.c     MPI: host grouping, seed broadcast, gather with a deadline
 *   fleet_json.c    a small JSON reader for the records
 */
#ifndef KD_CLI_FLEET_H
#define KD_CLI_FLEET_H

#include <stddef.h>

#include "compare_core.h"

#define FLEET_MAX_ARGS 128
#define FLEET_NAME_MAX 64
#define FLEET_DEFAULT_DEADLINE_S 300.0
#define FLEET_DEFAULT_DIGEST 16

typedef struct kd_fleet_opts {
    const char *sub;                /* devices, compare, bench, ptx-check, tune */
    char *sub_argv[FLEET_MAX_ARGS]; /* the subcommand's own options (argv[0] = sub) */
    int sub_argc;
    int ranks_per_host;             /* ranks per host that run device work (default 1) */
    double deadline_s;              /* per phase */
    int json, csv;                  /* report format (default text) */
    const char *plot;               /* --plot FILE.png */
    int digest;                     /* values per kernel output sent for agreement */
    /* compare's options that fleet needs too (the agreement runs the same problems) */
    const kd_model_shape *shape;
    int gguf;                       /* compare runs on a model file: agreement uses --shape */
    long long m[KD_COMPARE_MAX_M];
    int nm;
    int use_op[KD_OP_COUNT];
    int use_backend[KD_BACKEND_COUNT];
    unsigned long long seed;
    double tol;
} kd_fleet_opts;

/* Who this rank is. */
typedef struct kd_fleet_identity {
    int rank, size;
    int host_rank, host_size;       /* place among the ranks of its host, and their count */
    int worker;                     /* 1: runs device work; 0: idle on a shared host */
    char node[FLEET_NAME_MAX];      /* KD_FLEET_NODE, else the host name */
    char hostname[FLEET_NAME_MAX];
} kd_fleet_identity;

/* 0 parsed, 1 help printed (print_help set), -1 bad usage (message printed). */
int kd_fleet_parse(int argc, char **argv, kd_fleet_opts *o, int print_help);

/* The node name: KD_FLEET_NODE if set, else gethostname. */
void kd_fleet_node_name(char *node, size_t cap, char *host, size_t host_cap);

/* Runs this rank's part and returns its record, a JSON object (malloc'd, *len bytes). */
char *kd_fleet_local_record(const kd_fleet_opts *o, const kd_fleet_identity *id, size_t *len);

/* Rank 0: the report from every rank's record (NULL where a rank sent none) to stdout in
 * the format asked. Returns the exit status: 0 every rank passed and the nodes agree; 1 a
 * rank failed, is missing, or the nodes disagree. */
int kd_fleet_report(const kd_fleet_opts *o, char *const *records, const size_t *lens, int n);

#ifdef KD_HAVE_MPI
int kd_fleet_mpi_main(int argc, char **argv);
#endif

#endif
