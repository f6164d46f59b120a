#!/bin/sh
# Rebuilds the nvcc fixtures of tests/test_ptx_check.c from demo.cu (CUDA toolkit
# needed; the .ptx files are committed so the tests run without one).
set -e
cd "$(dirname "$0")"
out=..
gen() { name=$1; shift; nvcc -ptx -arch=sm_80 "$@" demo.cu -o "$out/nvcc_$name.ptx"; }
gen base
gen lineinfo -lineinfo
gen fast_math --use_fast_math
gen host_O0 -Xcompiler -O0
gen rdc_helper -rdc=true -DHELPER
gen rows_only_checked -DROWS_ONLY_CHECKED=1
gen rdc_shared_helper -rdc=true -DSHARED_HELPER
gen dyn_shared -DDYN_SHARED
# rows.cu: a batched kernel looping over its m_dim rows (nvcc -O3 strength-reduces the row
# offset into advancing pointers); the last two are bugs
rows() { name=$1; shift; nvcc -ptx -arch=sm_80 -O3 "$@" rows.cu -o "$out/nvcc_rows_$name.ptx"; }
rows loop
rows loop_unroll1 -DUNROLL1
rows pointer_end -DPOINTER_END
rows down_counter -DDOWN_COUNTER
rows bound_by_n -DBOUND_BY_N
rows no_row_access -DNO_ROW_ACCESS
rows flat_pointer -DFLAT_POINTER
rows inner_loop_row0 -DINNER_LOOP_ROW0
rows noinline_rdc -rdc=true -DNOINLINE
rows noinline_rdc_row0 -rdc=true -DNOINLINE_ROW0
# -rdc=true, kernels and their helpers in two PTX files
nvcc -ptx -arch=sm_80 -rdc=true rdc_kernels.cu -o "$out/nvcc_rdc_extern_kernels.ptx"
nvcc -ptx -arch=sm_80 -rdc=true rdc_helpers.cu -o "$out/nvcc_rdc_extern_helpers.ptx"
# -G (device debug: no optimisation, each carried value moved into a fresh register)
rowsG() { name=$1; shift; nvcc -ptx -arch=sm_80 -G "$@" rows.cu -o "$out/nvcc_rows_G_$name.ptx"; }
rowsG down_counter -DDOWN_COUNTER
rowsG flat_pointer -DFLAT_POINTER
rowsG inner_loop_row0 -DINNER_LOOP_ROW0
