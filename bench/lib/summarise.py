#!/usr/bin/env python3
# Origin: copied from the shared bench harness /work/shared/bench/lib/summarise.py (Kamailio baseline
# harness, BASELINE.md); adapted for deskline's bench/ (see bench/README.md).
"""Summarise capacity runs (JSON lines of RESULT objects from regbench.py).

  summarise.py results.jsonl [more.jsonl ...]

Groups runs by (scenario, transport, target rate) and prints a markdown table
with median and [min-max] over the repetitions, then the capacity verdicts:
  sustained : median failed calls < 0.1 % and median achieved >= 95 % of target
  clean     : sustained and median retransmissions < 0.1 % of transactions
(the verdict is the highest rate for which it and every lower rate hold).
"""
import json
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs):
    xs = [x for x in xs if x is not None]
    return f"[{min(xs):g}-{max(xs):g}]" if xs else ""


def fmt(x, nd=0):
    if x is None:
        return "-"
    return f"{x:.{nd}f}"


runs = []
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("RESULT "):
                line = line[7:]
            if line.startswith("{"):
                runs.append(json.loads(line))
groups = {}
for r in runs:
    groups.setdefault((r["scenario"], r["transport"]), {}).setdefault(r["target_rate"], []).append(r)
for (scen, tr), by_rate in groups.items():
    print(f"\n### {scen} over {tr}\n")
    print("| target calls/s | n | achieved calls/s median [min-max] | REGISTER/s | failed % median [max] | retrans % median | "
          "rtd p99 ms (last txn) median | server CPU % of 1 core | REGISTER per server CPU-s median [min-max] | sipp CPU % | other-process CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sustained = clean = None
    ok_so_far = clean_so_far = True
    for rate in sorted(by_rate):
        rs = by_rate[rate]
        ach = [r["achieved_rate"] for r in rs]
        tps = [r["register_tps"] for r in rs]
        fp = [r["failed_pct"] for r in rs]
        rp = [r.get("retrans_pct") for r in rs]
        last_rtd = [max(r["rtt_ms"].items())[1]["p99"] if r["rtt_ms"] else None for r in rs]
        cpu = [r["server_cpu_pct"] for r in rs]
        rpc = [r["registers_per_server_cpu_s"] for r in rs]
        scpu = [r["sipp_cpu_pct"] for r in rs]
        oth = [r["other_cpu_s"] for r in rs]
        print(f"| {rate:g} | {len(rs)} | {fmt(med(ach))} {rng(ach)} | {fmt(med(tps))} | {fmt(med(fp), 3)} [{max(fp):g}] | "
              f"{fmt(med(rp), 3)} | {fmt(med(last_rtd), 1)} | {fmt(med(cpu))} | {fmt(med(rpc))} {rng(rpc)} | {fmt(med(scpu))} | {fmt(med(oth), 1)} |")
        good = med(fp) < 0.1 and med(ach) >= 0.95 * rate
        ok_so_far = ok_so_far and good
        clean_so_far = clean_so_far and good and (med(rp) or 0) < 0.1
        if ok_so_far:
            sustained = rate
        if clean_so_far:
            clean = rate
    print(f"\nhighest sustained rate (<0.1% failed, >=95% of target achieved): {sustained} calls/s")
    print(f"highest clean rate (also <0.1% retransmissions): {clean} calls/s")
