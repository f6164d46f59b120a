#!/usr/bin/env bash
# bench/q8-kernel-ab.sh (docs/ab.md): usage errors and their exit status, a revision that
# does not exist, and a run of the generic kernels (every CPU runs them) and, where the CPU
# has AVX2, the AVX2 ones, against this tree's HEAD: both tile sizes' lines, with finite
# times. Speed is not checked. Usage: test_q8_kernel_ab.sh BUILD_DIR
set -u
build=${1:?usage: test_q8_kernel_ab.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
script="$here/../bench/q8-kernel-ab.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/q8-kernel-ab-test-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
failed=0
small=(--rows 16 --nb 4 --mc "1,8" --reps 2)

# expect STATUS PATTERN DESCRIPTION -- ARGS...: the script's exit status is STATUS and its
# stdout and stderr together match the grep -E PATTERN.
expect() {
    local want=$1 pattern=$2 what=$3; shift 4
    timeout 300 "$script" --build "$build" "$@" >"$work/out" 2>&1 </dev/null
    local got=$?
    if [ "$got" = "$want" ] && grep -Eq -- "$pattern" "$work/out"; then
        echo "ok:   $what"
    else
        echo "FAIL: $what: exit $got (want $want); output:"
        cat "$work/out"
        failed=$((failed + 1))
    fi
}

if ! git -C "$here" rev-parse HEAD >/dev/null 2>&1; then
    echo "not a git checkout: q8-kernel-ab needs one (skipped)"
    exit 77
fi
line='mc=[18] +A mean +[0-9.]+ best +[0-9.]+ +B mean +[0-9.]+ best +[0-9.]+ +ns/block +B/A mean [0-9.]+ best [0-9.]+ +max rel diff'
expect 0 '^usage: bench/q8-kernel-ab.sh' "--help" -- --help
expect 2 '^usage: bench/q8-kernel-ab.sh' "an unknown option" -- --bogus
expect 2 "unknown level 'foo'" "an unknown level" -- --level foo
expect 1 "cannot read runtime/ at 'no-such-rev'" "a revision that does not exist" -- --ref no-such-rev --level generic
expect 1 "no kdispatch_version.h under" "no build" -- --build "$work/none" --level generic
expect 2 '^usage: q8-kernel-ab' "a tile size past 8" -- --level generic -- --mc 9
expect 2 '^usage: q8-kernel-ab' "groups with rows not a multiple of 8" -- --level generic -- --rows 12
expect 0 "q4k +groups +$line" "generic Q4_K, row groups" -- --level generic -- "${small[@]}"
expect 0 "q6k +rows +$line" "generic Q6_K, GGUF order" -- --level generic -- "${small[@]}" --type q6k --layout rows
if grep -qw avx2 /proc/cpuinfo; then
    expect 0 "q6k +groups +$line" "AVX2 Q6_K" -- -- "${small[@]}" --type q6k
fi
[ "$failed" = 0 ] || { echo "$failed case(s) failed"; exit 1; }
echo "all cases passed"
