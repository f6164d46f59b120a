#!/usr/bin/env bash
# The test suite in one command: set-up, the metrics/config/fault suites under
# ThreadSanitizer, then a warnings-as-errors build and every CUnit suite under ctest
# (the last ctest's exit status is this script's).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== ThreadSanitizer: metrics, fault, config, threads, cpu pool, bounded harnesses"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DKD_SANITIZE=thread \
      -DKD_ENABLE_OPENCL=OFF -DKD_ENABLE_CUDA=OFF >/dev/null
cmake --build build-tsan -j "$jobs" --target test_metrics test_fault test_kani_harnesses test_config test_threads test_pool >/dev/null
(cd build-tsan && ctest --output-on-failure -R 'test_(metrics|fault|kani_harnesses|config|threads|pool)$')

echo "== short fuzz run of the GGUF reader (libFuzzer, corpus tests/data/gguf_corpus)"
if command -v clang >/dev/null; then
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DKD_FUZZ=ON \
          -DKD_ENABLE_OPENCL=OFF -DKD_ENABLE_CUDA=OFF >/dev/null
    cmake --build build-fuzz --target fuzz_gguf >/dev/null
    fuzz_new=$(mktemp -d) # new inputs go here, the committed corpus stays as it is
    build-fuzz/runtime/gguf/fuzz_gguf -runs=200000 -max_len=8192 "$fuzz_new" tests/data/gguf_corpus
    rm -rf -- "$fuzz_new"
else
    echo "clang not found: fuzz run left out"
fi

echo "== the suite"
scripts/build.sh -DKD_WERROR=ON
cd build
ctest --output-on-failure --timeout 1200 "$@"
