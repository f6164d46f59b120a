#!/usr/bin/env python3
"""Plots a `kdispatch bench --csv` file: GB/s against working set, one panel per op.

Usage: plot.py --csv BENCH.csv --out PLOT.png [--title TEXT]

Each panel has one line per device (colour) and batch size M (line style) from the
sweep rows; the measured host read bandwidth is drawn as a horizontal line (the ceiling
the fractions in the table refer to) and the L2 and last-level cache sizes as vertical
lines. The image format follows the file name's extension (.png, .svg, .pdf).
"""
import argparse
import csv
import sys
from collections import defaultdict

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:
    sys.stderr.write(f"plot.py: {e}\nplot.py: matplotlib is needed: run scripts/setup.sh "
                     "(by hand: python3 -m pip install matplotlib)\n")
    sys.exit(2)

OPS = ["rmsnorm", "rope", "swiglu", "residual_add", "q4k_gemv", "q6k_gemv"]
STYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D"]


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"section", "op", "m", "device", "bytes", "gbps", "read_bw_gbps"}
    if rows and not need <= set(rows[0]):
        sys.exit(f"plot.py: {path} lacks the columns {sorted(need - set(rows[0]))}")
    return rows


def human_bytes(x, _pos=None):
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"]:
        if x < 1024:
            return f"{x:g} {unit}"
        x /= 1024
    return f"{x:g} PiB"


def series_of(rows):
    """{op: {(device, m): [(bytes, gbps, p25 gbps, p75 gbps)]}} from the sweep rows."""
    out = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["section"] != "sweep":
            continue
        b = float(r["bytes"])
        lo = b / float(r["p75_s"]) / 1e9 if r.get("p75_s") else None
        hi = b / float(r["p25_s"]) / 1e9 if r.get("p25_s") else None
        out[r["op"]][(r["device"], int(r["m"]))].append((b, float(r["gbps"]), lo, hi))
    return out


def device_ceilings(rows):
    """{device: GB/s} of the offload devices whose bandwidth bench measured."""
    out = {}
    for r in rows:
        bw = float(r.get("device_bw_gbps") or 0)
        if r.get("backend", "cpu") != "cpu" and bw > 0:
            out[r["device"]] = bw
    return out


def draw_panel(ax, op, series, devices, ms, ceiling, l2, llc, dev_ceilings):
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (dev, m), pts in sorted(series.items()):
        pts.sort()
        x = [p[0] for p in pts]
        y = [p[1] for p in pts]
        c = colours[devices.index(dev) % len(colours)]
        i = ms.index(m)
        ax.plot(x, y, STYLES[i % len(STYLES)], marker=MARKERS[i % len(MARKERS)], ms=3,
                color=c, label=f"{dev} M={m}")
        if all(p[2] is not None for p in pts):
            ax.fill_between(x, [p[2] for p in pts], [p[3] for p in pts], color=c, alpha=0.12,
                            lw=0)
    if ceiling > 0:
        ax.axhline(ceiling, color="black", lw=1.2, label=f"host read bw {ceiling:.1f} GB/s")
    for dev, bw in sorted(dev_ceilings.items()):
        if dev in devices:
            ax.axhline(bw, color=colours[devices.index(dev) % len(colours)], lw=1.0, ls="--",
                       alpha=0.8, label=f"{dev} device bw {bw:.1f} GB/s")
    for size, name in ((l2, "L2"), (llc, "LLC")):
        if size > 0:
            ax.axvline(size, color="grey", lw=0.8, ls=":")
            ax.text(size, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="top",
                    fontsize=7, color="grey")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(human_bytes))
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.set_title(op, fontsize=10)
    ax.set_xlabel("working set (bytes moved per call)", fontsize=8)
    ax.set_ylabel("GB/s (median)", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="kdispatch bench")
    args = ap.parse_args()

    rows = read_rows(args.csv)
    by_op = series_of(rows)
    if not by_op:
        sys.exit(f"plot.py: {args.csv} has no sweep rows to plot")
    ops = [op for op in OPS if op in by_op] + sorted(set(by_op) - set(OPS))
    devices = sorted({dev for s in by_op.values() for dev, _ in s})
    ms = sorted({m for s in by_op.values() for _, m in s})
    ceiling = max(float(r["read_bw_gbps"]) for r in rows)
    l2 = max(int(r.get("l2_bytes") or 0) for r in rows)
    llc = max(int(r.get("llc_bytes") or 0) for r in rows)

    cols = 3 if len(ops) > 2 else len(ops)
    nrows = (len(ops) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.9 * nrows), squeeze=False)
    for ax, op in zip(axes.flat, ops):
        draw_panel(ax, op, by_op[op], devices, ms, ceiling, l2, llc, device_ceilings(rows))
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
               frameon=False)
    fig.suptitle(args.title + "\nshaded: p25..p75 of the samples", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
