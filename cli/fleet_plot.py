#!/usr/bin/env python3
"""Plots a `kdispatch fleet bench --csv` report: GB/s by node and device.

Usage: fleet_plot.py --csv FLEET.csv --out PLOT.png [--title TEXT]

One panel per op (the headline rows of every node's bench, smallest M of each), one bar
per node x device; each node's own measured bandwidth (host read bandwidth for cpu, the
device's for an offload device) is drawn as a tick above its bar, and the bar is labelled
with its fraction of that bandwidth. The image format follows the file name's extension.
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
    sys.stderr.write(f"fleet_plot.py: {e}\nfleet_plot.py: matplotlib is needed: run "
                     "scripts/setup.sh (by hand: python3 -m pip install matplotlib)\n")
    sys.exit(2)


def read(path):
    """{op: {(node, device): value}} of GB/s and of the fraction of the node's own
    bandwidth, from the headline rows with the smallest M of each op, node and device."""
    gbps, frac, m_of = defaultdict(dict), defaultdict(dict), {}
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["section"] == "bench"]
    for r in rows:
        key = (r["op"], f'{r["rank"]}:{r["node"]}', r["device"])
        m_of[key] = min(int(r["m"]), m_of.get(key, 1 << 30))
    for r in rows:
        op, node, dev = key = (r["op"], f'{r["rank"]}:{r["node"]}', r["device"])
        if int(r["m"]) != m_of[key]:
            continue
        if r["metric"] == "gbps":
            gbps[op][(node, dev)] = float(r["value"])
        elif r["metric"] == "frac_of_own_bw":
            frac[op][(node, dev)] = float(r["value"])
    return gbps, frac


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="kdispatch fleet bench: GB/s by node and device")
    args = ap.parse_args()
    gbps, frac = read(args.csv)
    if not gbps:
        sys.exit(f"fleet_plot.py: {args.csv} has no bench rows (run `kdispatch fleet bench`)")
    ops = sorted(gbps)
    fig, axes = plt.subplots(len(ops), 1, figsize=(9, 2.6 * len(ops)), squeeze=False)
    for ax, op in zip(axes[:, 0], ops):
        keys = sorted(gbps[op])
        labels = [f"{n}\n{d}" for n, d in keys]
        vals = [gbps[op][k] for k in keys]
        bars = ax.bar(range(len(keys)), vals, color="tab:blue")
        for b, k in zip(bars, keys):
            fr = frac[op].get(k)
            if fr:
                ax.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{fr:.0%}",
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("GB/s", fontsize=8)
        ax.set_title(f"{op} (label: fraction of the node's own bandwidth)", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(args.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"fleet_plot.py: wrote {args.out}")


if __name__ == "__main__":
    main()
