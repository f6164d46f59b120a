#!/usr/bin/env python3
"""Generates large valid PTX modules for the ptx-check performance figures
(bench/ptx/ptx_check_perf.sh):
  big   -- copies of the built kernels (renamed) up to SIZE_MB, then the six real pairs;
  funcs -- N small functions: N/2 kernels (each using its own module-scope .shared
           variable, the case that was functions x shared variables) and N/2 .func helpers
           they call, then the six real pairs.
Usage: gen_ptx_perf.py big BUILT.ptx OUT.ptx SIZE_MB | funcs BUILT.ptx OUT.ptx N"""
import re
import sys


def split_header(text):
    """(header up to the first function, the functions' text)."""
    m = re.search(r"^\s*(//[^\n]*\n\s*)*\.(visible |weak )?(\.entry|\.func)", text, re.M)
    i = text.index(".", m.start()) if m else len(text)
    i = text.rfind("\n", 0, i) + 1
    return text[:i], text[i:]


def big(built, out, size_mb):
    text = open(built).read()
    head, body = split_header(text)
    target = size_mb * 1024 * 1024
    with open(out, "w") as f:
        f.write(head)
        n, i = len(head), 0
        while n + len(body) < target:
            copy = body.replace("kd_", "c%d_kd_" % i)
            f.write(copy)
            n += len(copy)
            i += 1
        f.write(body)


def funcs(built, out, count):
    text = open(built).read()
    head, body = split_header(text)
    with open(out, "w") as f:
        f.write(head)
        for i in range(count // 2):
            f.write(".shared .align 4 .b8 sv%d[%d];\n" % (i, 16 + 4 * (i % 8)))
        for i in range(count // 2):
            f.write(
                ".func (.param .b32 h%d_retval0) h%d(.param .b32 h%d_param_0)\n{\n"
                "\t.reg .b32 \t%%r<3>;\n\tld.param.u32 \t%%r1, [h%d_param_0];\n"
                "\tadd.s32 \t%%r2, %%r1, %d;\n\tst.param.b32 \t[h%d_retval0+0], %%r2;\n\tret;\n}\n"
                % (i, i, i, i, i, i))
            f.write(
                ".visible .entry k%d(.param .u64 k%d_param_0)\n{\n"
                "\t.reg .b32 \t%%r<6>;\n\t.reg .b64 \t%%rd<5>;\n"
                "\tld.param.u64 \t%%rd1, [k%d_param_0];\n\tcvta.to.global.u64 \t%%rd2, %%rd1;\n"
                "\tmov.u32 \t%%r1, %%ctaid.y;\n\tmov.u32 \t%%r2, sv%d;\n"
                "\tst.shared.u32 \t[%%r2], %%r1;\n"
                "\t{\n\t.param .b32 param0;\n\tst.param.b32 \t[param0+0], %%r1;\n"
                "\t.param .b32 retval0;\n\tcall.uni (retval0), h%d, (param0);\n"
                "\tld.param.b32 \t%%r3, [retval0+0];\n\t}\n"
                "\tmul.wide.u32 \t%%rd3, %%r3, 4;\n\tadd.s64 \t%%rd4, %%rd2, %%rd3;\n"
                "\tst.global.u32 \t[%%rd4], %%r1;\n\tret;\n}\n" % (i, i, i, i, i))
        f.write(body)


if __name__ == "__main__":
    kind, built, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    (big if kind == "big" else funcs)(built, out, n)
