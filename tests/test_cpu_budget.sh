#!/usr/bin/env bash
# Thread counts follow the CPUs the process may use (runtime/host_cpus.h): held to one CPU
# by taskset, the cpu backend runs one thread and says why, the cpu device has one compute
# unit, and PoCL's CPU device is told to run one thread; KD_CPU_THREADS and a PoCL count
# the user set still win. Needs taskset and two online CPUs (else skipped, 77).
#   test_cpu_budget.sh path/to/kdispatch
set -uo pipefail
exe=${1:?usage: test_cpu_budget.sh KDISPATCH}
if ! command -v taskset >/dev/null; then
    echo "skipped: no taskset (util-linux)"; exit 77
fi
if [ "$(getconf _NPROCESSORS_ONLN)" -lt 2 ]; then
    echo "skipped: one online CPU, nothing to hold the process to"; exit 77
fi
first=$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//') # a CPU this shell may use
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-cpu-budget-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
export KD_CACHE_DIR=$work/cache
unset KD_CPU_THREADS POCL_CPU_MAX_CU_COUNT POCL_MAX_PTHREAD_COUNT POCL_MAX_COMPUTE_UNITS
failed=0

# check NAME CPU_DETAIL CPU_UNITS THREADS_FROM OPENCL_UNITS -- COMMAND...: devices --json
# under COMMAND: the cpu's detail line holds CPU_DETAIL, its device CPU_UNITS compute
# units, its "threads_from" THREADS_FROM and "threads" the count CPU_DETAIL names;
# OPENCL_UNITS is checked on PoCL's CPU device only ("-": not checked)
check() {
    local name=$1 detail=$2 units=$3 from=$4 cl_units=$5; shift 6
    if ! "$@" "$exe" devices --json >"$work/out.json" 2>"$work/err"; then
        echo "FAIL: $name: devices --json: $(head -n 1 "$work/err")"
        failed=$((failed + 1))
        return
    fi
    if python3 - "$work/out.json" "$detail" "$units" "$cl_units" "$from" <<'PY'; then echo "ok:   $name"; else echo "FAIL: $name"; failed=$((failed + 1)); fi
import json, sys
doc = json.load(open(sys.argv[1]))
detail, units, cl_units, want_from = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
threads = int(detail.split(", ")[1].split()[0])  # "host cpu, N thread..."
bad = []
for b in doc["backends"]:
    if not b["present"]:
        continue
    if b["name"] == "cpu" and (b.get("threads"), b.get("threads_from")) != (threads, want_from):
        bad.append(f"cpu threads {b.get('threads')} from {b.get('threads_from')!r}, "
                   f"want {threads} from {want_from!r}")
    for d in b["devices"]:
        if b["name"] == "cpu":
            if detail not in b["detail"]:
                bad.append(f"cpu detail {b['detail']!r} lacks {detail!r}")
            if d["compute_units"] != units:
                bad.append(f"cpu compute units {d['compute_units']}, want {units}")
        elif b["name"] == "opencl" and cl_units != "-" and not d["is_gpu"] \
                and d["platform"] == "Portable Computing Language":
            if d["compute_units"] != int(cl_units):
                bad.append(f"PoCL {d['name']}: {d['compute_units']} compute units, want {cl_units}")
            else:
                print(f"  PoCL {d['name']}: {cl_units} compute units")
for line in bad:
    print("  " + line)
sys.exit(1 if bad else 0)
PY
}

check "one CPU: one thread" "host cpu, 1 thread (one per CPU of its affinity mask)" 1 affinity 1 -- \
    taskset -c "$first"
check "one CPU, KD_CPU_THREADS=3 wins" "host cpu, 3 threads (KD_CPU_THREADS)" 1 KD_CPU_THREADS - -- \
    env KD_CPU_THREADS=3 taskset -c "$first"
check "one CPU, the user's PoCL count wins" "host cpu, 1 thread" 1 affinity 2 -- \
    env POCL_MAX_PTHREAD_COUNT=2 taskset -c "$first"
# every CPU this shell may use: as many threads (no cgroup quota assumed below them)
mine=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')
quota=$("$exe" devices --json | python3 -c '
import json, sys
d = [b for b in json.load(sys.stdin)["backends"] if b["name"] == "cpu"][0]
print("quota" if "cgroup" in d["detail"] else "none")')
if [ "$quota" = none ]; then
    from=affinity
    [ "$mine" = "$(getconf _NPROCESSORS_ONLN)" ] && from=online
    check "this shell's CPUs" "host cpu, $mine thread" "$mine" "$from" - -- env
else
    echo "not checked here: the unconstrained count (a cgroup CPU quota holds this process)"
fi
[ "$failed" -eq 0 ] && echo "all cpu budget checks passed"
exit $((failed > 0))
