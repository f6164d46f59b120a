/* kdispatch fleet: the command entry and its options (see fleet.h). */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

static void usage(void)
{
    printf(
        "usage: mpirun -np N kdispatch fleet <devices|compare|bench|ptx-check|tune> [options]\n"
        "\n"
        "Runs the subcommand on every rank of an MPI job (each rank on its own node, with\n"
        "its own backends and the same seeded problems) and prints one report on rank 0:\n"
        "the nodes (host, CPU, SIMD, backends present or absent and why, devices, driver\n"
        "versions), per node x backend x op the compare verdict and errors, the numerical\n"
        "agreement of each kernel across nodes and against the oracle, bench figures as\n"
        "fractions of each node's own bandwidth, and tuned thresholds per node.\n"
        "\n"
        "fleet options (the others go to the subcommand, e.g. compare --shape 0.5b --m 1,4):\n"
        "  --json             print the report as one JSON document (every rank's record)\n"
        "  --csv              print the report as CSV rows (section,rank,node,...)\n"
        "  --plot FILE.png    bench: plot GB/s by node and device (python3 + matplotlib)\n"
        "  --deadline S       seconds each phase may take (default %.0f): a rank that has not\n"
        "                     reported by then is named and the job is aborted\n"
        "  --ranks-per-host N ranks per host that run device work (default 1; the others\n"
        "                     report as idle on a shared host)\n"
        "  --digest N         values per kernel output sent for the agreement (default %d)\n"
        "  -h, --help         this text\n"
        "\n"
        "Environment: KD_FLEET_NODE overrides the node name (then ranks on one machine\n"
        "count as separate hosts). Test hooks: KD_FLEET_TEST_DIE=<rank> kills that rank\n"
        "(SIGKILL) before it reports, KD_FLEET_TEST_HANG=<rank> makes it hang,\n"
        "KD_FLEET_TEST_SKEW=<rank> shifts its agreement values by 1e-2.\n"
        "\n"
        "Exit status: 0 every rank passed and the nodes agree; 1 a rank failed or the\n"
        "nodes disagree; 2 bad usage or built without MPI; a rank that did not report in\n"
        "time aborts the job (MPI_Abort, status 3).\n",
        FLEET_DEFAULT_DEADLINE_S, FLEET_DEFAULT_DIGEST);
}

static const char *const subcommands[] = {"devices", "compare", "bench", "ptx-check", "tune"};

static int known_sub(const char *s)
{
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        if (strcmp(s, subcommands[i]) == 0)
            return 1;
    return 0;
}

static int parse_names(const char *s, int *flags, int count, int is_op)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v = is_op ? (int)kd_op_from_name(tok) : (int)kd_backend_from_name(tok);
        if (v < 0 || v >= count)
            return -1;
        flags[v] = 1;
    }
    return 0;
}

/* A fleet option (consumed): 1 if it was one, -1 if its value is bad, 0 if not fleet's. */
static int fleet_option(kd_fleet_opts *o, const char *a, const char *v, int *used_value)
{
    char *end = NULL;
    *used_value = 0;
    if (strcmp(a, "--json") == 0)
        return o->json = 1;
    if (strcmp(a, "--csv") == 0)
        return o->csv = 1;
    if (strcmp(a, "--plot") != 0 && strcmp(a, "--deadline") != 0 &&
        strcmp(a, "--ranks-per-host") != 0 && strcmp(a, "--digest") != 0)
        return 0;
    if (!v)
        return -1;
    *used_value = 1;
    if (strcmp(a, "--plot") == 0)
        return (o->plot = v)[0] ? 1 : -1;
    if (strcmp(a, "--deadline") == 0) {
        o->deadline_s = strtod(v, &end);
        return *end == '\0' && o->deadline_s > 0 ? 1 : -1;
    }
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 1 << 20)
        return -1;
    if (strcmp(a, "--ranks-per-host") == 0)
        o->ranks_per_host = (int)n;
    else
        o->digest = (int)n;
    return 1;
}

