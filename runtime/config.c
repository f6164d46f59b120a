/* Dispatcher configuration and the decision itself: see config.h. */
#include "config.h"
#include "file_util.h"
#include "kd_backend.h"
#include "op_traits.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

#define ENV_PREFIX "KD_THRESHOLD_"

static int is_offload_backend(kd_backend_id b)
{
    const kd_backend_ops *ops = kd_backend_ops_of(b);
    return ops && ops->is_offload;
}

uint64_t kd_op_data_size(kd_op op, int64_t m, int64_t n, int64_t k)
{
    if (m <= 0 || n <= 0 || (kd_op_is_gemv(op) && k <= 0))
        return 0;
    uint64_t size = (uint64_t)m;
    if ((uint64_t)n > UINT64_MAX / size)
        return UINT64_MAX;
    size *= (uint64_t)n;
    if (kd_op_is_gemv(op)) {
        if ((uint64_t)k > UINT64_MAX / size)
            return UINT64_MAX;
        size *= (uint64_t)k;
    }
    return size;
}

/* Defaults, until `kdispatch tune` measures this machine: each backend's table holds them
 * (kd_backend.h); a backend that is not built, or has none, never offloads by default. */
uint64_t kd_config_default_threshold(kd_op op, kd_backend_id b, int is_gpu)
{
    const kd_backend_ops *ops = kd_backend_ops_of(b);
    if (!ops || !ops->is_offload || ops->not_built || (unsigned)op >= KD_OP_COUNT)
        return KD_THRESHOLD_NEVER;
    const kd_backend_device_kind *d = &ops->device[is_gpu != 0];
    uint64_t t = kd_op_is_gemv(op) ? d->threshold_gemv : d->threshold_rowwise;
    return t ? t : KD_THRESHOLD_NEVER;
}

void kd_config_defaults(kd_config *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->forced = KD_BACKEND_AUTO;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        const kd_backend_ops *ops = kd_backend_ops_of((kd_backend_id)b);
        int gpu = ops && ops->assumed_gpu; /* until the device is known */
        for (int op = 0; op < KD_OP_COUNT; op++) /* cpu and unregistered ids: never */
            c->threshold[op][b] = kd_config_default_threshold((kd_op)op, (kd_backend_id)b, gpu);
    }
}

void kd_config_use_device_defaults(kd_config *c, kd_backend_id b, int is_gpu)
{
    if (!c || !is_offload_backend(b))
        return;
    for (int op = 0; op < KD_OP_COUNT; op++)
        if (c->source[op][b] == KD_SRC_DEFAULT)
            c->threshold[op][b] = kd_config_default_threshold((kd_op)op, b, is_gpu);
}

int kd_config_parse_threshold(const char *s, uint64_t *out)
{
    if (!s || !out)
        return -1;
    if (strcmp(s, "never") == 0) {
        *out = KD_THRESHOLD_NEVER;
        return 0;
    }
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0) /* the contract's domain: gpu_threshold > 0 */
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* ---- config file ------------------------------------------------------------------ */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static void list_ops(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int op = 0; op < KD_OP_COUNT && len < cap; op++) {
        int n = snprintf(buf + len, cap - len, "%s%s", op ? ", " : "", kd_op_name((kd_op)op));
        if (n > 0)
            len += (size_t)n;
    }
}

/* "threshold.<op>.<backend>" -> op, backend; 0 on success, else the reason in why. */
static int parse_threshold_key(const char *key, kd_op *op, kd_backend_id *b, char *why,
                               size_t cap)
{
    char buf[128];
    if (snprintf(buf, sizeof buf, "%s", key + strlen("threshold.")) >= (int)sizeof buf) {
        snprintf(why, cap, "key '%.40s...' is too long", key);
        return -1;
    }
    char *dot = strrchr(buf, '.');
    if (!dot) {
        snprintf(why, cap, "key '%s' must be threshold.<op>.<opencl|cuda>", key);
        return -1;
    }
    *dot = '\0';
    *op = kd_op_from_name(buf);
    if (*op == KD_OP_COUNT) {
        char ops[160];
        list_ops(ops, sizeof ops);
        snprintf(why, cap, "unknown op '%s' in '%s' (ops: %s)", buf, key, ops);
        return -1;
    }
    *b = kd_backend_from_name(dot + 1);
    if (*b == KD_BACKEND_CPU) {
        snprintf(why, cap, "'%s': cpu has no threshold (an op runs on cpu when its size is "
                           "at or below the offload backend's threshold)", key);
        return -1;
    }
    if (!is_offload_backend(*b)) {
        snprintf(why, cap, "unknown backend '%s' in '%s' (opencl or cuda)", dot + 1, key);
        return -1;
    }
    return 0;
}

