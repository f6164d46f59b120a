#!/usr/bin/env bash
# `kdispatch devices --json` is valid JSON whose backends say, as data, which GEMV paths
# they offer and which one a call without a path flag takes (kd_backend_gemv_paths): the
# cpu both, default q8 unless KD_CPU_GEMV=exact; an OpenCL CPU device (row-per-item GEMV
# shape) both, default exact unless KD_OPENCL_GEMV=q8, a GPU device (GPU GEMV shape) exact;
# an absent backend no such keys.
#   test_cli_devices.sh path/to/kdispatch
set -uo pipefail
exe=${1:?usage: test_cli_devices.sh KDISPATCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/kd-cli-devices-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
export KD_CACHE_DIR=$work/cache
failed=0

# check CPU_DEFAULT OPENCL_DEFAULT [VAR=value ...]
check() {
    local cpu=$1 cl=$2; shift 2
    if ! env "$@" "$exe" devices --json >"$work/out.json" 2>"$work/err"; then
        echo "FAIL: $* kdispatch devices --json: $(head -n 1 "$work/err")"
        failed=$((failed + 1))
        return
    fi
    if python3 - "$work/out.json" "$cpu" "$cl" <<'PY'; then echo "ok:   ${*:-defaults}"; else echo "FAIL: ${*:-defaults}"; failed=$((failed + 1)); fi
import json, sys
doc = json.load(open(sys.argv[1]))
want = {"cpu": sys.argv[2], "opencl": sys.argv[3]}
bad = []
for b in doc["backends"]:
    paths, dflt = b.get("gemv_paths"), b.get("gemv_default")
    if not b["present"]:
        if paths is not None or dflt is not None:
            bad.append(f"{b['name']}: absent but has GEMV paths {paths}")
        continue
    if not paths or paths[0] != dflt or len(set(paths)) != len(paths):
        bad.append(f"{b['name']}: paths {paths}, default {dflt}")
        continue
    gpu_shapes = "GPU GEMV shape" in b["detail"]
    if b["name"] == "cpu":
        expect = [want["cpu"], "exact" if want["cpu"] == "q8" else "q8"]
    elif b["name"] == "opencl":
        expect = ["exact"] if gpu_shapes else [want["opencl"], "exact" if want["opencl"] == "q8" else "q8"]
    else:
        expect = ["exact"]
    if paths != expect:
        bad.append(f"{b['name']}: paths {paths}, want {expect}")
    # the device line names the same default path
    if f"GEMV {dflt}" not in b["detail"]:
        bad.append(f"{b['name']}: detail does not say 'GEMV {dflt}': {b['detail']}")
for line in bad:
    print("  " + line)
sys.exit(1 if bad else 0)
PY
}

check q8 exact
check exact exact KD_CPU_GEMV=exact
check q8 q8 KD_OPENCL_GEMV=q8
check exact q8 KD_CPU_GEMV=exact KD_OPENCL_GEMV=q8
[ "$failed" -eq 0 ]
