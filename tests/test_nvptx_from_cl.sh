#!/usr/bin/env bash
# The OpenCL kernels' PTX in CI without a GPU (issue 11 item 5): scripts/nvptx-from-cl.sh
# builds it with clang's NVPTX target and libclc, then the six-pair PTX check runs on it.
#
#   test_nvptx_from_cl.sh PTX_CHECK short   32-bit shared addresses (-nvptx-short-ptr, as
#                                           NVIDIA's compiler): all 6 pairs must pass
#   test_nvptx_from_cl.sh PTX_CHECK long    64-bit shared addresses: the check must fail,
#                                           and on rule 2 (shared-u64)
# PTX_CHECK is the checker command (build/cli/kdispatch or build/ptx-check/kd-ptx-check-dev;
# for the former, "ptx-check" is passed first). ptxas, when present, is not run: its report
# is not part of the three rules and the toolkit's ptxas may not know clang's PTX version.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
checker=${1:?usage: test_nvptx_from_cl.sh PTX_CHECK short|long}
variant=${2:?usage: test_nvptx_from_cl.sh PTX_CHECK short|long}
sub=()
[ "$(basename "$checker")" = kdispatch ] && sub=(ptx-check)

work=$(mktemp -d "${TMPDIR:-/tmp}/kd-nvptx-XXXXXX")
trap 'rm -rf "$work"' EXIT
opt=()
[ "$variant" = long ] && opt=(--long-shared-ptr)
"$root/scripts/nvptx-from-cl.sh" "$work" "${opt[@]}" >"$work/files.txt"
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "FAIL: building PTX from the OpenCL kernels failed ($rc)"; exit 1; }
mapfile -t ptx <"$work/files.txt"

"$checker" "${sub[@]}" --no-ptxas "${ptx[@]}" >"$work/report.txt" 2>&1
rc=$?
cat "$work/report.txt"
case $variant in
short)
    [ $rc -eq 0 ] || { echo "FAIL: ptx-check exited $rc on the short-pointer PTX"; exit 1; }
    grep -q '^6/6 kernel pairs passed PTX parity' "$work/report.txt" ||
        { echo "FAIL: expected 6/6 pairs to pass"; exit 1; }
    echo "PASS: 6/6 pairs on clang's NVPTX of the OpenCL kernels (32-bit shared addresses)"
    ;;
long)
    [ $rc -ne 0 ] || { echo "FAIL: 64-bit shared addresses passed the check"; exit 1; }
    grep -q 'shared-u64' "$work/report.txt" ||
        { echo "FAIL: the check failed, but not on rule 2 (shared-u64)"; exit 1; }
    # only rule 2 may fail: each failing pair's violations are rule 2 ones
    if grep -E '^ +rule [13] ' "$work/report.txt"; then
        echo "FAIL: rules 1 or 3 failed too"; exit 1
    fi
    echo "PASS: 64-bit shared addresses fail rule 2, as they must"
    ;;
*) echo "unknown variant $variant"; exit 2 ;;
esac
