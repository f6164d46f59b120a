#!/bin/sh
# kdispatch fleet on one machine: mpirun ranks made into separate, different "hosts" by
# per-rank environment (mpirun's MPMD syntax A : B : C). Usage:
#   test_fleet.sh KDISPATCH CASE     CASE: hetero fault skew shared die hang hang0
#   test_fleet.sh nompi SOURCE_DIR BUILD_DIR
# Every mpirun runs under `timeout` (the outer guard: nothing may hang) with stdin from
# /dev/null (a backgrounded mpirun that holds stdin can stall after MPI_Abort).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
CHECK="$HERE/test_fleet_check.py"
OUT=${TMPDIR:-/tmp}/kd_test_fleet.$$
mkdir -p "$OUT"
trap 'rm -rf "$OUT"' EXIT

# Containers: run as root, no ptrace for single-copy shared memory, more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="timeout -k 10 ${KD_FLEET_TEST_TIMEOUT:-100} mpirun --oversubscribe --allow-run-as-root"
SMALL="--shape 0.5b --m 1,2"   # the smallest built-in shape: seconds per rank

fail() { echo "test_fleet $CASE: FAIL: $*"; exit 1; }

# Three hosts: a = cpu only, scalar; b = cpu (the host's best level) + PoCL; c = cpu only, avx2.
# OCL_ICD_VENDORS pointing nowhere leaves the ICD loader without a platform.
three_nodes() { # extra env for rank 0, 1, 2, then fleet options
    e0=$1 e1=$2 e2=$3
    shift 3
    $MPIRUN \
        -np 1 -x KD_FLEET_NODE=a -x KD_CPU_SIMD=scalar -x OCL_ICD_VENDORS=/nonexistent $e0 \
            "$KD" fleet compare $SMALL "$@" : \
        -np 1 -x KD_FLEET_NODE=b $e1 "$KD" fleet compare $SMALL "$@" : \
        -np 1 -x KD_FLEET_NODE=c -x KD_CPU_SIMD=avx2 -x OCL_ICD_VENDORS=/nonexistent $e2 \
            "$KD" fleet compare $SMALL "$@" </dev/null
}

if [ "$1" = nompi ]; then
    CASE=nompi
    SRC=$2 BLD=$3/fleet-nompi
    cmake -S "$SRC" -B "$BLD" -DKD_ENABLE_MPI=OFF -DKD_ENABLE_OPENCL=OFF -DKD_ENABLE_CUDA=OFF \
        >"$OUT/cfg.log" 2>&1 || { cat "$OUT/cfg.log"; fail "configure"; }
    grep -q "MPI found" "$OUT/cfg.log" && fail "KD_ENABLE_MPI=OFF still found MPI"
    cmake --build "$BLD" --target kdispatch-cli -j2 >"$OUT/build.log" 2>&1 ||
        { tail -30 "$OUT/build.log"; fail "build"; }
    nm "$BLD/cli/kdispatch" | grep -q " U MPI_Init" && fail "the no-MPI build links MPI"
    "$BLD/cli/kdispatch" fleet compare --shape 0.5b >"$OUT/o" 2>&1
    rc=$?
    cat "$OUT/o"
    [ $rc -ne 0 ] || fail "exit status 0 without MPI"
    grep -q "built without MPI (Open MPI not found at build time: apt-get install libopenmpi-dev openmpi-bin)" \
        "$OUT/o" || fail "no 'built without MPI' message"
    echo "test_fleet nompi: ok (exit $rc)"
    exit 0
fi

KD=$1 CASE=$2
# Node b runs the host's best SIMD level (avx512 on an AVX-512 host, avx2 on an AVX2-only
# one): the hetero check reads it from here, as `kdispatch devices` names it.
KD_FLEET_HOST_SIMD=$(env -u KD_CPU_SIMD "$KD" devices 2>/dev/null |
                     sed -n 's/^cpu .* SIMD \([a-z0-9]*\).*/\1/p' | head -1)
[ -n "$KD_FLEET_HOST_SIMD" ] || fail "kdispatch devices names no cpu SIMD level"
export KD_FLEET_HOST_SIMD
case "$CASE" in
hetero)
    three_nodes "" "" "" --json >"$OUT/r.json" 2>"$OUT/err"
    rc=$?
    [ $rc -eq 0 ] || { cat "$OUT/err"; fail "exit status $rc"; }
    python3 -m json.tool "$OUT/r.json" >/dev/null || fail "report is not valid JSON"
    python3 "$CHECK" hetero "$OUT/r.json" || fail "report"
    # the text and CSV forms of the same report
    three_nodes "" "" "" >"$OUT/r.txt" 2>/dev/null || fail "text report exit status"
    cat "$OUT/r.txt"
    for n in a b c; do
        grep -Eq "^ +[0-9]+  $n +worker" "$OUT/r.txt" || fail "text report lacks node $n"
    done
    grep -q "^verdict: PASS (0 of 3 ranks failed)" "$OUT/r.txt" || fail "text verdict"
    three_nodes "" "" "" --csv >"$OUT/r.csv" 2>/dev/null || fail "CSV report exit status"
    python3 - "$OUT/r.csv" <<'PY' || fail "CSV report"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
nodes = {r["node"] for r in rows if r["section"] == "node"}
assert nodes == {"a", "b", "c"}, nodes
agree = [r for r in rows if r["section"] == "agreement" and r["metric"] == "pass"]
assert agree and all(r["value"] == "true" for r in agree), agree
PY
    ;;
