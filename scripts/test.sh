#!/usr/bin/env bash
# The test suite in one command: set-up, a warnings-as-errors build, then every CUnit suite
# under ctest (ctest's exit status is this script's).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DKD_WERROR=ON
cd build
ctest --output-on-failure --timeout 1200 "$@"
