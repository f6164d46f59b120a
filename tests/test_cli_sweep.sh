#!/usr/bin/env bash
# The CLI and environment bad-input sweep (issue 15): each case must end within a deadline
# with an exit status in 1..127 and a message on stderr whose first line names the command
# ("kdispatch...") and says why. Cases with a documented acceptance say so. Usage:
#   test_cli_sweep.sh path/to/kdispatch
set -u
exe=${1:?usage: test_cli_sweep.sh KDISPATCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-cli-sweep-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
mkfifo "$work/fifo"
head -c 4096 /dev/zero | tr '\0' 'x' > "$work/bogus"
: > "$work/empty"
printf 'backend = cpu\nthreshold.rmsnorm.opencl = 1\0000\n' > "$work/nul.conf"
printf 'x' > "$work/plain-file"
export KD_CACHE_DIR="$work/cache"
fast=(--shape 0.5b --m 1 --op rmsnorm)   # the quickest compare that still runs every backend
failed=0 cases=0

# run_case SECONDS [VAR=value ...] -- ARGS...: counts a case and runs the command with
# those variables, stdout and stderr to $work/out and $work/err; its exit status.
run_case() {
    local limit=$1; shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    cases=$((cases + 1))
    env "${envs[@]}" timeout "$limit" "$exe" "$@" >"$work/out" 2>"$work/err" </dev/null
}

# expect_error DESCRIPTION [VAR=value ...] -- ARGS...
expect_error() { expect_error_naming "$1" "" "${@:2}"; }

# expect_error_naming DESCRIPTION WORD [VAR=value ...] -- ARGS...: as expect_error, and the
# first line must contain WORD (e.g. the variable that was wrong) when WORD is not empty.
expect_error_naming() {
    local what=$1 word=$2; shift 2
    run_case 60 "$@"
    local rc=$? first
    first=$(head -n 1 "$work/err")
    if [ "$rc" -lt 1 ] || [ "$rc" -gt 127 ] || [[ "$first" != kdispatch* ]] || [ ${#first} -lt 20 ] ||
        [[ "$first" != *"$word"* ]]; then
        echo "FAIL: $what: exit $rc, stderr: '${first}'${word:+ (want '$word' named)}"
        failed=$((failed + 1))
    else
        echo "ok:   $what: exit $rc: $first"
    fi
}

# expect_env_error VAR=value ARGS...: the run fails and its message names VAR.
expect_env_error() {
    local setting=$1; shift
    expect_error_naming "$setting $*" "${setting%%=*}" "$setting" -- "$@"
}

# expect_accepted DESCRIPTION WORD [VAR=value ...] -- ARGS...: exit 0 and WORD on stderr
expect_accepted() {
    local what=$1 word=$2; shift 2
    run_case 120 "$@"
    local rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q -- "$word" "$work/err"; then
        echo "FAIL: $what: exit $rc (want 0 and '$word' on stderr): $(head -n 1 "$work/err")"
        failed=$((failed + 1))
    else
        echo "ok:   $what: accepted with '$word'"
    fi
}

# ---- files that are not regular files, and bad files
for f in /dev/zero "$work/fifo" /nonexistent/kd.conf "$work" "$work/nul.conf" "$work/bogus"; do
    expect_error "KD_CONFIG=$f devices" KD_CONFIG="$f" -- devices
done
for f in "$work/fifo" /dev/zero "$work" "$work/bogus" "$work/empty" /nonexistent.gguf; do
    expect_error "gguf $f" -- gguf "$f"
    expect_error "compare --gguf $f" -- compare --gguf "$f"
done

# ---- numbers
for t in inf -inf nan -1 0 2 abc 1e999 ""; do
    expect_error "compare --tol '$t'" -- compare --tol "$t" "${fast[@]}"
done
for m in 0 -1 99999999999999999999 5000 1,x 1,,2; do
    expect_error "compare --m $m" -- compare --m "$m" --shape 0.5b --op rmsnorm
done
expect_error "compare --seed huge" -- compare --seed 99999999999999999999999 "${fast[@]}"
expect_error "compare --seed -1" -- compare --seed -1 "${fast[@]}"
expect_error "compare --rows huge" -- compare --rows 99999999999999999999 --gguf "$work/bogus"
expect_error "compare --max-tensors 1e9" -- compare --max-tensors 1e9 --gguf "$work/bogus"

# ---- names and usage
expect_error "compare --backend bogus" -- compare --backend bogus
expect_error "compare --shape bogus" -- compare --shape bogus
expect_error "compare --op bogus" -- compare --op bogus
expect_error "compare --tensor without --gguf" -- compare --tensor x
expect_error "unknown command" -- bogus-command
expect_error "gguf two files" -- gguf a b
expect_error "devices --bogus" -- devices --bogus
# the message says which of four things went wrong (cli_util's kd_cli_bad_option)
expect_error_naming "compare stray word" "unexpected argument 'stray'" -- compare stray
expect_error_naming "bench unknown option" "unknown option '--frobnicate'" -- bench --frobnicate 1
expect_error_naming "bench --n at the end" "option '--n' needs a value" -- bench --n
expect_error_naming "compare --m x" "bad value 'x' for --m" -- compare --m x
expect_error_naming "compare --tol 5 says why" "must be a finite number" -- compare --tol 5
expect_error_naming "tune --reps 0" "bad value '0' for --reps" -- tune --reps 0
expect_error_naming "tune unknown option" "unknown option '--nope'" -- tune --nope x

# ---- environment
expect_error "KD_FAULT=bogus" KD_FAULT=bogus -- compare "${fast[@]}"
expect_error "KD_THRESHOLD_RMSNORM_OPENCL=abc" KD_THRESHOLD_RMSNORM_OPENCL=abc -- devices
# malformed settings (issue 15 items 3 and 9): each refused by name, never ignored or clamped
for t in 0 -1 abc 100000 2.5 1025 " 4" 4x; do
    expect_env_error "KD_CPU_THREADS=$t" devices
done
expect_env_error KD_CPU_SIMD=bogus devices
expect_env_error KD_CPU_GEMV=fast compare "${fast[@]}"
expect_env_error KD_OPENCL_GEMV=fast compare "${fast[@]}"
expect_env_error KD_CPU_BLAS_MIN_M=0 devices
expect_env_error KD_CPU_BLAS_MIN_M=12x devices
expect_env_error KD_OPENCL_DEVICE=99999999999 devices
expect_env_error KD_BACKEND=gpu devices
for f in /dev/zero "$work/fifo" /nonexistent/kd.conf; do
    expect_env_error "KD_CONFIG=$f" devices
done
if "$exe" devices 2>/dev/null | grep -q '^opencl *present'; then
    # an installed backend that cannot start fails compare (unless --skip-missing)
    expect_error "KD_OPENCL_DEVICE=999 compare" KD_OPENCL_DEVICE=999 -- compare "${fast[@]}"
    expect_accepted "KD_OPENCL_DEVICE=999 compare --skip-missing" "skip-missing" \
        KD_OPENCL_DEVICE=999 -- compare --skip-missing "${fast[@]}"
    # documented acceptance: an unusable cache directory means no cache, with a warning
    expect_accepted "KD_CACHE_DIR is a file" "warning: opencl: program cache directory" \
        KD_CACHE_DIR="$work/plain-file" -- compare "${fast[@]}"
fi

echo "$cases cases, $failed failed"
[ "$failed" -eq 0 ]
