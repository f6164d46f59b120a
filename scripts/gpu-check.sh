#!/usr/bin/env bash
# The GPU check of issue 4, for a machine with an NVIDIA GPU, the CUDA toolkit, CMake and
# a C compiler, where nothing can be installed and there is no network. It
#   1. builds kdispatch against the Debian packages unpacked in .deps/prefix
#      (scripts/fetch-gpu-deps.sh, run beforehand on a machine with network),
#   2. runs `kdispatch devices`, the PTX checker on the built PTX, `kdispatch compare
#      --backend cuda`, the cuda ctests and bench/gpu_gemv_bench (Q4_K and Q6_K GEMV on
#      weights of about 1.2 GB, M = 1 and 8, against the device's measured bandwidth),
#      and, where the driver's libnvidia-opencl.so.1 is found, `compare --backend opencl`
#      on NVIDIA's OpenCL and ptx-check on its program binary (PTX) (skipped otherwise),
#   3. prints a short table last and writes it, with the bench's table, to
#      bench/results/gpu-<gpu name>.txt and, when $OUT is set, to $OUT.
# Every step has a time limit; the whole check stays under 6 minutes.
# Without a GPU (or without a driver) it still builds and runs the steps that need none,
# then says "no GPU" with the reason and exits non-zero. See docs/gpu-check.md.
#
# usage: scripts/gpu-check.sh [--build-dir DIR] [--jobs N]
# exit: 0 all steps passed on a GPU; 1 a step failed; 3 no GPU (the rest passed).
set -u -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-gpu
jobs=$(nproc 2>/dev/null || echo 4)
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build=$(realpath -m "$2"); shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option '$1'" >&2; exit 2 ;;
  esac
done

budget=330 # seconds for the whole check: 6 minutes with room to write the results
start=$(date +%s)
mkdir -p "$build"
log=$build/gpu-check.log
: > "$log"
names=() statuses=() times=()
any_failed=0

say() { echo "gpu-check: $*" | tee -a "$log"; }

record() { # name status seconds
  names+=("$1"); statuses+=("$2"); times+=("$3")
}

# run_step NAME LIMIT_SECONDS COMMAND...: runs it with a time limit (cut to what is left
# of the budget), output to the terminal and the log; records ok / FAILED / TIMEOUT.
run_step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - ($(date +%s) - start)))
  ((limit > left)) && limit=$left
  if ((limit < 5)); then
    record "$name" "SKIPPED (out of time)" 0
    any_failed=1
    return 1
  fi
  echo "== $name (limit ${limit}s): $*" | tee -a "$log"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  local dt=$(($(date +%s) - t0))
  case $rc in
    0) record "$name" ok "$dt" ;;
    124 | 137) record "$name" "TIMEOUT after ${limit}s" "$dt"; any_failed=1 ;;
    *) record "$name" "FAILED (exit $rc)" "$dt"; any_failed=1 ;;
  esac
  return "$rc"
}

# ---- tools and the dependency prefix ------------------------------------------------
for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
  if [ -n "$d" ] && [ -x "$d/bin/nvcc" ]; then PATH=$d/bin:$PATH; break; fi
done
export PATH
for tool in cmake cc nvcc; do
  command -v "$tool" >/dev/null || say "warning: $tool not found$([ $tool = nvcc ] && echo ': the cuda backend will be left out')"
done

prefix=$root/.deps/prefix
if [ -d "$prefix/usr" ]; then
  arch_lib=$prefix/usr/lib/x86_64-linux-gnu
  # pkg-config reads only the prefix's .pc files, and puts the prefix before their paths
  export PKG_CONFIG_LIBDIR=$arch_lib/pkgconfig:$arch_lib/openblas-pthread/pkgconfig:$prefix/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  export CMAKE_PREFIX_PATH=$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export LD_LIBRARY_PATH=$arch_lib:$arch_lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if ! command -v pkg-config >/dev/null; then
    export PKG_CONFIG=$prefix/usr/bin/pkgconf # the prefix's own, when the machine has none
  fi
  say "dependencies from .deps/prefix ($(head -1 "$root/.deps/MANIFEST" 2>/dev/null | sed 's/^# //'))"
else
  say "no .deps/prefix (scripts/fetch-gpu-deps.sh): building with what this machine has"
