#!/usr/bin/env bash
# q8-kernel-ab: one cpu q8 kernel file (runtime/cpu/gemv_q8_<level>.c) as of a git
# revision (A) against the working tree (B), or built by two compilers, timed alone in one
# process by bench/q8_kernel_ab.c (docs/ab.md).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/q8-kernel-ab.sh [--ref REV] [--level L] [--cc-a CC] [--cc-b CC]
                             [--build DIR] [-- DRIVER OPTIONS]

Builds runtime/cpu/gemv_q8_<level>.c twice -- A from git revision REV (default HEAD),
B from the working tree -- with each kernel table renamed, links both into
bench/q8_kernel_ab.c and runs it: the level's Q4_K or Q6_K kernels alone, A and B
alternating, weights and x in the caches. Prints per tile size mc the mean and best
ns per weight block of each, B / A, and the largest relative difference of their
outputs (0: the same arithmetic).

options:
  --ref REV      A's revision (default HEAD; the working tree's uncommitted changes
                 are then what B adds)
  --level L      avx2 (default), vnni_vex, vnni_evex, avx512 or generic; the CPU
                 must run it
  --cc-a CC      A's compiler (default: cc); --cc-b CC: B's (default: cc). Same
                 revision twice with two compilers: --ref with no changes in the tree
  --build DIR    a configured build of this tree, for kdispatch_version.h (default:
                 build, relative to the tree's top)
  --             the rest goes to the driver: --type q4k|q6k, --layout groups|rows,
                 --nb N, --rows N, --mc LIST, --reps N (its --help)
  -h, --help     this text
Exit status: 0 done, 1 a build or run failed, 2 bad usage.
EOF
}

ref=HEAD level=avx2 cc_a=cc cc_b=cc build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --ref) ref=${2:?}; shift 2 ;;
    --level) level=${2:?}; shift 2 ;;
    --cc-a) cc_a=${2:?}; shift 2 ;;
    --cc-b) cc_b=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; exit 2 ;;
    esac
done

case "$level" in
avx2) table=kd_q8_avx2_kernels flag=avx2 ;;
vnni_vex) table=kd_q8_vnni_vex_kernels flag=avx_vnni ;;
vnni_evex) table=kd_q8_vnni_evex_kernels flag=avx512_vnni ;;
avx512) table=kd_q8_vnni512_kernels flag=avx512_vnni ;;
generic) table=kd_q8_generic_kernels flag= ;;
*) echo "q8-kernel-ab: unknown level '$level'" >&2; exit 2 ;;
esac
if [ -n "$flag" ] && ! grep -qw "$flag" /proc/cpuinfo; then
    echo "q8-kernel-ab: this CPU has no $flag: the $level kernels cannot run here" >&2
    exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd) # this tree, wherever it is run from
case "$build" in /*) ;; *) build="$root/$build" ;; esac
version_h=$(find "$build" -name kdispatch_version.h -print -quit 2>/dev/null || true)
if [ -z "$version_h" ]; then
    echo "q8-kernel-ab: no kdispatch_version.h under $build: configure and build first" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/a"
git -C "$root" archive "$ref" runtime | tar -x -C "$tmp/a" || {
    echo "q8-kernel-ab: cannot read runtime/ at '$ref'" >&2
    exit 1
}

# the flags of the library's Release build, and its include directories
compile() { # CC TREE TABLE_NAME OUT
    "$1" -std=c11 -O3 -DNDEBUG -D_GNU_SOURCE -I"$2/runtime/cpu" -I"$2/runtime/quant" \
        -I"$2/runtime" -I"$2/runtime/include" -I"$(dirname "$version_h")" \
        -D"$table=$3" -c "$2/runtime/cpu/gemv_q8_$level.c" -o "$4"
}
compile "$cc_a" "$tmp/a" kd_q8_ab_a "$tmp/a.o"
compile "$cc_b" "$root" kd_q8_ab_b "$tmp/b.o"
cc -std=c11 -O2 -D_GNU_SOURCE -I"$root/runtime/cpu" -I"$root/runtime/quant" -I"$root/runtime" \
    -I"$root/runtime/include" -I"$(dirname "$version_h")" "$root/bench/q8_kernel_ab.c" \
    "$tmp/a.o" "$tmp/b.o" -o "$tmp/q8-kernel-ab" -lm
echo "q8-kernel-ab: A = $level kernels at $ref ($cc_a), B = the working tree ($cc_b)"
"$tmp/q8-kernel-ab" "$@"
