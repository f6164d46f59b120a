/* Dispatcher configuration and the decision itself: see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t kd_op_data_size(kd_op op, int64_t m, int64_t n, int64_t k)
{
    uint64_t size = (uint64_t)m * (uint64_t)n;
    return op == KD_OP_Q4K_GEMV || op == KD_OP_Q6K_GEMV ? size * (uint64_t)k : size;
}

/* Defaults: a CUDA GPU wins once the op is a few hundred microseconds of cpu work (launch
 * and sync cost ~10 us); an OpenCL device is assumed to be PoCL on this same cpu unless
 * tuned, so it is only chosen for very large ops. `kdispatch tune` measures real ones. */
void kd_config_defaults(kd_config *c)
{
    memset(c, 0, sizeof *c);
    c->forced = KD_BACKEND_AUTO;
    for (int op = 0; op < KD_OP_COUNT; op++) {
        int gemv = op == KD_OP_Q4K_GEMV || op == KD_OP_Q6K_GEMV;
        c->threshold[op][KD_BACKEND_CPU] = UINT64_MAX;
        c->threshold[op][KD_BACKEND_CUDA] = gemv ? (UINT64_C(1) << 24) : (UINT64_C(1) << 18);
        c->threshold[op][KD_BACKEND_OPENCL] = gemv ? (UINT64_C(1) << 32) : (UINT64_C(1) << 26);
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* "threshold.<op>.<backend>" -> op, backend; 0 on success. */
static int parse_threshold_key(const char *key, kd_op *op, kd_backend_id *b)
{
    char buf[128];
    if (strncmp(key, "threshold.", 10) != 0 || snprintf(buf, sizeof buf, "%s", key + 10) >= (int)sizeof buf)
        return -1;
    char *dot = strrchr(buf, '.');
    if (!dot)
        return -1;
    *dot = '\0';
    *op = kd_op_from_name(buf);
    *b = kd_backend_from_name(dot + 1);
    return *op == KD_OP_COUNT || (unsigned)*b >= KD_BACKEND_COUNT || *b == KD_BACKEND_CPU ? -1 : 0;
}

static int apply_line(kd_config *c, char *line, char *why, size_t cap, const char *where)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(line);
    if (!*s)
        return 0;
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(why, cap, "%s: expected 'key = value'", where);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    kd_op op;
    kd_backend_id b;
    uint64_t v;
    if (strcmp(key, "backend") == 0) {
        b = kd_backend_from_name(val);
        if (b == KD_BACKEND_COUNT) {
            snprintf(why, cap, "%s: backend '%s' is not auto, cpu, opencl or cuda", where, val);
            return -1;
        }
        c->forced = b;
    } else if (parse_threshold_key(key, &op, &b) == 0) {
        if (parse_u64(val, &v)) {
            snprintf(why, cap, "%s: threshold '%s' is not a non-negative integer", where, val);
            return -1;
        }
        c->threshold[op][b] = v;
    } else {
        snprintf(why, cap, "%s: unknown key '%s' (threshold.<op>.<opencl|cuda> or backend)", where, key);
        return -1;
    }
    return 0;
}

kd_status kd_config_load_file(kd_config *c, const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, cap, "cannot open %s: %s", path, strerror(errno));
        return KD_ERR_IO;
    }
    char line[512], where[600];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        rc = apply_line(c, line, why, cap, where);
    }
    fclose(f);
    if (rc)
        return KD_ERR_FORMAT;
    snprintf(c->file, sizeof c->file, "%s", path);
    return KD_OK;
}

kd_status kd_config_apply_env(kd_config *c, char *why, size_t cap)
{
    const char *forced = getenv("KD_BACKEND");
    if (forced && forced[0]) {
        kd_backend_id b = kd_backend_from_name(forced);
        if (b == KD_BACKEND_COUNT) {
            snprintf(why, cap, "KD_BACKEND='%s' is not auto, cpu, opencl or cuda", forced);
            return KD_ERR_ARG;
        }
        c->forced = b;
    }
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int b = 1; b < KD_BACKEND_COUNT; b++) {
            char name[96];
            snprintf(name, sizeof name, "KD_THRESHOLD_%s_%s", kd_op_name((kd_op)op), kd_backend_name((kd_backend_id)b));
            for (char *p = name; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            const char *v = getenv(name);
            if (v && parse_u64(v, &c->threshold[op][b])) {
                snprintf(why, cap, "%s='%s' is not a non-negative integer", name, v);
                return KD_ERR_ARG;
            }
        }
    return KD_OK;
}

kd_status kd_config_write_file(const kd_config *c, const char *path, const char *header_comment,
                               char *why, size_t cap)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(why, cap, "cannot write %s: %s", path, strerror(errno));
        return KD_ERR_IO;
    }
    if (header_comment)
        fprintf(f, "# %s\n", header_comment);
    fprintf(f, "# kdispatch dispatcher config: offload when data_size > threshold\n");
    fprintf(f, "backend = %s\n", c->forced == KD_BACKEND_AUTO ? "auto" : kd_backend_name(c->forced));
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int b = 1; b < KD_BACKEND_COUNT; b++)
            fprintf(f, "threshold.%s.%s = %llu\n", kd_op_name((kd_op)op), kd_backend_name((kd_backend_id)b),
                    (unsigned long long)c->threshold[op][b]);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        snprintf(why, cap, "error writing %s", path);
        return KD_ERR_IO;
    }
    return KD_OK;
}

kd_backend_id kd_dispatch_choose(const kd_config *c, kd_op op, uint64_t data_size,
                                 kd_backend_id offload)
{
    if (c->forced != KD_BACKEND_AUTO)
        return c->forced;
    if ((unsigned)op >= KD_OP_COUNT || (unsigned)offload >= KD_BACKEND_COUNT ||
        offload == KD_BACKEND_CPU)
        return KD_BACKEND_CPU;
    return data_size > c->threshold[op][offload] ? offload : KD_BACKEND_CPU;
}
