#!/usr/bin/env bash
# The twelve OpenCL kernels under oclgrind (tests/oclgrind_harness.c): fails on any
# oclgrind report (out-of-bounds access, data race, uninitialized value, API error), on a
# wrong result, and when the program does not come back from a fresh KD_CACHE_DIR.
#
#   test_oclgrind.sh HARNESS            the kernels: 0 reports expected
#   test_oclgrind.sh HARNESS --planted  a kernel with a planted out-of-bounds read: passes
#                                       only if the same check fails on it with oclgrind's
#                                       "Invalid read" report
#   test_oclgrind.sh HARNESS --uninitialized-vector-kernels
#                                       rmsnorm, rope and the GEMV kernels with
#       --uninitialized too, under the fixed oclgrind that KD_OCLGRIND names
#       (scripts/oclgrind-fixed.sh; exit 77 without it). Debian's oclgrind 21.10 cannot
#       check them: its Uninitialized plugin crashes (SIGSEGV) on a shufflevector with an
#       undef mask lane, which clang's optimizer makes of two scalar extracts of a wide
#       vector, and it reports every read of a CL_MEM_USE_HOST_PTR buffer (the weights on
#       a CPU device). The default run checks those four ops with --check-api
#       --data-races (out-of-bounds accesses are always checked).
#   test_oclgrind.sh HARNESS --gpu-shapes
#                                       all twelve kernels in the GPU shapes (the ones
#       NVIDIA's OpenCL runs: work-groups that reduce in local memory behind a barrier),
#       all three checks, under the fixed oclgrind told to report a GPU device alone
#       (OCLGRIND_DEVICE_TYPE_GPU=1, scripts/oclgrind-fixed.sh); fails unless the
#       backend says it took the GPU shape
#   test_oclgrind.sh HARNESS --planted-uninit
#                                       the fixed oclgrind must report a planted read of a
#       never-written buffer, and not the reads of written or host-pointer buffers around
#       it (Debian's 21.10 misses it: a released buffer's shadow passes to the next one
#       in its slot). docs/opencl-checks.md has the fixes.
# oclgrind wraps the program (`oclgrind prog` replaces libOpenCL), so its platform is the
# only one; KD_OPENCL_PLATFORM=oclgrind makes the backend's choice explicit all the same.
set -uo pipefail
harness=${1:?usage: test_oclgrind.sh HARNESS [--planted|--planted-uninit|--uninitialized-vector-kernels|--gpu-shapes]}
mode=${2:-}
oclgrind=oclgrind
case "$mode" in
--uninitialized-vector-kernels | --planted-uninit | --gpu-shapes)
    oclgrind=${KD_OCLGRIND:-}
    [ -n "$oclgrind" ] && [ -x "$oclgrind" ] || {
        echo "no fixed oclgrind (KD_OCLGRIND='$oclgrind'): scripts/oclgrind-fixed.sh builds it"
        exit 77
    } ;;
esac
command -v "$oclgrind" >/dev/null || { echo "oclgrind not installed"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kd-oclgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT
export KD_CACHE_DIR=$work/cache KD_OPENCL_PLATFORM=oclgrind
unset KD_OPENCL_DEVICE KD_FAULT
all_checks=(--check-api --data-races --uninitialized)
checks=("${all_checks[@]}")
uninit_ok_ops=swiglu,residual_add           # --uninitialized works on these
uninit_crash_ops=rmsnorm,rope,q4k_gemv,q6k_gemv # need the fixed oclgrind for it

# Runs the harness under oclgrind with args $@; fails on a non-zero exit or any report.
# oclgrind writes its reports (and nothing else) to --log; its stderr is kept as well,
# since an error it cannot attribute to a kernel may still go there.
grind() {
    local log=$work/oclgrind.log out=$work/out.txt err=$work/err.txt
    rm -f "$log"
    echo "oclgrind ${checks[*]} ops=${KD_OCLGRIND_OPS:-all} $*"
    "$oclgrind" "${checks[@]}" --log "$log" "$harness" "$@" >"$out" 2>"$err"
    local rc=$?
    cat "$out"
    local reports=0
    [ -s "$log" ] && reports=$(grep -c -E '^[A-Za-z]' "$log") # a report's first line; its details are indented
    if [ -s "$log" ] || grep -q -i -E 'oclgrind|invalid (read|write)|data race|uninitialized' "$err"; then
        echo "FAIL: oclgrind reported problems ($reports reports) for: $*"
        sed -n '1,60p' "$log" 2>/dev/null
        sed -n '1,40p' "$err"
        return 1
    fi
    cat "$err" >&2
    if [ $rc -ne 0 ]; then
        echo "FAIL: harness exited $rc under oclgrind for: $*"
        return 1
    fi
    echo "oclgrind: 0 reports for: ops=${KD_OCLGRIND_OPS:-all} $*"
}

if [ "$mode" = --planted ]; then
    # the check must fail, and for the planted read, not for some other reason
    if grind --planted; then
        echo "FAIL: the planted out-of-bounds read went unreported"
        exit 1
    fi
    grep -q "Invalid read" "$work/oclgrind.log" && grep -q kd_planted_oob "$work/oclgrind.log" ||
        { echo "FAIL: the check failed, but not on the planted read"; exit 1; }
    echo "the planted out-of-bounds read was caught"
    exit 0
fi

if [ "$mode" = --planted-uninit ]; then
    if grind --planted-uninit; then
        echo "FAIL: the planted uninitialized read went unreported"
        exit 1
    fi
    grep -q "Uninitialized value" "$work/oclgrind.log" && grep -q kd_planted_uninit "$work/oclgrind.log" ||
        { echo "FAIL: the check failed, but not on the planted read"; exit 1; }
    if grep -q kd_planted_clean "$work/oclgrind.log"; then
        echo "FAIL: reads of written or host-pointer buffers were reported"
        exit 1
    fi
    echo "the planted uninitialized read was caught, and only it"
    exit 0
fi

if [ "$mode" = --gpu-shapes ]; then
    export OCLGRIND_DEVICE_TYPE_GPU=1
    grind | tee "$work/gpu.txt" || exit 1
    grep -q "GPU GEMV shape" "$work/gpu.txt" ||
        { echo "FAIL: the backend did not take the GPU shapes on oclgrind's GPU device"; exit 1; }
    exit 0
fi

if [ "$mode" = --uninitialized-vector-kernels ]; then
    KD_OCLGRIND_OPS=$uninit_crash_ops grind || exit 1
    exit 0
fi

start=$(date +%s)
KD_OCLGRIND_OPS=$uninit_ok_ops grind || exit 1
checks=(--check-api --data-races) # see --uninitialized-vector-kernels above
KD_OCLGRIND_OPS=$uninit_crash_ops grind || exit 1
checks=("${all_checks[@]}")
[ -n "$(ls -A "$work/cache" 2>/dev/null)" ] || { echo "FAIL: nothing cached in KD_CACHE_DIR"; exit 1; }
grind --cache | tee "$work/cache.txt" || exit 1
grep -q '^from_cache=1 ' "$work/cache.txt" || { echo "FAIL: second run did not load the cached program"; exit 1; }
echo "oclgrind check passed in $(( $(date +%s) - start )) s"
