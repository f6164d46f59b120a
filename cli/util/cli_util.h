/* Option and output helpers shared by the command's subcommands and bench (a leaf: it
 * needs only the public library, so bench links it without linking the command). */
#ifndef KD_CLI_UTIL_H
#define KD_CLI_UTIL_H

#include <stdio.h>

#include "kdispatch.h"

/* --help, -h or help. */
int kd_cli_is_help(const char *arg);
/* Parses "1,8" into up to cap values; returns the count or -1. */
int kd_cli_parse_list(const char *s, long long *out, int cap);
/* The context's metrics in fmt ("json" or "prometheus", kd_metrics_export) to out. */
void kd_cli_print_metrics(const kd_context *ctx, const char *fmt, FILE *out);

#endif
