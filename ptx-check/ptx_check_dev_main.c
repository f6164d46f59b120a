/* kd-ptx-check-dev: the ptx-check command on its own, for development and for the ctest
 * on the built PTX (not installed; the user-facing command is `kdispatch ptx-check`). */
#include "ptx_check.h"

int main(int argc, char **argv)
{
    return kd_cmd_ptx_check(argc, argv);
}
