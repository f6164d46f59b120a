#!/usr/bin/env python3
"""Checks a `kdispatch fleet compare --json` report for tests/test_fleet.sh.

Usage: test_fleet_check.py MODE REPORT.json
  hetero  three nodes a, b, c made different (simd scalar / the host's best with PoCL / avx2), all
          passing and agreeing; every record complete
  fault   rank 1 failed (its opencl launches fail), and only rank 1
  skew    rank 2's agreement values are off: the agreement fails and names rank 2 only
  shared  two ranks on one host: rank 0 works, rank 1 is idle ("shared-host")
Exits 1 with the reasons when the report is not what MODE expects.
"""
import json
import os
import sys

errors = []


def expect(cond, what):
    if not cond:
        errors.append(what)


def backends(rec):
    return {b["name"]: b["present"] for b in rec["devices"]["backends"]}


def check_record_complete(rec):
    for key in ("rank", "node", "hostname", "role", "cpu", "cpus", "simd", "devices", "rc",
                "result", "agreement", "command", "seed"):
        expect(key in rec, f"rank {rec.get('rank')}: record lacks '{key}'")
    res = rec.get("result") or {}
    expect(res.get("command") == "compare", f"rank {rec.get('rank')}: no compare result")
    expect(len(res.get("results", [])) > 0, f"rank {rec.get('rank')}: no compare checks")


def hetero(d):
    recs = d["records"]
    expect(len(recs) == 3, f"{len(recs)} records, want 3")
    expect([r["node"] for r in recs] == ["a", "b", "c"], "nodes are not a, b, c")
    # b runs the host's best level (KD_FLEET_HOST_SIMD, from test_fleet.sh): avx512 on an
    # AVX-512 host, avx2 on an AVX2-only one, where b and c then differ by PoCL alone
    best = os.environ.get("KD_FLEET_HOST_SIMD", "avx512")
    expect([r["simd"] for r in recs] == ["scalar", best, "avx2"],
           f"simd levels {[r['simd'] for r in recs]}, want scalar, {best}, avx2")
    expect([r["role"] for r in recs] == ["worker"] * 3, "not every rank worked")
    ocl = [backends(r).get("opencl") for r in recs]
    expect(ocl == [False, True, False], f"opencl present per node: {ocl}")
    for r in recs:
        check_record_complete(r)
        expect(r["result"]["verdict"] == "PASS", f"rank {r['rank']}: compare {r['result']['verdict']}")
        expect(r["seed"] == d["seed"], f"rank {r['rank']}: seed {r['seed']} != {d['seed']}")
    expect(len(d["agreement"]) > 0, "no agreement rows")
    for a in d["agreement"]:
        # a, c: cpu only; b: cpu and opencl
        expect(a["outputs"] == 4, f"{a['op']} M={a['m']}: {a['outputs']} outputs, want 4")
        expect(a["pass"], f"{a['op']} M={a['m']}: nodes disagree (max diff {a['max_diff']})")
        expect(a["max_diff"] is not None and a["max_diff"] <= d["tolerance"] * 1e3,
               f"{a['op']}: max_diff {a['max_diff']}")
    expect(d["failures"] == [], f"failures: {d['failures']}")
    expect(d["verdict"] == "PASS", f"verdict {d['verdict']}")


def fault(d):
    failed = [f["rank"] for f in d["failures"]]
    expect(failed == [1], f"failed ranks {failed}, want [1]")
    expect(d["verdict"] == "FAIL", "verdict is not FAIL")
    r1 = d["records"][1]
    bad = [c for c in r1["result"]["results"] if not c["pass"]]
    # opencl, or its q8 path (opencl-q8) on a CPU device: the fault hits both
    expect(bad and all((c["backend"] or "").startswith("opencl") or
                       (c["reference"] or "").startswith("opencl") for c in bad),
           "rank 1's failed checks are not all opencl's")
    expect(any(c["status"] == "KD_ERR_LAUNCH" for c in bad), "no KD_ERR_LAUNCH on rank 1")
    for r in (d["records"][0], d["records"][2]):
        expect(r["result"]["verdict"] == "PASS", f"rank {r['rank']} did not pass")


def skew(d):
    failed = [f["rank"] for f in d["failures"]]
    expect(failed == [2], f"failed ranks {failed}, want [2]")
    expect(any(not a["pass"] for a in d["agreement"]), "the agreement did not fail")
    expect(all(a["worst_at"].startswith("c/") for a in d["agreement"] if not a["pass"]),
           "a failed agreement row does not point at node c")
    expect(all(r["result"]["verdict"] == "PASS" for r in d["records"]),
           "compare itself should pass on every rank")
    expect(d["verdict"] == "FAIL", "verdict is not FAIL")


def shared(d):
    roles = [r["role"] for r in d["records"]]
    expect(roles == ["worker", "shared-host"], f"roles {roles}")
    expect(d["records"][1]["result"] is None, "the idle rank ran something")
    expect(d["verdict"] == "PASS", f"verdict {d['verdict']}")


def main():
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        d = json.load(f)  # raises on invalid JSON: the test fails
    {"hetero": hetero, "fault": fault, "skew": skew, "shared": shared}[mode](d)
    if errors:
        print(f"test_fleet_check.py {mode}: FAIL\n  " + "\n  ".join(errors))
        sys.exit(1)
    print(f"test_fleet_check.py {mode}: ok")


if __name__ == "__main__":
    main()
