#!/usr/bin/env bash
# bench/kd-ab (docs/ab.md): usage errors and their exit status, a library that cannot be
# loaded or is not a libkdispatch, and a run of every op on the cpu (and on OpenCL where
# present) with two copies of this build's library: the table, and the JSON's fields and
# values. Speed is not checked: these are two copies of one library. Usage:
#   test_ab.sh path/to/kd-ab path/to/libkdispatch.so
set -u
ab=${1:?usage: test_ab.sh KD_AB LIBKDISPATCH}
lib=${2:?usage: test_ab.sh KD_AB LIBKDISPATCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-ab-test-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
cp "$lib" "$work/a.so" && cp "$lib" "$work/b.so" || exit 1
export KD_CACHE_DIR="$work/cache"
failed=0 cases=0
tiny=(--n 64 --k 512 --m 3 --pairs 3 --sample-ms 1)

# expect STATUS PATTERN DESCRIPTION -- ARGS...: kd-ab's exit status is STATUS and its
# stderr (stdout for status 0) matches the grep -E PATTERN.
expect() {
    local want=$1 pattern=$2 what=$3; shift 4
    cases=$((cases + 1))
    timeout 300 "$ab" "$@" >"$work/out" 2>"$work/err" </dev/null
    local got=$? text="$work/err"
    [ "$want" = 0 ] && text="$work/out"
    if [ "$got" = "$want" ] && grep -Eq -- "$pattern" "$text"; then
        echo "ok:   $what"
    else
        echo "FAIL: $what: exit $got (want $want); stdout/stderr:"
        cat "$work/out" "$work/err"
        failed=$((failed + 1))
    fi
}

expect 0 '^usage: kd-ab' "--help" -- --help
expect 2 '^usage: kd-ab' "no libraries" --
expect 2 "unexpected argument 'c'" "a third library" -- a b c
expect 2 "bad --pairs '0'" "--pairs 0" -- --pairs 0 a b
expect 2 "bad --m '-1'" "--m -1" -- --m -1 a b
expect 2 "option needs a value: '--k'" "--k without a value" -- a b --k
expect 2 "unknown backend 'cuda'" "an unknown backend" -- --backend cuda a b
expect 2 "unknown GEMV path 'fast'" "an unknown path" -- --path fast a b
expect 2 "unknown option '--bogus'" "an unknown option" -- --bogus 1 a b
expect 2 "unknown op 'nope'" "an unknown op" -- --op nope "$work/a.so" "$work/b.so"
expect 2 "multiple of 256, not '1000'" "a GEMV with K % 256 != 0" -- --k 1000 "$work/a.so" "$work/b.so"
expect 2 "multiple of 128.*'100'" "rope with K % 128 != 0" -- --op rope --k 100 "$work/a.so" "$work/b.so"
expect 1 "cannot load $work/none.so" "a missing library" -- "$work/none.so" "$work/b.so"
printf 'not an ELF file' > "$work/text.so"
expect 1 "cannot load $work/text.so" "a file that is not a library" -- "$work/a.so" "$work/text.so"
libm=$(ldd "$ab" | awk '/libm\.so/ {print $3; exit}')
if [ -n "$libm" ]; then
    expect 1 "has no kd_version: not a libkdispatch" "a library that is not libkdispatch" -- "$libm" "$work/b.so"
fi
expect 0 '^  B/A [0-9.]+ \(median; p25 [0-9.]+, p75 [0-9.]+\)$' "the table" -- "${tiny[@]}" "$work/a.so" "$work/b.so"

# check_json OP BACKEND PATH: the JSON in $work/out describes this run.
check_json() {
    python3 - "$work/out" "$@" "$work/a.so" "$work/b.so" <<'PY'
import json, math, os, sys
path, op, backend, gemv_path, a, b = sys.argv[1:]
r = json.load(open(path))
errors = []
def want(cond, what):
    if not cond:
        errors.append(what)
want(r["op"] == op, "op %r" % r["op"])
want(r["backend"] == backend, "backend %r" % r["backend"])
want(r["gemv_path"] == gemv_path, "gemv_path %r" % r["gemv_path"])
want((r["n"], r["k"], r["m"], r["pairs"]) == (64, 512, 3, 3), "shape or pairs")
want(r["m_b"] == int(os.environ.get("WANT_M_B", "3")), "m_b %r" % r["m_b"])
want(isinstance(r["calls"], int) and r["calls"] >= 1, "calls %r" % r["calls"])
for side, lib in (("a", a), ("b", b)):
    s = r[side]
    want(s["library"] == lib, "%s.library" % side)
    want(s["version"].count(".") == 2, "%s.version %r" % (side, s["version"]))
    want(math.isfinite(s["median_ms"]) and s["median_ms"] > 0, "%s.median_ms" % side)
q = r["b_over_a"]
want(all(math.isfinite(q[k]) and q[k] > 0 for k in ("p25", "median", "p75")), "b_over_a finite")
want(q["p25"] <= q["median"] <= q["p75"], "b_over_a p25 <= median <= p75")
if errors:
    print("JSON: " + "; ".join(errors))
    sys.exit(1)
PY
}

# run_json BACKEND PATH OP [ARGS...]: one JSON run and its check.
run_json() {
    local backend=$1 path=$2 op=$3; shift 3
    cases=$((cases + 1))
    if timeout 300 "$ab" --json --backend "$backend" --path "$path" --op "$op" "${tiny[@]}" "$@" \
           "$work/a.so" "$work/b.so" >"$work/out" 2>"$work/err" &&
       check_json "$op" "$backend" "$path"; then
        echo "ok:   --json $op on $backend ($path) $*"
    else
        echo "FAIL: --json $op on $backend ($path) $*:"
        cat "$work/out" "$work/err"
        failed=$((failed + 1))
    fi
}

for op in rmsnorm rope swiglu residual_add; do
    run_json cpu default $op
done
for op in q4k_gemv q6k_gemv; do
    run_json cpu exact $op
    run_json cpu q8 $op
done
# B at another M (one library, M = 8 over M = 1: the batched speed-up, in one run)
WANT_M_B=9 run_json cpu q8 q4k_gemv --m-b 9
expect 2 "bad --m-b '0'" "--m-b 0" -- --m-b 0 a b

# OpenCL where this machine has it (scripts/setup.sh installs PoCL): not counted otherwise.
if "$ab" --backend opencl "${tiny[@]}" "$work/a.so" "$work/b.so" >/dev/null 2>"$work/err"; then
    run_json opencl q8 q4k_gemv
    run_json opencl exact q6k_gemv
    run_json opencl default rmsnorm
else
    echo "note: OpenCL not tested here: $(head -1 "$work/err")"
fi

echo "$((cases - failed)) of $cases cases passed"
[ "$failed" = 0 ]
