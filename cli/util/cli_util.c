/* Option and output helpers shared by the subcommands and bench (cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kd_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
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
