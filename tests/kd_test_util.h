/* Shared helpers for the CUnit suites: the suite runner that turns CUnit's result into
 * ctest's exit code (77 = skipped). Seeded problems and the oracle are in kd_oracle.h. */
#ifndef KD_TEST_UTIL_H
#define KD_TEST_UTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdint.h>

#include "kd_oracle.h"
#include "kdispatch.h"

/* Registers suites with CU_add_suite/CU_add_test before calling; runs them; returns
 * 0 if all passed, 1 if any failed. */
int kd_test_main(void);
/* Exit code that ctest reports as skipped, with the reason printed. */
int kd_test_skip(const char *reason);

#endif