static int apply_setting(kd_config *c, const char *key, const char *val, char *why, size_t cap)
{
    if (strcmp(key, "backend") == 0) {
        kd_backend_id b = kd_backend_from_name(val);
        if (b == KD_BACKEND_COUNT) {
            snprintf(why, cap, "backend must be auto, cpu, opencl or cuda, not '%s'", val);
            return -1;
        }
        c->forced = b;
        return 0;
    }
    if (strncmp(key, "threshold.", strlen("threshold.")) != 0) {
        snprintf(why, cap, "unknown key '%s' (expected threshold.<op>.<opencl|cuda> or backend)",
                 key);
        return -1;
    }
    kd_op op;
    kd_backend_id b;
    if (parse_threshold_key(key, &op, &b, why, cap))
        return -1;
    uint64_t v;
    if (kd_config_parse_threshold(val, &v)) {
        snprintf(why, cap, "%s: '%s' is not a whole number > 0 or 'never'", key, val);
        return -1;
    }
    c->threshold[op][b] = v;
    c->source[op][b] = KD_SRC_FILE;
    return 0;
}

/* One line of the file; 0 when fine or blank, else the reason in why. */
static int apply_line(kd_config *c, char *line, char *why, size_t cap)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(line);
    if (!*s)
        return 0;
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(why, cap, "expected 'key = value', got '%s'", s);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key || !*val) {
        snprintf(why, cap, "expected 'key = value': %s is empty", *key ? "the value" : "the key");
        return -1;
    }
    return apply_setting(c, key, val, why, cap);
}

#define KD_CONFIG_MAX_BYTES ((size_t)1 << 20) /* a larger "config" is not one */
#define KD_CONFIG_MAX_LINE 1022

/* Applies every line of text (size bytes) to c: 0, or -1 with why and the line number in
 * *lineno. One pass over a buffer already in memory: it cannot loop, and a NUL byte is an
 * error with its line, not the silent end of the line. */
static int apply_text(kd_config *c, const char *text, size_t size, int *lineno, char *why,
                      size_t cap)
{
    char line[KD_CONFIG_MAX_LINE + 2];
    size_t at = 0;
    *lineno = 0;
    while (at < size) {
        const char *start = text + at;
        const char *nl = memchr(start, '\n', size - at);
        size_t len = nl ? (size_t)(nl - start) : size - at;
        ++*lineno;
        at += len + (nl != NULL);
        if (memchr(start, '\0', len)) {
            snprintf(why, cap, "NUL byte at column %zu (not a text file?)",
                     (size_t)((const char *)memchr(start, '\0', len) - start) + 1);
            return -1;
        }
        if (len > KD_CONFIG_MAX_LINE) {
            snprintf(why, cap, "line longer than %d characters", KD_CONFIG_MAX_LINE);
            return -1;
        }
        memcpy(line, start, len);
        line[len] = '\0';
        if (apply_line(c, line, why, cap) != 0)
            return -1;
    }
    return 0;
}

kd_status kd_config_load_file(kd_config *c, const char *path, char *why, size_t cap)
{
    char scratch[8];
    if (!why || !cap) {
        why = scratch;
        cap = sizeof scratch;
    }
    if (!c || !path) {
        snprintf(why, cap, "config: NULL argument");
        return KD_ERR_NULL;
    }
    char *text = NULL, what[512];
    size_t size = 0;
    /* a FIFO, /dev/zero or a directory is refused before a byte is read */
    if (kd_read_regular_file(path, KD_CONFIG_MAX_BYTES, &text, &size, what, sizeof what)) {
        snprintf(why, cap, "%s", what);
        return errno == ENOMEM ? KD_ERR_NOMEM : KD_ERR_IO;
    }
    kd_config next = *c; /* committed only when every line is good */
    int lineno = 0, bad = apply_text(&next, text, size, &lineno, what, sizeof what);
    free(text);
    if (bad) {
        snprintf(why, cap, "%s:%d: %s", path, lineno, what);
        return KD_ERR_FORMAT;
    }
    snprintf(next.file, sizeof next.file, "%s", path);
    *c = next;
    return KD_OK;
}

/* ---- environment ------------------------------------------------------------------ */

