/*
 * Fault injection for tests: KD_FAULT="<backend>:<alloc|build|launch>:<n>[:always]" makes
 * the call of that kind on that backend fail after n successful ones (once, or every
 * time after with ":always"). The dispatcher must then fall back to cpu.
 */
#ifndef KD_FAULT_H
#define KD_FAULT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "kd_backend.h"

typedef struct kd_fault_plan {
    int active;
    kd_backend_id backend;
    kd_fault_kind kind;
    uint64_t after;        /* successful calls before the fault */
    int always;            /* keep failing after the first fault */
    atomic_uint_fast64_t calls;
} kd_fault_plan;

/* Parses a KD_FAULT value; NULL or "" gives an inactive plan. */
kd_status kd_fault_plan_parse(const char *spec, kd_fault_plan *p, char *why, size_t cap);
/* Counts a call of kind on backend b; 1 if it must fail. */
int kd_fault_plan_hit(kd_fault_plan *p, kd_backend_id b, kd_fault_kind kind);

#endif
