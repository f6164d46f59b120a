#!/usr/bin/env bash
# Fetches, on a Debian machine with network, the packages the build needs beyond a CUDA
# toolkit, CMake and a C compiler (OpenBLAS, CUnit, the OpenCL headers and ICD loader,
# pkg-config), for a GPU machine that can install nothing: `apt-get download` into
# .deps/debs, `dpkg -x` into .deps/prefix (both git-ignored), then trims what the build
# never reads (static libraries, LAPACK, docs) and removes the .deb files, so that
# .deps/ stays near 40 MB. scripts/gpu-check.sh points CMake at .deps/prefix.
# See docs/gpu-check.md.
#
# usage: scripts/fetch-gpu-deps.sh [--keep-debs]
# Needs apt-get and dpkg (Debian or Ubuntu; the prefix holds amd64 binaries built for
# Debian 12, glibc 2.36: the GPU machine needs that glibc or newer). No root needed,
# except for the `apt-get update` it suggests when the package lists are missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps=$root/.deps
keep_debs=0
for arg in "$@"; do
  case $arg in
    --keep-debs) keep_debs=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fetch-gpu-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

packages=(
  libopenblas0 libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev
  libgfortran5 libquadmath0                 # OpenBLAS's own run-time needs
  libcunit1 libcunit1-dev
  ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-headers opencl-c-headers opencl-clhpp-headers
  pkg-config pkgconf pkgconf-bin libpkgconf3 # in case the GPU image has no pkg-config
)

for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "fetch-gpu-deps: $tool not found (Debian/Ubuntu only)" >&2; exit 1; }
done

rm -rf "$deps/debs" "$deps/prefix"
mkdir -p "$deps/debs" "$deps/prefix"
echo "fetch-gpu-deps: apt-get download ${#packages[@]} packages into .deps/debs"
if ! (cd "$deps/debs" && apt-get download "${packages[@]}"); then
  echo "fetch-gpu-deps: apt-get download failed; if the package lists are missing, run" >&2
  echo "  apt-get update   (as root) and try again" >&2
  exit 1
fi

for deb in "$deps"/debs/*.deb; do
  dpkg -x "$deb" "$deps/prefix"
done

# Trim: the build links the shared libraries only.
prefix=$deps/prefix
rm -rf "$prefix"/usr/share/doc "$prefix"/usr/share/man "$prefix"/usr/share/lintian
find "$prefix" \( -name '*.a' -o -name 'liblapack*' \) \( -type f -o -type l \) -delete
find "$prefix" -xtype l -delete # links whose target went

# Record what is there, for gpu-check.sh's log and for anyone reading the folder.
{
  echo "# .deps/prefix: unpacked by scripts/fetch-gpu-deps.sh on $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# from $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  for deb in "$deps"/debs/*.deb; do
    dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"
  done
} > "$deps/MANIFEST"

if [ "$keep_debs" -eq 0 ]; then
  rm -rf "$deps/debs"
fi

for f in usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig/openblas.pc \
         usr/lib/x86_64-linux-gnu/pkgconfig/cunit.pc \
         usr/lib/x86_64-linux-gnu/pkgconfig/OpenCL.pc usr/include/CL/cl.h usr/bin/pkgconf; do
  [ -e "$prefix/$f" ] || { echo "fetch-gpu-deps: expected $f in the prefix, missing" >&2; exit 1; }
done
echo "fetch-gpu-deps: .deps/prefix ready ($(du -sh "$deps" | cut -f1) in .deps)"
