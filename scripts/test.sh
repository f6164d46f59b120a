#!/usr/bin/env bash
# The test suite in one command: set-up, the metrics/config/fault suites under
# ThreadSanitizer, then a warnings-as-errors build and every CUnit suite under ctest
# (the last ctest's exit status is this script's).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== ThreadSanitizer: metrics, fault, config, bounded harnesses"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DKD_SANITIZE=thread \
      -DKD_ENABLE_OPENCL=OFF -DKD_ENABLE_CUDA=OFF >/dev/null
cmake --build build-tsan -j "$jobs" --target test_metrics test_fault test_kani_harnesses test_config >/dev/null
(cd build-tsan && ctest --output-on-failure -R 'test_(metrics|fault|kani_harnesses|config)$')

echo "== the suite"
scripts/build.sh -DKD_WERROR=ON
cd build
ctest --output-on-failure --timeout 1200 "$@"
