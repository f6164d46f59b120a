#!/bin/sh
# A suite on an emulated AVX2-only x86 CPU (QEMU user mode, -cpu max of a QEMU whose TCG has
# AVX2 but no AVX-512): the library's own CPU detection, its kernels, OpenBLAS and PoCL
# then run as on an AVX2-only host, where any AVX-512 instruction dies of SIGILL. CI's
# machines have AVX-512; users' CPUs often do not.
#   test_qemu_cpu.sh PROBE SUITE [ARGS...]
# PROBE: avx512_probe (an AVX-512 instruction). Exit 77 (skipped) without qemu-x86_64.
set -u
probe=$1
shift
qemu=$(command -v qemu-x86_64) || {
    echo "SKIPPED: qemu-x86_64 not found (Debian: qemu-user; scripts/setup.sh installs it)"
    exit 77
}
cpu=max
ulimit -c 0 2>/dev/null # the probe's SIGILL is expected: no core file
# the probe: natively it must run where the host has AVX-512 (so it does use AVX-512) ...
if grep -qw avx512f /proc/cpuinfo; then
    "$probe" >/dev/null || { echo "FAIL: avx512_probe failed natively on an AVX-512 host"; exit 1; }
fi
# ... and under the emulation it must die: else the emulated CPU is no AVX2-only host, and
# the suite would prove nothing here (skipped, with the reason; never passed)
"$qemu" -cpu "$cpu" "$probe" >/dev/null 2>&1
rc=$?
if [ "$rc" -ne 132 ]; then
    echo "SKIPPED: under qemu -cpu $cpu the AVX-512 probe exited $rc, not SIGILL (132): this"
    echo "         QEMU emulates AVX-512, so its CPU does not stand for an AVX2-only host"
    exit 77
fi
echo "qemu -cpu $cpu: AVX-512 refused (the probe died of SIGILL); running $(basename "$1")"
exec "$qemu" -cpu "$cpu" "$@"
