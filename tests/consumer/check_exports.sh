#!/bin/sh
# The shared libkdispatch exports exactly the functions kdispatch.h declares with KD_API:
# nothing internal (every other kd_* function is hidden), nothing missing.
#   check_exports.sh <libkdispatch.so> <kdispatch.h>
set -eu
lib=$1 header=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm -D --defined-only "$lib" | awk '{print $3}' | sort -u >"$work/exported"
grep '^KD_API' "$header" | grep -oE 'kd_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$work/declared"
[ -s "$work/declared" ] || { echo "no KD_API declarations found in $header"; exit 1; }
# A function declared at the start of a line without KD_API would be hidden in the shared
# library: every public declaration must carry the macro.
if grep -nE '^(const |unsigned )?[a-z_][a-z0-9_]*[ *]+kd_[a-z0-9_]+\(' "$header" | grep -v ':typedef'; then
    echo "the declarations above lack KD_API"
    exit 1
fi
if ! cmp -s "$work/exported" "$work/declared"; then
    echo "exported but not declared with KD_API (<) / declared but not exported (>):"
    diff "$work/exported" "$work/declared" || true
    exit 1
fi
echo "$(wc -l <"$work/exported") symbols exported, all declared in kdispatch.h"