fi

# ---- build ----------------------------------------------------------------------------
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}" "$build/CMakeCache.txt"; then
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles" # another generator built here before
fi
built=0
if run_step configure 90 cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release &&
   run_step build 210 cmake --build "$build" --parallel "$jobs"; then
  built=1
fi
kd=$build/cli/kdispatch

# ---- is there a GPU the cuda backend can use? -----------------------------------------
gpu_name="" no_gpu_reason=""
if command -v nvidia-smi >/dev/null && gpu_line=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1) && [ -n "$gpu_line" ] && ! grep -qi "fail\|error" <<<"$gpu_line"; then
  gpu_name=${gpu_line%%,*}
  say "nvidia-smi: $gpu_line"
else
  no_gpu_reason="nvidia-smi: ${gpu_line:-not found}"
fi
if [ "$built" = 1 ] && [ -x "$kd" ]; then
  cuda_line=$("$kd" devices 2>&1 | grep -E '^cuda +' | head -1 | sed -E 's/ +/ /g')
  if ! grep -qE '^cuda +present' <<<"$cuda_line"; then
    no_gpu_reason="kdispatch: ${cuda_line:-no cuda line in 'kdispatch devices'}${no_gpu_reason:+; $no_gpu_reason}"
    gpu_name=""
  elif [ -z "$gpu_name" ]; then
    gpu_name=$(sed -E 's/^cuda present ([^(]*) \(.*/\1/' <<<"$cuda_line")
  fi
elif [ -z "$no_gpu_reason" ]; then
  no_gpu_reason="the build failed, so the cuda backend could not be asked"
fi

# ---- NVIDIA's OpenCL (issue 11) ---------------------------------------------------------
# The driver's libnvidia-opencl.so.1, or "" when this machine has none.
find_nvidia_opencl() {
  local f
  f=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 /{print $NF; exit}')
  if [ -z "$f" ]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 \
             /usr/lib/x86_64-linux-gnu/nvidia/current; do
      [ -e "$d/libnvidia-opencl.so.1" ] && { f=$d/libnvidia-opencl.so.1; break; }
    done
  fi
  echo "$f"
}

