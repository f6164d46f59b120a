#!/bin/sh
# ptx-check time and peak memory on large valid modules (issue 12 targets: a 50 MB module
# in <= 2 s and <= 200 MB peak RSS; 30,000 functions in <= 2 s). Not a unit test: run by
# hand after a build, on a quiet machine.
#   bench/ptx/ptx_check_perf.sh [BUILD_DIR]   (default: build)
set -e
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
cli=$build/cli/kdispatch
built=$build/ptx/kdispatch_sm_80.ptx
tmp=${TMPDIR:-/tmp}/kd_ptx_perf.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
python3 "$src/bench/ptx/gen_ptx_perf.py" big "$built" "$tmp/big.ptx" 50
python3 "$src/bench/ptx/gen_ptx_perf.py" funcs "$built" "$tmp/funcs.ptx" 30000
for f in big funcs; do
    size=$(wc -c < "$tmp/$f.ptx")
    /usr/bin/time -v "$cli" ptx-check --no-ptxas "$tmp/$f.ptx" > "$tmp/$f.out" 2> "$tmp/$f.time" || true
    wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tmp/$f.time")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/$f.time")
    echo "$f: $size bytes, wall $wall, peak RSS $((rss / 1024)) MB; $(tail -1 "$tmp/$f.out")"
done
