/* Fault injection for tests: see fault.h. */
#include "fault.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_SYNTAX "expected <opencl|cuda>:<alloc|build|launch>:<n>[:always]"

static const char *const kind_names[] = {"alloc", "build", "launch"};

static int parse_kind(const char *s, kd_fault_kind *out)
{
    for (int i = 0; i < (int)(sizeof kind_names / sizeof *kind_names); i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (kd_fault_kind)i;
            return 0;
        }
    return -1;
}

static int parse_count(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Splits "a:b:c:d" into at most 4 fields (empty fields kept); returns the field count,
 * or 5 when there are more than 4. */
static int split_fields(char *buf, char *field[4])
{
    int n = 0;
    char *p = buf;
    for (;;) {
        if (n == 4)
            return 5;
        field[n++] = p;
        char *colon = strchr(p, ':');
        if (!colon)
            return n;
        *colon = '\0';
        p = colon + 1;
    }
}

kd_status kd_fault_plan_parse(const char *spec, kd_fault_plan *p, char *why, size_t cap)
{
    char scratch[8];
    if (!why || !cap) {
        why = scratch;
        cap = sizeof scratch;
    }
    if (!p) {
        snprintf(why, cap, "KD_FAULT: NULL plan");
        return KD_ERR_NULL;
    }
    p->active = 0;
    p->backend = KD_BACKEND_AUTO;
    p->kind = KD_FAULT_ALLOC;
    p->after = 0;
    p->always = 0;
    atomic_init(&p->calls, 0);
    if (!spec || !spec[0])
        return KD_OK;

    char buf[128], *field[4];
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf) {
        snprintf(why, cap, "'%.40s...' is too long: " FAULT_SYNTAX, spec);
        return KD_ERR_ARG;
    }
    int n = split_fields(buf, field);
    if (n < 3 || n > 4) {
        snprintf(why, cap, "'%s': " FAULT_SYNTAX, spec);
        return KD_ERR_ARG;
    }
    kd_backend_id b = kd_backend_from_name(field[0]);
    if (b == KD_BACKEND_CPU) {
        snprintf(why, cap, "'%s': cpu cannot be faulted, it is what a failed offload falls "
                           "back to (opencl or cuda)", spec);
        return KD_ERR_ARG;
    }
    if ((unsigned)b >= KD_BACKEND_COUNT) {
        snprintf(why, cap, "'%s': unknown backend '%s' (opencl or cuda)", spec, field[0]);
        return KD_ERR_ARG;
    }
    kd_fault_kind kind;
    if (parse_kind(field[1], &kind)) {
        snprintf(why, cap, "'%s': unknown kind '%s' (alloc, build or launch)", spec, field[1]);
        return KD_ERR_ARG;
    }
    uint64_t after;
    if (parse_count(field[2], &after)) {
        snprintf(why, cap, "'%s': '%s' is not a count of successful calls (0, 1, ...)", spec,
                 field[2]);
        return KD_ERR_ARG;
    }
    if (n == 4 && strcmp(field[3], "always") != 0) {
        snprintf(why, cap, "'%s': '%s' is not 'always'", spec, field[3]);
        return KD_ERR_ARG;
    }
    p->backend = b;
    p->kind = kind;
    p->after = after;
    p->always = n == 4;
    p->active = 1;
    return KD_OK;
}

/* Thread-safe: each matching call takes a distinct index from the atomic counter, so
 * exactly one call fails (or every call from index `after` on, with always). */
int kd_fault_plan_hit(kd_fault_plan *p, kd_backend_id b, kd_fault_kind kind)
{
    if (!p || !p->active || p->backend != b || p->kind != kind)
        return 0;
    uint64_t i = atomic_fetch_add(&p->calls, 1); /* this call's index, from 0 */
    return p->always ? i >= p->after : i == p->after;
}