fault)
    three_nodes "" "-x KD_FAULT=opencl:launch:1:always" "" --json >"$OUT/r.json" 2>"$OUT/err"
    rc=$?
    [ $rc -ne 0 ] || fail "exit status 0 with a fault on rank 1"
    grep -q "FAILED: rank 1 (node b)" "$OUT/err" || { cat "$OUT/err"; fail "rank 1 not named"; }
    python3 "$CHECK" fault "$OUT/r.json" || fail "report"
    # and the checker sees it: the same report is not a passing fleet
    python3 "$CHECK" hetero "$OUT/r.json" >/dev/null && fail "the hetero check passed a failed run"
    # a node that lacks what is asked for (opencl on a and c): those two are named, b is not
    three_nodes "" "" "" --op rmsnorm --backend cpu,opencl >"$OUT/r.txt" 2>/dev/null &&
        fail "exit status 0 with opencl absent on two nodes"
    cat "$OUT/r.txt"
    grep -q "^FAILED: rank 0 (node a, host .*): compare exited with status 2: .*opencl requested but absent" \
        "$OUT/r.txt" || fail "rank 0 lacking opencl is not named"
    grep -q "^FAILED: rank 2 (node c" "$OUT/r.txt" || fail "rank 2 lacking opencl is not named"
    grep -q "^FAILED: rank 1" "$OUT/r.txt" && fail "rank 1 has opencl but is named"
    ;;
skew)
    # ranks started on this machine inherit mpirun's environment: the hook reaches rank 2
    KD_FLEET_TEST_SKEW=2 three_nodes "" "" "" --json >"$OUT/r.json" 2>"$OUT/err"
    rc=$?
    [ $rc -ne 0 ] || fail "exit status 0 with rank 2's values off"
    python3 "$CHECK" skew "$OUT/r.json" || fail "report"
    python3 "$CHECK" hetero "$OUT/r.json" >/dev/null && fail "the hetero check passed disagreeing nodes"
    ;;
shared)
    $MPIRUN -np 2 "$KD" fleet compare $SMALL --op rmsnorm,q4k_gemv --json </dev/null \
        >"$OUT/r.json" 2>"$OUT/err"
    rc=$?
    [ $rc -eq 0 ] || { cat "$OUT/err"; fail "exit status $rc"; }
    python3 "$CHECK" shared "$OUT/r.json" || fail "report"
    # --ranks-per-host 2: both ranks of the host work
    $MPIRUN -np 2 "$KD" fleet compare $SMALL --op rmsnorm --ranks-per-host 2 --json </dev/null \
        >"$OUT/r2.json" 2>"$OUT/err" || { cat "$OUT/err"; fail "--ranks-per-host 2 exit status"; }
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
roles=[r['role'] for r in d['records']]; assert roles == ['worker']*2, roles" "$OUT/r2.json" ||
        fail "--ranks-per-host 2 did not make both ranks work"
    ;;
die|hang|hang0)
    # die: rank 1 is killed (SIGKILL) before it reports; hang: rank 2 never reports (rank
    # 0's clock names it); hang0: rank 0 itself hangs (its own watchdog names it).
    case "$CASE" in
    die) export KD_FLEET_TEST_DIE=1; want="rank 1" ;;
    hang) export KD_FLEET_TEST_HANG=2; want="rank 2 (node c" ;;
    hang0) export KD_FLEET_TEST_HANG=0; want="rank 0 (node a" ;;
    esac
    start=$(date +%s)
    three_nodes "" "" "" --deadline 8 --op rmsnorm >"$OUT/o" 2>&1 &
    job=$!
    # Open MPI's mpirun can hang in its own teardown after a rank was killed: every rank
    # has exited (zombies of mpirun), mpirun waits on a futex until the outer timeout.
    # (Seen in about 1 run of 10 on a loaded 2-core VM, with kdispatch builds from before
    # and after round 2's sixth session alike.) What kdispatch answers for is that its ranks end; so the time taken is until
    # the last rank ended, and an mpirun still up 15 s after that is stopped and said so.
    ranks_ended=
    while kill -0 "$job" 2>/dev/null; do
        # mpirun's children: ranks still running, and ranks that exited unreaped (zombies)
        mp=$(pgrep -f "^mpirun .*$KD fleet compare" | head -n 1)
        kids=$( [ -n "$mp" ] && ps -o stat= --ppid "$mp" | awk '/^Z/ { z++; next } { l++ }
            END { print l + 0, z + 0 }')
        if [ -z "$ranks_ended" ] && [ "${kids:-x}" != x ] && [ "${kids% *}" -eq 0 ] &&
            [ "${kids#* }" -gt 0 ]; then
            ranks_ended=$(date +%s)
        elif [ -n "$ranks_ended" ] && [ $(( $(date +%s) - ranks_ended )) -ge 15 ]; then
            echo "note: every rank ended $(( ranks_ended - start )) s in; mpirun did not exit (Open MPI teardown hang): stopped"
            pkill -TERM -f "^mpirun .*$KD fleet compare" 2>/dev/null
            sleep 2
            pkill -KILL -f "^mpirun .*$KD fleet compare" 2>/dev/null
            break
        fi
        sleep 1
    done
    wait "$job"
    rc=$?
    [ "$rc" -ne 0 ] || { cat "$OUT/o"; fail "exit status 0"; }
    took=$(( ${ranks_ended:-$(date +%s)} - start ))
    cat "$OUT/o"
    # the outer timeout is 100 s: a run that ends well before it was ended by the deadline
    # or by mpirun noticing the dead rank, not by the guard
    [ $took -le 40 ] || fail "took $took s with a deadline of 8 s (status $rc)"
    grep -q "$want" "$OUT/o" || fail "the message does not name $want"
    echo "ended in $took s with status $rc"
    ;;
*)
    fail "unknown case"
    ;;
esac
echo "test_fleet $CASE: ok"
