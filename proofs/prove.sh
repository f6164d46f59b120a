#!/bin/sh
# Proves the dispatch-metrics invariants beyond any bound with Frama-C's WP plugin, on
# runtime/metrics_core.h (the arithmetic that runtime/metrics.c runs). Exits 0 only when
# every goal of every pass is proved; 1 on any unproved goal; 77 (ctest: skipped) when a
# tool is missing; 2 for a bad option.
#
#   proofs/prove.sh [--timeout S] [--jobs N]
#
# Needs the Debian packages frama-c-base, why3 and cvc4 (CVC4 proves every goal); z3 is
# used beside it when installed. What is proved and what remains: proofs/README.md.
set -u

timeout=20
jobs=2
while [ $# -gt 0 ]; do
    case "$1" in
    --timeout) timeout="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "prove.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
for tool in frama-c why3 cvc4; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "prove.sh: $tool not found (apt-get install frama-c-base why3 z3 cvc4)" >&2
        exit 77
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kd-prove.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Why3 finds its provers through a config file; make one here unless the user has one.
if [ -z "${WHY3CONFIG:-}" ] && [ ! -f "$HOME/.why3.conf" ]; then
    WHY3CONFIG="$work/why3.conf"
    export WHY3CONFIG
    why3 config detect >"$work/why3-detect.log" 2>&1 || {
        cat "$work/why3-detect.log" >&2
        echo "prove.sh: why3 config detect failed" >&2
        exit 77
    }
fi

provers=cvc4
if command -v z3 >/dev/null 2>&1; then
    provers=z3,cvc4
fi
common="-wp -wp-rte -warn-unsigned-overflow -warn-signed-overflow -wp-prover $provers
        -wp-timeout $timeout -wp-par $jobs -wp-no-cache-env"
src="$here/metrics_proof.c"
failed=0

# run_pass NAME SELECTION EXTRA-OPTIONS: one frama-c run; checks "Proved goals: n / n".
run_pass() {
    name="$1"; select="$2"; extra="$3"
    log="$work/$name.log"
    echo "== pass '$name': $select"
    # shellcheck disable=SC2086
    frama-c $common $extra $select "$src" >"$log" 2>&1
    rc=$?
    summary=$(grep 'Proved goals:' "$log" | tail -n 1)
    grep -E '^\[wp\] \[(Failed|Timeout|Unknown)\]|^\[wp\] .*: (Failed|Timeout|Unknown)' "$log"
    if [ $rc -ne 0 ] || [ -z "$summary" ]; then
        cat "$log"
        echo "prove.sh: frama-c failed in pass '$name' (exit $rc)" >&2
        failed=1
        return
    fi
    proved=$(echo "$summary" | sed 's/.*Proved goals: *\([0-9]*\) *\/ *\([0-9]*\).*/\1/')
    total=$(echo "$summary" | sed 's/.*Proved goals: *\([0-9]*\) *\/ *\([0-9]*\).*/\2/')
    echo "   $proved / $total goals proved"
    if [ "$proved" != "$total" ] || [ "$total" = "0" ]; then
        grep -B1 -A3 -E 'Failed|Timeout|Unknown' "$log" >&2
        failed=1
    fi
}

integer_fcts="kd_core_hist_count,kd_core_hist_empty,kd_core_hist_record,kd_core_record,kd_core_bucket_lo_ns,kd_core_bucket_hi_ns"
real_fcts="kd_core_bucket_of,kd_core_gpu_ratio,kd_core_summarize,kd_core_quantile_ns,kd_core_hist_stats"

# Every function of the core must be in one pass: a new one cannot go unproved.
core="$here/../runtime/metrics_core.h"
for f in $(sed -n 's/^static inline [a-z_0-9 ]*[ *]\(kd_core_[a-z_0-9]*\)(.*/\1/p' "$core"); do
    case ",$integer_fcts,$real_fcts," in
    *",$f,"*) ;;
    *) echo "prove.sh: $f is in no pass: add it to one" >&2; failed=1 ;;
    esac
done

# Pass 0: the ACSL lemmas.
run_pass lemmas "-wp-prop=@lemma" ""

# Pass 1, IEEE-754 float model (WP's default): the integer functions: counting, the
# histogram invariant, the recording step, the bucket edges.
run_pass integer "-wp-fct $integer_fcts" ""

# Pass 2, real-number model for floating point: the functions that touch doubles. Sound
# for kd_core_bucket_of (comparisons with exactly representable bounds) and for every
# integer fact of the others; for the divisions and interpolation it proves the
# real-valued result, see README.md for what that leaves.
run_pass real "-wp-fct $real_fcts" "-wp-model +real"

if [ $failed -ne 0 ]; then
    echo "prove.sh: some goals are NOT proved"
    exit 1
fi
echo "prove.sh: all goals proved"
exit 0
