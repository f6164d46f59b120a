/* Option and output helpers shared by the subcommands and bench (cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kd_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

void kd_cli_bad_option(const char *who, const char *a, const char *v, int known, const char *hint)
{
    if (a[0] != '-')
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", who, a);
    else if (!known)
        fprintf(stderr, "%s: unknown option '%s' (see --help)\n", who, a);
    else if (!v)
        fprintf(stderr, "%s: option '%s' needs a value (see --help)\n", who, a);
    else
        fprintf(stderr, "%s: bad value '%s' for %s%s%s (see --help)\n", who, v, a,
                hint ? ": " : "", hint ? hint : "");
}

int kd_cli_parse_list(const char *s, long long *out, int cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || n == cap || v <= 0 || errno == ERANGE) /* no silent clamp */
            return -1;
        out[n++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

void kd_cli_print_metrics(const kd_context *ctx, const char *fmt, FILE *out)
{
    size_t need = kd_metrics_export(ctx, fmt, NULL, 0) + 1;
    char *buf = malloc(need);
    if (buf) {
        kd_metrics_export(ctx, fmt, buf, need);
        fputs(buf, out);
        free(buf);
    }
}

int kd_cli_any_set(const int *flags, int n)
{
    for (int i = 0; i < n; i++)
        if (flags[i])
            return 1;
    return 0;
}

void kd_cli_none_means_all(int *flags, int n)
{
    if (kd_cli_any_set(flags, n))
        return;
    for (int i = 0; i < n; i++)
        flags[i] = 1;
}

int kd_cli_grow(void *items, int *cap, int n, size_t size)
{
    if (n < *cap)
        return 0;
    int grown = *cap ? 2 * *cap : 64;
    void *p;
    memcpy(&p, items, sizeof p); /* items is the address of a T* */
    p = realloc(p, size * (size_t)grown);
    if (!p)
        return -1;
    memcpy(items, &p, sizeof p);
    *cap = grown;
    return 0;
}

kd_context *kd_cli_context(const char *who)
{
    kd_context *ctx;
    if (kd_context_create(NULL, &ctx) == KD_OK)
        return ctx;
    fprintf(stderr, "%s: %s\n", who, kd_last_error(NULL));
    return NULL;
}
