#!/usr/bin/env bash
# Side-by-side CPU GEMV timing: ggml's own test-backend-ops against `kdispatch bench`, on
# the same shapes, interleaved in one run. Nothing is fetched or built here: the user
# points the script at a test-backend-ops they built themselves (docs/vs-ggml.md).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/vs-ggml.sh --ggml-bin PATH [options]

Times Q4_K and Q6_K matrix-vector products on the CPU with ggml and with kdispatch on
the same shapes -- N x K = 4096 x 14336 and 14336 x 4096, M = 1 and 8 rows of
activations (--m for others) -- interleaved (ggml, kdispatch, ggml, kdispatch, ... shape by shape, for
R rounds), and prints per shape the median time of each, the ratio kdispatch / ggml of the
medians (below 1: kdispatch is faster), the lowest and highest ratio of a single
round (ggml and kdispatch back to back: a paired comparison), and each one's bytes per
second as a fraction of the host's read bandwidth, which kdispatch bench measures just
before its own timing in each round (the bytes a call must read and write: weights, x,
y). Near 1 both are bound by the memory, and neither can be much faster than the other.

  ggml:      test-backend-ops perf -o MUL_MAT -b CPU --test-file F, where F holds the
             one shape as a MUL_MAT case (ggml's built-in perf list lacks 14336 x 4096);
             its time is ggml's mean per run over at least one second.
  kdispatch: kdispatch bench --backend cpu --op q4k_gemv|q6k_gemv --no-sweep
             --n N --k K --m M; its time is the median of 10 samples of >= 100 ms
             each, after 200 ms of warm-up (about one second, as ggml's).
  Threads: ggml's test-backend-ops always uses std::thread::hardware_concurrency()
  threads; kdispatch gets the same number (KD_CPU_THREADS), unless --threads says
  otherwise.

options:
  --ggml-bin PATH    ggml's test-backend-ops (default: $GGML_TEST_BACKEND_OPS)
  --kdispatch PATH   the kdispatch command (default: build/cli/kdispatch of this tree)
  --rounds R         rounds (default 5)
  --m LIST           the batch sizes M, comma-separated (default 1,8; each 1..4096):
                     e.g. --m 1,8,64,512 for the prompt-sized batches of a prefill
  --quick            2 rounds and shorter kdispatch samples: a check that it works
  --threads T        KD_CPU_THREADS for kdispatch (default: the online CPU count)
  --backend B        kdispatch's backend: cpu (default) or opencl (its first device,
                     e.g. PoCL on the same CPU: the OpenCL path against ggml's CPU code),
                     or opencl-q8 (that device's q8 GEMV path: KD_OPENCL_GEMV=q8)
  --borrow-weights   kdispatch borrows the bench's buffer for the weights (4 KiB pages,
                     as ggml's and a mapped GGUF file's) instead of taking its own copy
                     (kd_tensor_quant: 2 MiB pages where the kernel offers them)
  --json FILE        also write the machine, the commands and every round as JSON
  -h, --help         this text

Building test-backend-ops from a ggml checkout (yours; the project ships none of it),
with ggml's own cmake, out of tree:
  cmake -S ggml -B ggml-build -DGGML_NATIVE=ON -DGGML_BUILD_TESTS=ON
  cmake --build ggml-build --target test-backend-ops
  bench/vs-ggml.sh --ggml-bin ggml-build/bin/test-backend-ops
Exit status: 0 every shape timed by both; 1 a run failed; 2 bad usage.
EOF
}

die() { echo "vs-ggml.sh: $*" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ggml=${GGML_TEST_BACKEND_OPS:-}
kd=$here/../build/cli/kdispatch
rounds=5
quick=0
threads=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
json=
backend=cpu
m_list=1,8
weights=()

while [ $# -gt 0 ]; do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --ggml-bin) [ $# -ge 2 ] || die "--ggml-bin needs a path"; ggml=$2; shift ;;
    --kdispatch) [ $# -ge 2 ] || die "--kdispatch needs a path"; kd=$2; shift ;;
    --rounds) [ $# -ge 2 ] || die "--rounds needs a number"; rounds=$2; shift ;;
    --threads) [ $# -ge 2 ] || die "--threads needs a number"; threads=$2; shift ;;
    --m) [ $# -ge 2 ] || die "--m needs a list such as 1,8"; m_list=$2; shift ;;
    --json) [ $# -ge 2 ] || die "--json needs a file"; json=$2; shift ;;
    --backend) [ $# -ge 2 ] || die "--backend needs cpu, opencl or opencl-q8"; backend=$2; shift ;;
    --quick) quick=1 ;;
    --borrow-weights) weights=(--borrow-weights) ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
[ "$quick" = 1 ] && [ "$rounds" = 5 ] && rounds=2
case $rounds in '' | *[!0-9]* | 0) die "--rounds: a positive number" ;; esac
case $threads in '' | *[!0-9]* | 0) die "--threads: a positive number" ;; esac
case $backend in cpu | opencl | opencl-q8) ;; *) die "--backend: cpu, opencl or opencl-q8, not '$backend'" ;; esac
IFS=, read -r -a ms <<<"$m_list"
[ ${#ms[@]} -gt 0 ] || die "--m: a list of batch sizes such as 1,8"
for m in "${ms[@]}"; do
    case $m in '' | *[!0-9]* | 0*) die "--m: batch sizes 1..4096, not '$m'" ;; esac
    [ "$m" -le 4096 ] || die "--m: batch sizes 1..4096, not '$m'"
done
kd_backend=${backend%-q8} # opencl-q8: the opencl device, its default path set to q8
kd_opencl_gemv=exact
[ "$backend" = opencl-q8 ] && kd_opencl_gemv=q8
[ -n "$ggml" ] || die "no ggml test-backend-ops given: --ggml-bin PATH or GGML_TEST_BACKEND_OPS (see --help for how to build it)"
[ -x "$ggml" ] || die "$ggml: not an executable (see --help for how to build test-backend-ops)"
[ -x "$kd" ] || die "$kd: not an executable (build kdispatch first, or pass --kdispatch)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- the shapes ---------------------------------------------------------------------------
# ggml type ids are GGUF's on-disk ids (fixed): f32 0, q4_K 12, q6_K 14; block of 256
# values: q4_K 144 bytes, q6_K 210.
shapes=()
for q in q4_K q6_K; do
    for nk in 4096x14336 14336x4096; do
        for m in "${ms[@]}"; do shapes+=("$q:$nk:$m"); done
    done
done

# GGML_OP_MUL_MAT's number differs between ggml versions: find it by offering a tiny
# f32 MUL_MAT under every candidate number and seeing which one ggml names MUL_MAT.
find_mul_mat_op() {
    local f=$tmp/probe.txt op
    : >"$f"
    for op in $(seq 1 48); do
        echo "$op 0 4 1 1 1 0 2 0 8 4 1 1 4 32 128 128 0 8 1 1 1 4 32 32 32 kdprobe_op$op" >>"$f"
    done
    "$ggml" support -o MUL_MAT -b CPU --test-file "$f" 2>/dev/null |
        sed -n 's/.*name=kdprobe_op\([0-9]*\),.*/\1/p' | head -n 1
}

# One line of ggml's test-file format: op, out type, out ne[4], 0 op params, 2 sources
# (type, ne[4], nb[4]) and a name: out[N, M] = W[K, N] (quantized) x X[K, M] (f32).
ggml_case_line() {
    local op=$1 q=$2 n=$3 k=$4 m=$5 name=$6 t bb
    if [ "$q" = q4_K ]; then t=12; bb=144; else t=14; bb=210; fi
    local row=$((k / 256 * bb))
    echo "$op 0 $n $m 1 1 0 2 $t $k $n 1 1 $bb $row $((row * n)) $((row * n))" \
        "0 $k $m 1 1 4 $((4 * k)) $((4 * k * m)) $((4 * k * m)) $name"
}

# ---- one timing each ----------------------------------------------------------------------
ggml_us() { # q n k m -> microseconds per run, or nothing
    local name="kd_$1_N$2_K$3_M$4" f=$tmp/case.txt
    ggml_case_line "$mul_mat_op" "$1" "$2" "$3" "$4" "$name" >"$f"
    "$ggml" perf -o MUL_MAT -b CPU --test-file "$f" 2>>"$tmp/ggml.err" |
        sed -n "s/.*name=$name,.* runs - *\([0-9.]*\) us\/run.*/\1/p" | head -n 1
}

kd_us() { # q n k m -> "microseconds bytes read_bw_gbps" (median of the samples; the bytes
          # of one call; the host's read bandwidth measured by this bench run), or nothing
    local op=q4k_gemv csv=$tmp/kd.csv
    [ "$1" = q6_K ] && op=q6k_gemv
    # like ggml's mean over >= 1 s: warm-up, then 10 samples of >= 100 ms each, so that
    # both tools are timed in the same steady state of the caches (docs/vs-ggml.md)
    local extra=(--warmup-ms 200 --sample-ms 100 --repeats 10 --budget-ms 1000)
    [ "$quick" = 1 ] && extra=(--warmup-ms 50 --sample-ms 20 --repeats 5 --budget-ms 100)
    rm -f "$csv"
    KD_CPU_THREADS=$threads KD_OPENCL_GEMV=$kd_opencl_gemv "$kd" bench --backend "$kd_backend" --op "$op" --no-sweep --default-path --no-progress \
        --quick "${extra[@]}" ${weights[@]+"${weights[@]}"} --n "$2" --k "$3" --m "$4" --csv "$csv" >/dev/null 2>>"$tmp/kd.err" || true
    [ -f "$csv" ] || return 0
    # columns found by name, so that added columns do not matter; the device row named
    # after the backend is its default GEMV path (--default-path: no row for the other
    # path, which would double kdispatch's share of the run)
    awk -F, -v op="$op" -v dev="$kd_backend" -v n="$2" -v k="$3" -v m="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["section"] == "headline" && $col["device"] == dev && $col["op"] == op && $col["n"] == n &&
        $col["k"] == k && $col["m"] == m {
            printf "%.2f %s %s\n", $col["median_s"] * 1e6, $col["bytes"], $col["read_bw_gbps"]; exit }' "$csv"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
    else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

json_num() { if [ "$1" = n/a ]; then echo null; else echo "$1"; fi; }
json_list() { echo "$1" | xargs | tr ' ' ','; } # the timings of the rounds that ran

# ---- the run ------------------------------------------------------------------------------
mul_mat_op=$(find_mul_mat_op)
[ -n "$mul_mat_op" ] || { echo "vs-ggml.sh: $ggml did not run a MUL_MAT case from a test file" >&2; exit 1; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
# kdispatch's own line for the device it times, under the run's settings: the SIMD level
# and GEMV path (cpu), or the OpenCL device with PoCL's target and the path (opencl); so a
# run with KD_CPU_SIMD or POCL_KERNELLIB_NAME says what it measured
kd_device=$(KD_CPU_THREADS=$threads KD_OPENCL_GEMV=$kd_opencl_gemv "$kd" devices 2>/dev/null |
    awk -v b="$kd_backend" '$1 == b && $2 == "present" { sub(/^[^ ]+ +present +/, ""); print; exit }' |
    tr -d '"\\')
echo "vs-ggml: ${cpu:-unknown cpu}, $(getconf _NPROCESSORS_ONLN) cpus; kdispatch --backend $kd_backend, KD_OPENCL_GEMV=$kd_opencl_gemv, KD_CPU_THREADS=$threads;" \
    "ggml: its hardware_concurrency; $rounds rounds, interleaved per shape"
echo "kdispatch device: ${kd_device:-not found in 'kdispatch devices'}"
if [ ${#weights[@]} -gt 0 ]; then kd_weights="borrowed (the bench's malloc'd buffer, --borrow-weights)"
else kd_weights="kdispatch's own copy (kd_tensor_quant)"; fi
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)
echo "kdispatch weights: $kd_weights; transparent huge pages: ${thp:-not offered}"
[ "$threads" = "$(getconf _NPROCESSORS_ONLN)" ] ||
    echo "note: kdispatch runs $threads threads, ggml its own count: not a like-for-like run" >&2
# frac US BYTES GBPS: the bytes per second of a call of US microseconds over GBPS
frac() { awk -v us="$1" -v b="$2" -v bw="$3" 'BEGIN { printf "%.4f", b / (us * 1e-6) / (bw * 1e9) }'; }
declare -A g k rr gf kf bw nbytes
status=0
for ((r = 1; r <= rounds; r++)); do
    for s in "${shapes[@]}"; do
        IFS=: read -r q nk m <<<"$s"
        n=${nk%x*} kk=${nk#*x}
        gu=$(ggml_us "$q" "$n" "$kk" "$m")
        read -r ku kbytes kbw <<<"$(kd_us "$q" "$n" "$kk" "$m")" || true
        [ -n "$gu" ] && [ -n "$ku" ] || status=1
        g[$s]="${g[$s]:-} ${gu}"
        k[$s]="${k[$s]:-} ${ku}"
        # the round's own ratio: ggml and kdispatch ran back to back, so it is a paired
        # comparison, which the machine's slower drifts move less than the medians
        if [ -n "$gu" ] && [ -n "$ku" ]; then
            rr[$s]="${rr[$s]:-} $(awk -v a="$ku" -v b="$gu" 'BEGIN { printf "%.4f", a / b }')"
        fi
        fr=""
        if [ -n "$gu" ] && [ -n "$ku" ] && [ -n "${kbw:-}" ] && [ "$kbw" != 0 ]; then
            gf[$s]="${gf[$s]:-} $(frac "$gu" "$kbytes" "$kbw")"
            kf[$s]="${kf[$s]:-} $(frac "$ku" "$kbytes" "$kbw")"
            bw[$s]="${bw[$s]:-} $kbw"
            nbytes[$s]=$kbytes
            fr=$(printf '  of %s GB/s read: ggml %s kdispatch %s' "$kbw" "$(frac "$gu" "$kbytes" "$kbw")" \
                "$(frac "$ku" "$kbytes" "$kbw")")
        fi
        printf '  round %d/%d %-5s %5s x %-5s M=%s  ggml %10s us  kdispatch %10s us%s\n' \
            "$r" "$rounds" "$q" "$n" "$kk" "$m" "${gu:-failed}" "${ku:-failed}" "$fr" >&2
    done
done

printf '\n%-6s %-13s %3s %16s %16s %16s %14s %10s %10s\n' type "N x K" M "ggml median us" "kdispatch med us" \
    "kdispatch/ggml" "rounds' ratios" "ggml frac" "kd frac"
rows=()
for s in "${shapes[@]}"; do
    IFS=: read -r q nk m <<<"$s"
    gm=$(echo "${g[$s]}" | median)
    km=$(echo "${k[$s]}" | median)
    ratio=n/a
    [ "$gm" != n/a ] && [ "$km" != n/a ] && ratio=$(awk -v a="$km" -v b="$gm" 'BEGIN { printf "%.2f", a / b }')
    spread=$(echo "${rr[$s]:-}" | tr ' ' '\n' | sort -g |
        awk 'NF { if (!n++) lo = $1; hi = $1 } END { if (n) printf "%.2f-%.2f", lo, hi; else print "n/a" }')
    gfm=$(echo "${gf[$s]:-}" | median)
    kfm=$(echo "${kf[$s]:-}" | median)
    printf '%-6s %-13s %3s %16s %16s %16s %14s %10s %10s\n' "$q" "${nk/x/ x }" "$m" "$gm" "$km" "$ratio" "$spread" \
        "$gfm" "$kfm"
    rows+=("$(printf '{"type":"%s","n":%s,"k":%s,"m":%s,"ggml_median_us":%s,"kdispatch_median_us":%s,"ratio":%s,"ggml_us":[%s],"kdispatch_us":[%s],"round_ratios":[%s],"bytes":%s,"read_bw_gbps":[%s],"ggml_frac_of_read_bw":[%s],"kdispatch_frac_of_read_bw":[%s],"ggml_frac_median":%s,"kdispatch_frac_median":%s}' \
        "$q" "${nk%x*}" "${nk#*x}" "$m" "$(json_num "$gm")" "$(json_num "$km")" "$(json_num "$ratio")" \
        "$(json_list "${g[$s]}")" "$(json_list "${k[$s]}")" "$(json_list "${rr[$s]:-}")" \
        "${nbytes[$s]:-null}" "$(json_list "${bw[$s]:-}")" "$(json_list "${gf[$s]:-}")" "$(json_list "${kf[$s]:-}")" \
        "$(json_num "$gfm")" "$(json_num "$kfm")")")
done

if [ -n "$json" ]; then
    {
        printf '{"cpu":"%s","cpus":%s,"kd_backend":"%s","kd_device":"%s","kd_cpu_threads":%s,"rounds":%s,"quick":%s,' \
            "${cpu//\"/}" "$(getconf _NPROCESSORS_ONLN)" "$backend" "$kd_device" "$threads" "$rounds" "$quick"
        printf '"ggml_command":"%s perf -o MUL_MAT -b CPU --test-file <one shape>",' "$ggml"
        printf '"kdispatch_command":"KD_CPU_THREADS=%s KD_OPENCL_GEMV=%s %s bench --backend %s --op <op> --no-sweep --default-path --quick --warmup-ms 200 --sample-ms 100 --repeats 10 --budget-ms 1000%s --n N --k K --m M","kd_weights":"%s",' "$threads" "$kd_opencl_gemv" "$kd" "$kd_backend" "${weights[*]:+ ${weights[*]}}" "$kd_weights"
        printf '"rows":[%s]}\n' "$(IFS=,; echo "${rows[*]}")"
    } >"$json"
    echo "wrote $json"
fi
if [ "$status" != 0 ]; then
    echo "vs-ggml.sh: some runs failed; their messages:" >&2
    tail -n 5 "$tmp/ggml.err" "$tmp/kd.err" >&2 || true
fi
exit "$status"
