/* Shared helpers for the CUnit suites: the suite runner that turns CUnit's result into
 * ctest's exit code (77 = skipped). Seeded problems and the oracle are in kd_oracle.h. */
#ifndef KD_TEST_UTIL_H
#define KD_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdint.h>

#include "kd_oracle.h"
#include "kdispatch.h"

/* Registers suites with CU_add_suite/CU_add_test before calling; runs them; returns
 * 0 if all passed, 1 if any failed. */
int kd_test_main(void);
/* Asserts that got (the output of backend `name` for p) matches the oracle ref and, when
 * other is not NULL, the output of backend other_name (SPEC section 7); on a mismatch it
 * prints the case, the errors and the first bad element. */
void kd_test_expect_match(const kd_problem *p, const char *name, const float *got,
                          const double *ref, const float *other, const char *other_name);
/* A way to run a problem: the backend, kd_run flags and the name used in messages. */
typedef struct kd_test_path { kd_backend_id backend; unsigned flags; const char *name; } kd_test_path;
/* Runs p on path (the one under test) and on other (the second opinion); asserts that the
 * path ran on its backend (counted once there, no fallback, output resident there), that
 * the second opinion matches the oracle ref, and that the path matches both
 * (kd_test_expect_match). */
void kd_test_expect_agreement(kd_context *ctx, kd_problem *p, const double *ref,
                              kd_test_path path, kd_test_path other);

/* NMSE of got against the oracle ref (sum of squared errors over sum of squares), and
 * *max_rel, the largest error relative to max(1, |ref|): the q8 GEMV paths' measures. */
double kd_test_nmse(const float *got, const double *ref, int64_t n, double *max_rel);
/* The q8 GEMV paths' budget against the oracle (SPEC section 7). */
#define KD_TEST_Q8_NMSE_BUDGET 5e-4

/* A context with only the cpu backend (OpenCL and CUDA disabled), its backend line
 * printed; NULL with the error on stderr. */
kd_context *kd_test_cpu_context(void);

/* Runs p on backend b with flags and compares its output with the oracle (KD_TOLERANCE):
 * 1 when it ran and matched, else 0 with the status and error, or the mismatch, printed
 * under label. Asserts nothing (CUnit is not thread-safe), so threads may use it too. */
int kd_test_run_matches_oracle(kd_context *ctx, kd_problem *p, kd_backend_id b,
                               unsigned flags, const char *label);

/* A problem's size: n (row length, or GEMV output rows) and k (rope head size, or GEMV
 * input length; 0 where the op has none). */
typedef struct kd_test_shape { int64_t n, k; } kd_test_shape;
/* kd_test_expect_agreement for op over every shape and every batch size M in ms (and both
 * rope modes); the problem for shape s, M = ms[mi] and mode v has seed
 * seed0 + 10 s + 2 mi + v (kd_problem_make: an odd seed is neox). */
void kd_test_check_op(kd_context *ctx, kd_op op, const kd_test_shape *shapes, int nshapes,
                      const int64_t *ms, int nms, uint64_t seed0, kd_test_path path,
                      kd_test_path other);

/* Runs a shell command; its exit status, or -1 if it could not run or was killed. */
int kd_test_system(const char *cmd);
/* A whole file as a NUL-terminated string (caller frees), its length in *len if non-NULL;
 * NULL if it cannot be read. */
char *kd_test_read_file(const char *path, size_t *len);
/* Writes n bytes to path, replacing it: 0, or -1 if it cannot be written. */
int kd_test_write_file(const char *path, const void *data, size_t n);

/* An environment variable set for a while and put back: kd_test_env_set sets name to value
 * (NULL: unsets it) and returns what to restore; kd_test_env_restore puts the old value
 * (or its absence) back. */
typedef struct kd_test_env { const char *name; char *old; } kd_test_env;
kd_test_env kd_test_env_set(const char *name, const char *value);
void kd_test_env_restore(kd_test_env *saved);
/* kd_context_create(o, out) with name=value (NULL: unset) only for the call; the status,
 * with the message in kd_last_error(NULL) on failure. */
kd_status kd_test_context_under_env(const char *name, const char *value,
                                    const kd_context_options *o, kd_context **out);
/* Asserts that kd_context_create(o) under name=value fails with KD_ERR_ARG, no context and
 * a message naming both (SPEC section 11: a malformed setting is never ignored). */
void kd_test_expect_env_refused(const char *name, const char *value, const kd_context_options *o);

/* The built `kdispatch` command, or NULL (with a message) if it is not built. */
const char *kd_test_kdispatch_exe(void);
/* Asserts that `kdispatch COMMAND --help` exits 0 and that its text names each of
 * want[0..n) (the text is kept in test_COMMAND_help.txt in the working directory). */
void kd_test_expect_help(const char *command, const char *const *want, size_t n);

/* Exit code that ctest reports as skipped, with the reason printed. */
int kd_test_skip(const char *reason);

#endif
