#!/bin/sh
# The cpu kernels of the x86 levels this host may lack (AVX-512, AVX-512 VNNI, AVX-VNNI),
# run through SIMDe's portable intrinsics (runtime/cpu/simd_emulated.h) in a build of
# their own: the code of those kernels is tested on any x86 host, though not the CPUs.
#   test_simd_emulated.sh build SOURCE_DIR BUILD_DIR      configure and build the suites
#   test_simd_emulated.sh run BUILD_DIR SUITE LEVEL       SUITE at KD_CPU_SIMD=LEVEL
# Exit 77 (skipped) without SIMDe's headers (Debian: libsimde-dev; scripts/setup.sh).
set -u
mode=$1
shift
has_simde() {
    printf '#include <simde/x86/avx512.h>\nint main(void){return 0;}\n' |
        ${CC:-cc} -x c -fsyntax-only - 2>/dev/null
}
case "$mode" in
build)
    src=$1 dir=$2
    if ! has_simde; then
        echo "SKIPPED: SIMDe's headers not found (Debian: libsimde-dev; scripts/setup.sh installs it)"
        exit 77
    fi
    # only the cpu backend matters here: no OpenCL, no CUDA, no sanitizer
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DKD_SIMD_EMULATED=ON \
        -DKD_ENABLE_OPENCL=OFF -DKD_ENABLE_CUDA=OFF -DKD_SANITIZE= -DKD_WERROR=ON >"$dir.log" 2>&1 &&
        cmake --build "$dir" --target test_cpu test_cpu_q8 test_cpu_elem -j 2 >>"$dir.log" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || { tail -40 "$dir.log"; echo "FAIL: the emulated-SIMD build (log: $dir.log)"; }
    exit "$rc"
    ;;
run)
    dir=$1 suite=$2 level=$3
    if [ ! -x "$dir/tests/$suite" ]; then
        has_simde || { echo "SKIPPED: SIMDe's headers not found (Debian: libsimde-dev)"; exit 77; }
        echo "FAIL: $dir/tests/$suite was not built (test simd_emulated_build)"
        exit 1
    fi
    echo "$suite at KD_CPU_SIMD=$level, every level's intrinsics emulated by SIMDe"
    cd "$dir/tests" && KD_CPU_SIMD=$level exec "./$suite"
    ;;
*)
    echo "usage: test_simd_emulated.sh build SOURCE_DIR BUILD_DIR | run BUILD_DIR SUITE LEVEL" >&2
    exit 2
    ;;
esac
