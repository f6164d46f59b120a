/* kdispatch: the command-line front end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "commands.h"
#include "kdispatch.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"devices", kd_cmd_devices, "list backends and devices, and why any is missing"},
    {"compare", kd_cmd_compare, "run every op on every backend against the double-precision oracle"},
    {"bench", kd_cmd_bench, "throughput of every op and backend as a fraction of memory bandwidth"},
    {"tune", kd_cmd_tune, "measure the cpu/offload crossover per op and write the dispatcher config"},
    {"gguf", kd_cmd_gguf, "list a GGUF file's metadata and tensors"},
    {"ptx-check", kd_cmd_ptx_check, "check the six batched/single kernel pairs' PTX parity"},
    {"fleet", kd_cmd_fleet, "run a subcommand on every rank of an MPI job, one report (mpirun)"},
};

static void usage(FILE *f)
{
    fprintf(f, "kdispatch %s: portable kernel dispatch runtime for LLM ops\n\n"
               "usage: kdispatch <command> [options]   (kdispatch <command> --help)\n\ncommands:\n",
            kd_version());
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
}

/* Under an address-space limit (ulimit -v), OpenBLAS's worker threads can fail to get
 * their buffers and retry forever, and OpenBLAS's exit handler joins them: the command
 * would print its verdict and never end. OpenBLAS reads OPENBLAS_NUM_THREADS when the
 * program loads, so the command restarts itself once with one BLAS thread (no workers);
 * and under such a limit it ends with _exit after flushing, so no exit handler can wait
 * on a stuck thread. Without a limit nothing changes. */
static int address_space_limited(void)
{
    struct rlimit r;
    return getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY;
}

static void one_blas_thread_under_limit(char **argv)
{
    if (!address_space_limited() || getenv("OPENBLAS_NUM_THREADS"))
        return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
        execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
}

static int finish(int rc)
{
    if (address_space_limited()) {
        fflush(NULL);
        _exit(rc);
    }
    return rc;
}

static int run_command(int argc, char **argv)
{
    if (argc < 2 || kd_cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("kdispatch %s\n", kd_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "kdispatch: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    one_blas_thread_under_limit(argv);
    return finish(run_command(argc, argv));
}
