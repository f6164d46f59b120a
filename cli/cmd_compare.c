/* kdispatch compare: the command line around compare_core.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "compare_core.h"

static void usage(void)
{
    printf(
        "usage: kdispatch compare [options]\n"
        "\n"
        "Runs each op (rmsnorm, rope, swiglu, residual_add, q4k_gemv, q6k_gemv) with its\n"
        "single-row (M = 1) and batched (M > 1) kernel on every backend present and on the\n"
        "cpu's scalar reference path (cpu-scalar), checks each output against a\n"
        "double-precision oracle and every pair of outputs against each other, and prints a\n"
        "table (op, kernel, M, size, backend, vs, max abs error, NMSE, result) and a verdict.\n"
        "A check passes when |a - ref| <= tol * max(1, |ref|) for every value. Each output\n"
        "is filled with NaN before a run, so unwritten values fail.\n"
        "\n"
        "Shapes come from a built-in model shape (--shape) or from a GGUF model file\n"
        "(--gguf): its <arch>.embedding_length, feed_forward_length, attention.head_count and\n"
        "rope.dimension_count (else attention.key_length, else hidden / heads), rms epsilon\n"
        "and rope base; keys that are absent fall back to the tensors' shapes. With a file,\n"
        "the GEMVs run on its Q4_K / Q6_K weights (each Q4_K weight with the Q4_K kernels,\n"
        "each Q6_K one with the Q6_K kernels), rmsnorm on its first norm weight, and a GEMV\n"
        "op with no weight of its type picked runs on random blocks of the model's shape.\n"
        "Model shapes: Q4_K GEMV as the FFN up projection (N = intermediate, K = hidden) and,\n"
        "where hidden and intermediate are multiples of 256, also as the down projection\n"
        "(N = hidden, K = intermediate; Q4_K in about half of a Q4_K_M file's layers); Q6_K\n"
        "as the down projection.\n"
        "\n"
        "options:\n"
        "  --shape NAME      built-in shape: 0.5b, 1.5b, 8b (default 8b)\n"
        "  --gguf FILE       take the shapes and GEMV weights from a GGUF model file\n"
        "  --tensor NAME     with --gguf: check this Q4_K/Q6_K weight (repeatable; default:\n"
        "                    the first weights in file order, alternating Q4_K and Q6_K)\n"
        "  --max-tensors N   with --gguf and no --tensor: at most N weights (default %d)\n"
        "  --rows N          with --gguf: check only each weight's first N output rows\n"
        "                    (the oracle is slow on big weights; default: all rows)\n"
        "  --copy-weights    with --gguf: copy each weight into the library's layout\n"
        "                    (kd_gguf_tensor_copy: the cpu's row groups for rows longer\n"
        "                    than 8192) instead of borrowing the file's bytes in GGUF order\n"
        "  --m LIST          batch sizes M, e.g. 1,8 (default 1,8; at most %d, each at\n"
        "                    most %d; M = 1 runs the single-row kernel, M > 1 the batched one)\n"
        "  --backend LIST    backends to test: cpu,opencl,cuda (default: all present; a\n"
        "                    backend named here but absent is an error)\n"
        "  --op LIST         ops to run (default: all)\n"
        "  --seed N          input seed (default 42; printed, so a run can be repeated)\n"
        "  --tol X           tolerance, a finite number in (0, 1] (default 1e-3)\n"
        "  --skip-missing    a backend the machine has (driver or device installed) that\n"
        "                    did not start is reported, not a failure (default: exit 1)\n"
        "  --json            print one JSON object instead of the table\n"
        "  --metrics json|prom  print the dispatch metrics afterwards (to stderr with --json)\n"
        "  -h, --help        this text\n"
        "\n"
        "Backends and devices: KD_OPENCL_PLATFORM / KD_OPENCL_DEVICE pick the OpenCL device,\n"
        "KD_CUDA_DEVICE the CUDA one (see kdispatch devices).\n"
        "\n"
        "Exit status: 0 every check passed; 1 a check failed (a wrong value, a backend\n"
        "that could not run an op, or an installed backend that did not start); 2 bad usage or unusable inputs (file refused, tensor\n"
        "missing or not Q4_K/Q6_K, requested backend absent).\n",
        KD_COMPARE_DEFAULT_MAX_TENSORS, KD_COMPARE_MAX_M, KD_COMPARE_M_LIMIT);
}

static int lookup_backend(const char *s) { return (int)kd_backend_from_name(s); }
static int lookup_op(const char *s) { return (int)kd_op_from_name(s); }

static int parse_names(const char *s, int *flags, int count, int (*lookup)(const char *))
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int v = lookup(tok);
        if (v < 0 || v >= count)
            return -1;
        flags[v] = 1;
    }
    return 0;
}

/* A whole positive number, or -1 (also when it does not fit: no silent clamp). */
static long long parse_count(const char *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    return end != v && *end == '\0' && n > 0 && errno != ERANGE ? n : -1;
}

