/* The "hosttest" backend (backend_test.c): a fourth backend for the tests. */
#ifndef KD_BACKEND_TEST_H
#define KD_BACKEND_TEST_H

#include <stdatomic.h>

#include "kd_backend.h"

extern const kd_backend_ops kd_hosttest_backend;
extern atomic_int kd_hosttest_runs; /* ops it ran */
extern int kd_hosttest_break;       /* 1: residual_add adds 1 to every element (negative tests) */

#endif
