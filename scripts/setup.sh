#!/usr/bin/env bash
# Installs what kdispatch needs on a Debian machine: idempotent, non-interactive. Packages
# already present are left alone; nothing is fetched when everything is there.
set -euo pipefail

DEBS=(build-essential cmake pkg-config libopenblas-dev libcunit1-dev
      ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo python3 python3-pip
      frama-c-base why3 z3 cvc4
      oclgrind openmpi-bin libopenmpi-dev clang llvm libclc-14 libclc-14-dev
      qemu-user libsimde-dev
      llvm-14-dev libclang-14-dev libpolly-14-dev zlib1g-dev libreadline-dev)
# (the last line: what scripts/oclgrind-fixed.sh needs to build oclgrind)
PIP=(gguf numpy matplotlib)

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=python3
pip_missing=()
for p in "${PIP[@]}"; do
  $PY -c "import $p" 2>/dev/null || pip_missing+=("$p")
done
if ((${#pip_missing[@]})); then
  echo "setup: installing Python packages (test oracles, plots): ${pip_missing[*]}"
  $PY -m pip install --quiet --disable-pip-version-check "${pip_missing[@]}" ||
    $PY -m pip install --quiet --disable-pip-version-check --break-system-packages "${pip_missing[@]}"
fi
# oclgrind with the fixes its --uninitialized check needs on our vector kernels (a few
# minutes, once per machine; tests/CMakeLists.txt finds it). Without it the oclgrind
# tests that need it are skipped with the reason, so a failure here stops nothing.
if [ "${KD_SKIP_OCLGRIND_FIXED:-0}" != 1 ]; then
  scripts_dir=$(cd "$(dirname "$0")" && pwd)
  "$scripts_dir/oclgrind-fixed.sh" >/dev/null ||
    echo "setup: the fixed oclgrind was not built (above): the oclgrind tests that need it (uninitialized_vector_kernels, gpu_shapes, catches_planted_uninit) will be skipped"
fi
echo "setup: done"
