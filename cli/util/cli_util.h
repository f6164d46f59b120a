/* Option and output helpers shared by the command's subcommands and bench (a leaf: it
 * needs only the public library, so bench links it without linking the command). */
#ifndef KD_CLI_UTIL_H
#define KD_CLI_UTIL_H

#include <stdio.h>

#include "kdispatch.h"

/* --help, -h or help. */
int kd_cli_is_help(const char *arg);
/* What an option parser returns for a name it does not know (a bad value: -1). */
#define KD_CLI_UNKNOWN (-2)
/* Says on stderr why option a (with the next word v, NULL at the end) was refused:
 * "who: unexpected argument 'a'" (no leading -), "unknown option 'a'" (known = 0),
 * "option 'a' needs a value" (v NULL), else "bad value 'v' for a" and the hint if any;
 * each with "(see --help)". known: 1 an option of the command, 0 not. */
void kd_cli_bad_option(const char *who, const char *a, const char *v, int known, const char *hint);
/* Parses "1,8" into up to cap values; returns the count or -1. */
int kd_cli_parse_list(const char *s, long long *out, int cap);
/* The context's metrics in fmt ("json" or "prometheus", kd_metrics_export) to out. */
void kd_cli_print_metrics(const kd_context *ctx, const char *fmt, FILE *out);

/* A context with the default options (the environment, the config file), or NULL with
 * the reason on stderr behind who ("kdispatch", "kdispatch tune"). */
kd_context *kd_cli_context(const char *who);
/* 1 if any of the n flags is set. */
int kd_cli_any_set(const int *flags, int n);
/* A selection where none set means all: sets all n flags when none is set. */
void kd_cli_none_means_all(int *flags, int n);
/* Room for one more element in a growing array: *items (a pointer to elements of size
 * bytes) holds *cap, n of them used; doubles it (first: 64) when full. -1 if out of
 * memory (then the array is as it was). */
int kd_cli_grow(void *items, int *cap, int n, size_t size);

#endif
