/* Fault injection for tests: see fault.h. */
#include "fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"alloc", "build", "launch"};

kd_status kd_fault_plan_parse(const char *spec, kd_fault_plan *p, char *why, size_t cap)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->calls, 0);
    if (!spec || !spec[0])
        return KD_OK;
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", spec);
    char *backend = strtok_r(buf, ":", &save), *kind = strtok_r(NULL, ":", &save);
    char *after = strtok_r(NULL, ":", &save), *mode = strtok_r(NULL, ":", &save);
    p->backend = backend ? kd_backend_from_name(backend) : KD_BACKEND_COUNT;
    if ((unsigned)p->backend >= KD_BACKEND_COUNT || p->backend == KD_BACKEND_CPU) {
        snprintf(why, cap, "'%s': backend must be opencl or cuda", spec);
        return KD_ERR_ARG;
    }
    int k = -1;
    for (int i = 0; kind && i < 3; i++)
        if (strcmp(kind, kind_names[i]) == 0)
            k = i;
    char *end = NULL;
    unsigned long long n = after ? strtoull(after, &end, 10) : 0;
    if (k < 0 || !after || *end || (mode && strcmp(mode, "always") != 0)) {
        snprintf(why, cap, "'%s': expected <opencl|cuda>:<alloc|build|launch>:<n>[:always]", spec);
        return KD_ERR_ARG;
    }
    p->kind = (kd_fault_kind)k;
    p->after = n;
    p->always = mode != NULL;
    p->active = 1;
    return KD_OK;
}

int kd_fault_plan_hit(kd_fault_plan *p, kd_backend_id b, kd_fault_kind kind)
{
    if (!p->active || p->backend != b || p->kind != kind)
        return 0;
    uint64_t i = atomic_fetch_add(&p->calls, 1); /* this call's index, from 0 */
    return p->always ? i >= p->after : i == p->after;
}
