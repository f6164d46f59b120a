/* Shared helpers for the CUnit suites. */
#include "kd_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int kd_test_main(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

int kd_test_skip(const char *reason)
{
    printf("SKIPPED: %s\n", reason);
    return 77;
}
