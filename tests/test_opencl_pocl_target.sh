#!/usr/bin/env bash
# test_opencl on one of the CPU targets a distribution's PoCL ships, so that the kernels
# are checked with the code PoCL generates for CPUs other than this one.
#
#   test_opencl_pocl_target.sh TEST_OPENCL KDISPATCH VARIANT
#
# Debian builds PoCL with one kernel library per x86 variant (/usr/share/pocl/
# kernel-<triple>-<variant>.bc) and picks the best one the host runs; each variant fixes
# the LLVM CPU that kernels are compiled for (sse2: athlon64, ssse3: core2, sse41: penryn,
# avx: sandybridge, avx_f16c: ivybridge, avx2: haswell, avx512: skylake-avx512, which is
# also what an Intel Sapphire Rapids gets). POCL_KERNELLIB_NAME selects one. A variant
# changes what the kernels compile to: below avx2 the q8 GEMV has no __AVX2__ and runs its
# generic OpenCL-vector form, below avx the float vectors are 128 bits wide.
#
# Exit 77 (skipped, with the reason) when this host cannot run the variant's instructions,
# or when this PoCL does not take the variant (its device keeps another CPU name); a
# failure of test_opencl fails the test.
set -uo pipefail
test_opencl=${1:?usage: test_opencl_pocl_target.sh TEST_OPENCL KDISPATCH VARIANT}
kdispatch=${2:?usage: test_opencl_pocl_target.sh TEST_OPENCL KDISPATCH VARIANT}
variant=${3:?usage: test_opencl_pocl_target.sh TEST_OPENCL KDISPATCH VARIANT}

# variant -> the LLVM CPU PoCL names its device after, and the host flags it needs
case $variant in
sse2) cpu=athlon64 need="sse2" ;;
ssse3) cpu=core2 need="ssse3" ;;
sse41) cpu=penryn need="sse4_1" ;;
avx) cpu=sandybridge need="avx sse4_2 popcnt" ;;
avx_f16c) cpu=ivybridge need="avx f16c" ;;
avx2) cpu=haswell need="avx2 fma bmi1 bmi2 f16c movbe" ;;
avx512) cpu=skylake-avx512 need="avx512f avx512bw avx512dq avx512vl avx512cd avx2 fma" ;;
*) echo "unknown PoCL variant '$variant'"; exit 2 ;;
esac

flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
for f in $need; do
    case $flags in
    *" $f "*) ;;
    *) echo "skipped: this CPU lacks '$f', which PoCL's $variant target ($cpu) needs"; exit 77 ;;
    esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kd-pocl-$variant-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pocl-cache" "$work/tmp"
# own caches: a binary compiled for one target is never reused by another
export POCL_KERNELLIB_NAME=$variant POCL_CACHE_DIR=$work/pocl-cache TMPDIR=$work/tmp \
       KD_CACHE_DIR=$work/tmp
unset POCL_WORK_GROUP_METHOD POCL_LLVM_CPU_NAME KD_OPENCL_DEVICE KD_OPENCL_PLATFORM KD_FAULT

line=$("$kdispatch" devices 2>&1 | grep -m1 '^opencl .*present')
if [ -z "$line" ]; then
    echo "skipped: no OpenCL device: $("$kdispatch" devices 2>&1 | grep -m1 '^opencl')"
    exit 77
fi
case $line in
*"pthread-$cpu-"* | *"cpu-$cpu-"* | *"-gnu-$cpu,"*) ;;
*) echo "skipped: PoCL did not take POCL_KERNELLIB_NAME=$variant (no kernel library for it?): $line"
   exit 77 ;;
esac
echo "PoCL target $variant: $line"

out=$work/test_opencl.out
"$test_opencl" >"$out" 2>&1
rc=$?
cat "$out"
# the suite itself must have run on that target, not on one PoCL chose instead
if ! grep -q "^opencl backend: .*$cpu" "$out"; then
    echo "FAIL: test_opencl did not run on PoCL's $cpu device"
    exit 1
fi
exit $rc
