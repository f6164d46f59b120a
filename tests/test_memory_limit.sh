#!/usr/bin/env bash
# compare under an address-space limit (ulimit -v, issue 15): at every limit it must end
# within the deadline (no hang at exit, no abort inside a driver) with a verdict on stdout
# or a clear error on stderr, exit 0 or 1 (2 only with its reason). Not run in sanitizer
# builds: their shadow memory does not fit such limits. Usage:
#   test_memory_limit.sh path/to/kdispatch
set -u
exe=${1:?usage: test_memory_limit.sh KDISPATCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-memlimit-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
export KD_CACHE_DIR="$work/cache"
unset OPENBLAS_NUM_THREADS
deadline=120
failed=0
"$exe" compare --shape 0.5b --m 1 --op rmsnorm --skip-missing >/dev/null 2>&1 # warm the cache
for kib in 150000 250000 300000 350000 400000 450000 500000 600000; do
    start=$(date +%s)
    (ulimit -v "$kib"; timeout -s KILL "$deadline" "$exe" compare --shape 0.5b --m 1,8 \
        >"$work/out" 2>"$work/err")
    rc=$? took=$(( $(date +%s) - start ))
    verdict=$(grep -m1 '^verdict:' "$work/out")
    reason=$(head -n 1 "$work/err")
    if [ "$rc" -eq 137 ] || [ "$rc" -eq 124 ]; then
        echo "FAIL: ulimit -v $kib: no end within ${deadline}s"; failed=$((failed + 1))
    elif [ "$rc" -gt 2 ]; then
        echo "FAIL: ulimit -v $kib: exit $rc (crash or abort): $reason"; failed=$((failed + 1))
    elif [ -z "$verdict" ] && [[ "$reason" != kdispatch* ]]; then
        echo "FAIL: ulimit -v $kib: exit $rc with neither a verdict nor a reason"; failed=$((failed + 1))
    elif [ "$rc" -ne 0 ] && [ -z "$verdict" ] && [[ "$reason" != kdispatch* ]]; then
        echo "FAIL: ulimit -v $kib: exit $rc without a reason on stderr"; failed=$((failed + 1))
    elif [ "$rc" -ne 0 ] && ! grep -q . "$work/err"; then
        echo "FAIL: ulimit -v $kib: exit $rc, nothing on stderr says why"; failed=$((failed + 1))
    else
        echo "ok:   ulimit -v $kib: exit $rc in ${took}s: ${verdict:-$reason}"
    fi
done
[ "$failed" -eq 0 ]
