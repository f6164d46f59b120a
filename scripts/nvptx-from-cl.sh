#!/usr/bin/env bash
# Builds NVPTX from the OpenCL kernels without a GPU or NVIDIA's driver: each
# cl-kernels/*.cl is compiled by clang for `nvptx64-nvidia-nvcl` (OpenCL C 1.2, the GPU
# work-group shapes the backend asks for on a GPU: -DKD_CL_GPU_SHAPES=1), linked with
# libclc's nvptx64--nvidiacl.bc (the OpenCL built-ins), and lowered by llc to PTX for sm_80.
#
#   scripts/nvptx-from-cl.sh OUT_DIR [--long-shared-ptr]
#
# By default llc gets -nvptx-short-ptr: 32-bit shared (and local, const) addresses, as
# NVIDIA's own OpenCL compiler makes them. --long-shared-ptr leaves it out (64-bit shared
# addresses), which ptx-check's rule 2 must reject. Prints the PTX files, one per line.
# Exit 77 when clang, llc or libclc is missing (ctest reports it skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: nvptx-from-cl.sh OUT_DIR [--long-shared-ptr]}
short=-nvptx-short-ptr
[ "${2:-}" = --long-shared-ptr ] && short=
[ -z "${2:-}" ] || [ "${2:-}" = --long-shared-ptr ] || { echo "unknown option: $2" >&2; exit 2; }

first_of() { # the first command of $@ on PATH
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return 0; }; done
    return 1
}
clang=${KD_CLANG:-$(first_of clang-14 clang || true)}
llc=${KD_LLC:-$(first_of llc-14 llc || true)}
libclc=${KD_LIBCLC_NVPTX:-}
if [ -z "$libclc" ]; then
    for f in /usr/lib/clc/nvptx64--nvidiacl.bc /usr/share/clc/nvptx64--nvidiacl.bc \
             /usr/lib/llvm-14/lib/clc/nvptx64--nvidiacl.bc; do
        [ -f "$f" ] && { libclc=$f; break; }
    done
fi
if [ -z "$libclc" ] && command -v dpkg >/dev/null; then
    libclc=$(dpkg -L libclc-14-dev libclc-14 2>/dev/null | grep '/nvptx64--nvidiacl\.bc$' | head -1 || true)
fi
for need in clang llc libclc; do
    [ -n "${!need}" ] || { echo "nvptx-from-cl: $need not found (apt-get install clang-14 llvm-14 libclc-14-dev)" >&2; exit 77; }
done

mkdir -p "$out"
for cl in "$root"/cl-kernels/*.cl; do
    name=$(basename "$cl" .cl)
    # gemv_common.cl is included by both GEMV files; alone it holds only kd_gemv_xsum
    "$clang" -target nvptx64-nvidia-nvcl -x cl -cl-std=CL1.2 -O2 \
        -Xclang -finclude-default-header -D__OPENCL_VERSION__=120 -DKD_CL_GPU_SHAPES=1 \
        -I"$root/cl-kernels" -I"$root/runtime/quant" \
        -Xclang -mlink-builtin-bitcode -Xclang "$libclc" -Wno-linker-warnings \
        -emit-llvm -c "$cl" -o "$out/$name.bc"
    "$llc" -mcpu=sm_80 $short "$out/$name.bc" -o "$out/$name.ptx"
    echo "$out/$name.ptx"
done