/* "KD_THRESHOLD_<OP>_<BACKEND>=value" -> threshold; 0 on success. */
static int apply_env_threshold(kd_config *c, const char *entry, char *why, size_t cap)
{
    const char *eq = strchr(entry, '=');
    char name[128];
    size_t name_len = (size_t)(eq - entry);
    if (name_len >= sizeof name) {
        snprintf(why, cap, "%.40s...: name too long", entry);
        return -1;
    }
    memcpy(name, entry, name_len);
    name[name_len] = '\0';
    const char *val = eq + 1;
    char *rest = name + strlen(ENV_PREFIX), *us = strrchr(rest, '_');
    if (!us || us == rest) {
        snprintf(why, cap, "%s: expected KD_THRESHOLD_<OP>_<OPENCL|CUDA>", name);
        return -1;
    }
    char key[160];
    *us = '\0';
    snprintf(key, sizeof key, "threshold.%s.%s", rest, us + 1);
    *us = '_';
    for (char *p = key; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    kd_op op;
    kd_backend_id b;
    char reason[256];
    if (parse_threshold_key(key, &op, &b, reason, sizeof reason)) {
        snprintf(why, cap, "%s: %s", name, reason);
        return -1;
    }
    uint64_t v;
    if (kd_config_parse_threshold(val, &v)) {
        snprintf(why, cap, "%s='%s' is not a whole number > 0 or 'never'", name, val);
        return -1;
    }
    c->threshold[op][b] = v;
    c->source[op][b] = KD_SRC_ENV;
    return 0;
}

kd_status kd_config_apply_env(kd_config *c, char *why, size_t cap)
{
    char scratch[8];
    if (!why || !cap) {
        why = scratch;
        cap = sizeof scratch;
    }
    if (!c) {
        snprintf(why, cap, "config: NULL argument");
        return KD_ERR_NULL;
    }
    kd_config next = *c;
    const char *forced = getenv("KD_BACKEND");
    if (forced && forced[0]) {
        kd_backend_id b = kd_backend_from_name(forced);
        if (b == KD_BACKEND_COUNT) {
            snprintf(why, cap, "KD_BACKEND='%s' is not auto, cpu, opencl or cuda", forced);
            return KD_ERR_ARG;
        }
        next.forced = b;
    }
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) == 0 && strchr(*e, '=') &&
            apply_env_threshold(&next, *e, why, cap))
            return KD_ERR_ARG;
    *c = next;
    return KD_OK;
}

/* ---- writing ---------------------------------------------------------------------- */

static void write_comment(FILE *f, const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(f, "# %.*s\n", len, text);
        text = nl ? nl + 1 : NULL;
    }
}

static void write_threshold(FILE *f, kd_op op, kd_backend_id b, uint64_t v)
{
    if (v == KD_THRESHOLD_NEVER)
        fprintf(f, "threshold.%s.%s = never\n", kd_op_name(op), kd_backend_name(b));
    else
        fprintf(f, "threshold.%s.%s = %llu\n", kd_op_name(op), kd_backend_name(b),
                (unsigned long long)v);
}

kd_status kd_config_write_file(const kd_config *c, const char *path, const char *header_comment,
                               char *why, size_t cap)
{
    char scratch[8];
    if (!why || !cap) {
        why = scratch;
        cap = sizeof scratch;
    }
    if (!c || !path) {
        snprintf(why, cap, "config: NULL argument");
        return KD_ERR_NULL;
    }
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(why, cap, "path too long: %s", path);
        return KD_ERR_ARG;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(why, cap, "cannot write '%s': %s", tmp, strerror(errno));
        return KD_ERR_IO;
    }
    write_comment(f, header_comment);
    fprintf(f, "# kdispatch dispatcher config: an op runs on the offload backend when its\n"
               "# data_size (elements; GEMV: M*N*K) is > threshold.<op>.<backend>, else on cpu.\n"
               "# 'never' keeps the op on cpu. Environment variables override this file:\n"
               "# KD_BACKEND=cpu|opencl|cuda, KD_THRESHOLD_<OP>_<BACKEND>=N.\n");
    fprintf(f, "backend = %s\n", c->forced == KD_BACKEND_AUTO ? "auto" : kd_backend_name(c->forced));
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int b = 0; b < KD_BACKEND_COUNT; b++)
            if (is_offload_backend((kd_backend_id)b))
                write_threshold(f, (kd_op)op, (kd_backend_id)b, c->threshold[op][b]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        snprintf(why, cap, "error writing '%s'", tmp);
        return KD_ERR_IO;
    }
    if (rename(tmp, path) != 0) {
        snprintf(why, cap, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        remove(tmp);
        return KD_ERR_IO;
    }
    return KD_OK;
}

/* ---- the decision ----------------------------------------------------------------- */

kd_backend_id kd_dispatch_choose(const kd_config *c, kd_op op, uint64_t data_size,
                                 kd_backend_id offload)
{
    if (!c)
        return KD_BACKEND_CPU;
    if (c->forced != KD_BACKEND_AUTO)
        return c->forced;
    if ((unsigned)op >= KD_OP_COUNT || !is_offload_backend(offload))
        return KD_BACKEND_CPU;
    return data_size > c->threshold[op][offload] ? offload : KD_BACKEND_CPU;
}