/* Each batch size at most KD_COMPARE_M_LIMIT: more rows than any decode batch only
 * exhausts memory. */
static int batch_sizes_ok(const kd_compare_opts *o)
{
    for (int i = 0; i < o->nm; i++)
        if (o->m[i] > KD_COMPARE_M_LIMIT)
            return 0;
    return o->nm > 0;
}

/* One option with a value; 0 if it was parsed, -1 if bad. */
static int parse_value(kd_compare_opts *o, const char *a, const char *v, const char **metrics)
{
    char *end;
    if (strcmp(a, "--shape") == 0)
        return (o->shape = kd_model_shape_find(v)) ? 0 : -1;
    if (strcmp(a, "--gguf") == 0)
        return (o->gguf = v)[0] ? 0 : -1;
    if (strcmp(a, "--tensor") == 0) {
        if (o->ntensors == KD_COMPARE_MAX_TENSORS)
            return -1;
        o->tensors[o->ntensors++] = v;
        return 0;
    }
    if (strcmp(a, "--max-tensors") == 0)
        return (o->max_tensors = (int)parse_count(v)) > 0 &&
                       o->max_tensors <= KD_COMPARE_MAX_TENSORS ? 0 : -1;
    if (strcmp(a, "--rows") == 0)
        return (o->rows = parse_count(v)) > 0 ? 0 : -1;
    if (strcmp(a, "--m") == 0)
        return (o->nm = kd_cli_parse_list(v, o->m, KD_COMPARE_MAX_M)) > 0 && batch_sizes_ok(o)
                   ? 0 : -1;
    if (strcmp(a, "--backend") == 0)
        return parse_names(v, o->use_backend, KD_BACKEND_COUNT, lookup_backend);
    if (strcmp(a, "--op") == 0)
        return parse_names(v, o->use_op, KD_OP_COUNT, lookup_op);
    if (strcmp(a, "--seed") == 0) {
        errno = 0;
        o->seed = strtoull(v, &end, 0);
        return end != v && *end == '\0' && errno != ERANGE && v[0] != '-' ? 0 : -1;
    }
    if (strcmp(a, "--tol") == 0) {
        o->tol = strtod(v, &end);
        return end != v && *end == '\0' && kd_compare_tol_ok(o->tol) ? 0 : -1;
    }
    if (strcmp(a, "--metrics") == 0) {
        *metrics = v;
        return strcmp(v, "json") == 0 || strcmp(v, "prom") == 0 ? 0 : -1;
    }
    return KD_CLI_UNKNOWN;
}

/* 0 parsed, 1 help printed, -1 bad usage (message printed). */
static int parse_args(int argc, char **argv, kd_compare_opts *o, const char **metrics)
{
    kd_compare_opts_init(o);
    *metrics = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (kd_cli_is_help(a)) {
            usage();
            return 1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--skip-missing") == 0) {
            o->skip_missing = 1;
            continue;
        }
        if (strcmp(a, "--copy-weights") == 0) {
            o->copy_weights = 1;
            continue;
        }
        if (!v || parse_value(o, a, v, metrics)) {
            kd_compare_opts scratch = *o; /* is a an option at all? ask without keeping it */
            const char *m = NULL;
            int known = parse_value(&scratch, a, "", &m) != KD_CLI_UNKNOWN;
            kd_cli_bad_option("kdispatch compare", a, v, known,
                              strcmp(a, "--tol") == 0 ? "must be a finite number > 0 and <= 1"
                                                      : NULL);
            return -1;
        }
        i++;
    }
    if (!o->gguf && (o->ntensors || o->rows || o->copy_weights)) {
        fprintf(stderr, "kdispatch compare: --tensor, --rows and --copy-weights need --gguf FILE\n");
        return -1;
    }
    return 0;
}

/* The library's warnings (e.g. a damaged program cache entry that was rebuilt). */
static void print_warnings(const kd_context *ctx)
{
    char buf[2048];
    if (kd_warnings(ctx, buf, sizeof buf) == 0)
        return;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(stderr, "kdispatch: warning: %s\n", line);
}

int kd_cmd_compare(int argc, char **argv)
{
    kd_compare_opts o;
    const char *metrics;
    int parsed = parse_args(argc, argv, &o, &metrics);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    kd_context *ctx = kd_cli_context("kdispatch");
    if (!ctx)
        return 1;
    int rc = kd_compare_run(ctx, &o, stdout);
    print_warnings(ctx);
    /* With --json, stdout stays one JSON document: the metrics go to stderr. */
    if (metrics && rc != 2)
        kd_cli_print_metrics(ctx, metrics, o.json ? stderr : stdout);
    kd_context_destroy(ctx);
    return rc;
}