/* The compare options the agreement needs as well (and tune's --op and --backend, to
 * report only the thresholds it tuned); they still go to the subcommand. */
static int peek_compare_option(kd_fleet_opts *o, const char *a, const char *v)
{
    char *end;
    if (!v)
        return 0;
    if (strcmp(a, "--shape") == 0)
        return (o->shape = kd_model_shape_find(v)) ? 0 : -1;
    if (strcmp(a, "--gguf") == 0)
        o->gguf = 1;
    else if (strcmp(a, "--m") == 0)
        return (o->nm = kd_cli_parse_list(v, o->m, KD_COMPARE_MAX_M)) > 0 ? 0 : -1;
    else if (strcmp(a, "--op") == 0)
        return parse_names(v, o->use_op, KD_OP_COUNT, 1);
    else if (strcmp(a, "--backend") == 0)
        return parse_names(v, o->use_backend, KD_BACKEND_COUNT, 0);
    else if (strcmp(a, "--seed") == 0) {
        o->seed = strtoull(v, &end, 0);
        return *end == '\0' ? 0 : -1;
    } else if (strcmp(a, "--tol") == 0) {
        o->tol = strtod(v, &end);
        return *end == '\0' && o->tol > 0 ? 0 : -1;
    }
    return 0;
}

static void opts_init(kd_fleet_opts *o)
{
    kd_compare_opts c;
    kd_compare_opts_init(&c);
    *o = (kd_fleet_opts){.ranks_per_host = 1, .deadline_s = FLEET_DEFAULT_DEADLINE_S,
                         .digest = FLEET_DEFAULT_DIGEST, .shape = c.shape, .nm = c.nm,
                         .seed = c.seed, .tol = c.tol};
    memcpy(o->m, c.m, sizeof o->m);
}

int kd_fleet_parse(int argc, char **argv, kd_fleet_opts *o, int print_help)
{
    opts_init(o);
    if (argc < 2 || kd_cli_is_help(argv[1])) {
        if (print_help)
            usage();
        return argc < 2 ? -1 : 1;
    }
    if (!known_sub(argv[1])) {
        fprintf(stderr, "kdispatch fleet: unknown subcommand '%s' (devices, compare, bench, "
                "ptx-check, tune)\n", argv[1]);
        return -1;
    }
    o->sub = argv[1];
    o->sub_argv[o->sub_argc++] = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 0, f = fleet_option(o, a, v, &used);
        int peek = strcmp(o->sub, "compare") == 0 || strcmp(o->sub, "tune") == 0;
        if (f < 0 || (f == 0 && peek && peek_compare_option(o, a, v))) {
            /* a fleet option, or one of the subcommand's that fleet reads too: known
             * (names fleet does not know go to the subcommand, which reports them) */
            kd_cli_bad_option("kdispatch fleet", a, v, 1, NULL);
            return -1;
        }
        if (f == 0 && kd_cli_is_help(a)) {
            if (print_help)
                usage();
            return 1;
        }
        if (f == 0 && o->sub_argc < FLEET_MAX_ARGS - 8) /* room for what fleet adds */
            o->sub_argv[o->sub_argc++] = argv[i];
        i += used;
    }
    return 0;
}

void kd_fleet_node_name(char *node, size_t cap, char *host, size_t host_cap)
{
    if (gethostname(host, host_cap) != 0)
        snprintf(host, host_cap, "unknown-host");
    host[host_cap - 1] = '\0';
    const char *over = getenv("KD_FLEET_NODE");
    snprintf(node, cap, "%s", over && over[0] ? over : host);
}

int kd_cmd_fleet(int argc, char **argv)
{
#ifdef KD_HAVE_MPI
    return kd_fleet_mpi_main(argc, argv);
#else
    if (argc >= 2 && kd_cli_is_help(argv[1]))
        usage();
    fprintf(stderr, "kdispatch fleet: built without MPI (Open MPI not found at build time: "
            "apt-get install libopenmpi-dev openmpi-bin)\n");
    return 2;
#endif
}
