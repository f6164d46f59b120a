#!/bin/sh
# Rebuilds the clang fixtures of tests/test_ptx_check.c from cl-kernels/rmsnorm.cl
# (clang-14, llvm-14 and libclc-14 needed; the .ptx files are committed).
#   clang_rmsnorm.ptx           -O2, libclc linked, -nvptx-short-ptr  (pass)
#   clang_rmsnorm_nolibclc.ptx  -O2, get_group_id left as calls      (pass)
#   clang_O0_rmsnorm.ptx        -O0, libclc linked: local memory, calls (pass)
#   clang_longptr_rmsnorm.ptx   -O2 without -nvptx-short-ptr: 64-bit shared (rule 2 fails)
set -e
cd "$(dirname "$0")"
root=../../../..
out=..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clc=/usr/lib/clc/nvptx64--nvidiacl.bc
cl() { clang-14 -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -Xclang -finclude-default-header \
       -I "$root/cl-kernels" "$@" -S -emit-llvm "$root/cl-kernels/rmsnorm.cl" -o "$tmp/k.ll"; }
cl -O2
llc-14 -mcpu=sm_80 -nvptx-short-ptr "$tmp/k.ll" -o "$out/clang_rmsnorm_nolibclc.ptx"
llvm-link-14 "$tmp/k.ll" "$clc" -o "$tmp/k.bc" 2>/dev/null
opt-14 -O2 "$tmp/k.bc" -o "$tmp/k.opt.bc"
llc-14 -mcpu=sm_80 -nvptx-short-ptr "$tmp/k.opt.bc" -o "$out/clang_rmsnorm.ptx"
llc-14 -mcpu=sm_80 "$tmp/k.opt.bc" -o "$out/clang_longptr_rmsnorm.ptx"
cl -O0
llvm-link-14 "$tmp/k.ll" "$clc" -o "$tmp/k0.bc" 2>/dev/null
llc-14 -O0 -mcpu=sm_80 -nvptx-short-ptr "$tmp/k0.bc" -o "$out/clang_O0_rmsnorm.ptx"