# compare --backend opencl on the GPU through NVIDIA's OpenCL, its program binary (PTX)
# dumped (KD_OPENCL_DUMP_BINARY) and checked by ptx-check, directly and --from-opencl.
# When no ICD file registers the driver, a temporary vendors directory with nvidia.icd is
# used for these steps only (OCL_ICD_VENDORS; nothing on the system changes).
nvidia_opencl_steps() {
  local lib icd_dir="" vendors dump
  lib=$(find_nvidia_opencl)
  if [ -z "$lib" ]; then
    say "NVIDIA OpenCL: libnvidia-opencl.so.1 not found: its steps are skipped"
    for s in "compare --backend opencl" "ptx-check opencl binary" "ptx-check --from-opencl"; do
      record "$s" "not run: no NVIDIA OpenCL" 0
    done
    return 0
  fi
  if [ -z "$gpu_name" ]; then
    say "NVIDIA OpenCL: $lib found, but no GPU: its steps are skipped"
    for s in "compare --backend opencl" "ptx-check opencl binary" "ptx-check --from-opencl"; do
      record "$s" "not run: no GPU" 0
    done
    return 0
  fi
  vendors=${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}
  if ! grep -qs libnvidia-opencl "$vendors"/*.icd "$vendors" 2>/dev/null; then
    icd_dir=$(mktemp -d "${TMPDIR:-/tmp}/kd-nvidia-icd-XXXXXX")
    echo "$lib" > "$icd_dir/nvidia.icd"
    vendors=$icd_dir
    say "NVIDIA OpenCL: $lib has no ICD file; using OCL_ICD_VENDORS=$icd_dir for these steps"
  fi
  dump=$build/opencl-nvidia
  rm -rf "$dump" && mkdir -p "$dump/cache"
  local envs=(env OCL_ICD_VENDORS="$vendors" KD_OPENCL_PLATFORM=NVIDIA
              KD_CACHE_DIR="$dump/cache" KD_OPENCL_DUMP_BINARY="$dump")
  run_step "compare --backend opencl" 120 "${envs[@]}" "$kd" compare --backend opencl
  local ptx
  ptx=$(ls "$dump"/kdispatch-opencl-*.ptx 2>/dev/null | head -1)
  if [ -n "$ptx" ]; then
    run_step "ptx-check opencl binary" 60 "${ptxcheck[@]}" "$ptx"
  else
    record "ptx-check opencl binary" "FAILED (no PTX dumped in $dump)" 0
    any_failed=1
  fi
  run_step "ptx-check --from-opencl" 60 "${envs[@]}" "${ptxcheck[@]}" --from-opencl
  [ -n "$icd_dir" ] && rm -rf "$icd_dir"
  return 0
}

# ---- checks ---------------------------------------------------------------------------
bench_out=$build/gpu_gemv_bench.txt
: > "$bench_out"
if [ "$built" = 1 ]; then
  run_step devices 30 "$kd" devices
  ptxcheck=("$kd" ptx-check)
  "$kd" --help 2>&1 | grep -q ptx-check || ptxcheck=("$build/ptx-check/kd-ptx-check-dev")
  for arch in 90 80; do
    ptx=$build/ptx/kdispatch_sm_$arch.ptx
    if "$kd" --help 2>&1 | grep -q ptx-check; then
      run_step "ptx-check sm_$arch" 60 "$kd" ptx-check "$ptx"
    elif [ -x "$build/ptx-check/kd-ptx-check-dev" ]; then
      run_step "ptx-check sm_$arch" 60 "$build/ptx-check/kd-ptx-check-dev" "$ptx"
    else
      record "ptx-check sm_$arch" "FAILED (no ptx-check command built)" 0
      any_failed=1
    fi
  done
  # the cuda tests: without a GPU test_cuda and test_cuda_emu still run, test_cuda_gpu
  # reports itself skipped
  if [ -f "$build/tests/CTestTestfile.cmake" ]; then
    run_step "ctest -L cuda" 120 ctest --test-dir "$build" -L cuda --output-on-failure
  else
    record "ctest -L cuda" "not built (no CUnit)" 0
  fi
  if [ -n "$gpu_name" ]; then
    run_step "compare --backend cuda" 90 "$kd" compare --backend cuda
    if [ -x "$build/bench/gpu_gemv_bench" ]; then
      run_step "gpu_gemv_bench" 120 bash -c "'$build/bench/gpu_gemv_bench' | tee '$bench_out'"
    else
      record "gpu_gemv_bench" "FAILED (bench/gpu_gemv_bench not built)" 0
      any_failed=1
    fi
  else
    for s in "compare --backend cuda" "gpu_gemv_bench"; do
      record "$s" "not run: no GPU" 0
    done
  fi
  nvidia_opencl_steps
fi

# ---- the table, last ------------------------------------------------------------------
summary=$build/gpu-check-summary.txt
{
  echo "kdispatch GPU check, $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$root" describe --always --dirty 2>/dev/null || echo 'no git')"
  echo "gpu: ${gpu_name:-none} (${no_gpu_reason:-${gpu_line:-}})"
  echo "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'not found'); total $(($(date +%s) - start)) s"
  printf '%-24s %-40s %6s\n' step status seconds
  for i in "${!names[@]}"; do
    printf '%-24s %-40s %6s\n' "${names[$i]}" "${statuses[$i]}" "${times[$i]}"
  done
  if [ -s "$bench_out" ]; then
    echo
    grep -vE '^$' "$bench_out"
  fi
} > "$summary"
echo
cat "$summary"

if [ -n "$gpu_name" ]; then
  safe=$(tr -c 'A-Za-z0-9._-' '-' <<<"$gpu_name" | sed -E 's/-+/-/g; s/^-|-$//g')
  mkdir -p "$root/bench/results"
  cp "$summary" "$root/bench/results/gpu-$safe.txt"
  say "table written to bench/results/gpu-$safe.txt"
fi
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
  cp "$summary" "$OUT/gpu-check-summary.txt"
  cp "$log" "$OUT/gpu-check.log"
  [ -n "$gpu_name" ] && cp "$summary" "$OUT/gpu-$safe.txt"
fi

if [ -z "$gpu_name" ]; then
  say "no GPU: $no_gpu_reason"
  [ "$any_failed" = 1 ] && exit 1
  exit 3
fi
exit "$any_failed"
