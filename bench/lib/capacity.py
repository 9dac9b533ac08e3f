#!/usr/bin/env python3
"""Side-by-side REGISTER capacity sweep and half-capacity latency for several registrars.

  capacity.py --server NAME:PORT:PID [--server ...] --out results.json

Builds on find-capacity.sh / summarise.py of the shared harness (same pass rule: median
failed calls < 0.1 % and achieved >= 95 % of the target), but shortened so that one run of
bench/run.sh stays reasonable, and interleaved server by server so that both see the same
machine noise:

  1. coarse sweep: RATES (calls/s), one run of COARSE_DURATION s each; a server leaves the
     sweep at its first failing step;
  2. PROBES=2 bisection probes between its last passing and first failing step (500 calls/s grain);
  3. REPS runs of FINAL_DURATION s at the highest passing rate (stepping down by half a step,
     at most MAX_BACKOFF times, if their median fails) -> capacity = median achieved rate,
     REGISTERs per server CPU-second = median over those runs;
  4. LAT_REPS runs of LAT_DURATION s at half of that capacity with PCAP=1 (dumpcap on lo;
     microsecond request->final-response latency per transaction, both transactions pooled)
     -> median of the runs' p50 and p99.  Without dumpcap: sipp's RTD (4 ms steps).

Every run's RESULT line is appended to RESULTS_JSONL.  Environment: RATES, COARSE_DURATION=8,
FINAL_DURATION=20, REPS=3, LAT_DURATION=10, LAT_REPS=3, PAUSE=2, USERS=10000, TRANSPORT=u1.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)


def env_int(k, d):
    return int(os.environ.get(k, d))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


NOISE = {"waited_s": 0.0, "retried": 0, "kept_disturbed": 0}


def run_one(srv, rate, duration, label, jsonl, pcap=False):
    """One run; a run during which other processes used more than NOISE_MAX_FRAC (default 0.1) of
    the machine's CPU is repeated after NOISE_WAIT s, up to NOISE_RETRIES times, within a total
    waiting budget of NOISE_BUDGET_S (the last attempt is kept and marked "disturbed")."""
    limit = float(os.environ.get("NOISE_MAX_FRAC", "0.1")) * duration * (os.cpu_count() or 1)
    for attempt in range(env_int("NOISE_RETRIES", 3) + 1):
        res = run_once(srv, rate, duration, label, jsonl, pcap)
        res["disturbed"] = res["other_cpu_s"] > limit
        if not res["disturbed"]:
            return res
        if attempt == env_int("NOISE_RETRIES", 3) or NOISE["waited_s"] >= env_int("NOISE_BUDGET_S", 300):
            break
        wait = env_int("NOISE_WAIT", 15)
        print(f"    (disturbed: other processes used {res['other_cpu_s']} CPU-s > {limit:.1f}; retrying in {wait} s)",
              file=sys.stderr, flush=True)
        NOISE["waited_s"] += wait
        NOISE["retried"] += 1
        time.sleep(wait)
    NOISE["kept_disturbed"] += 1
    return res


def sipp_procs(pcap):
    """sipp processes sharing a capacity run (SIPP_PROCS, default 1 as in the shared harness; on
    2 cores a second sipp takes the CPU the server would use); latency runs use one."""
    return 1 if pcap else max(1, env_int("SIPP_PROCS", 1))


def run_once(srv, rate, duration, label, jsonl, pcap=False):
    """One run at `rate` calls/s, split evenly over sipp_procs() sipp processes started together
    (each with its own local port and output directory); their results are merged."""
    procs = sipp_procs(pcap)
    count = int(rate * duration) // procs
    stamp = time.strftime("%Y%m%d-%H%M%S")
    children = []
    for i in range(procs):
        env = dict(os.environ, SERVER_PID=str(srv["pid"]), LABEL=f"{srv['name']} {label}", MODE="auth",
                   PCAP="1" if pcap else "0", SIPP_RTT="1" if pcap else "0", LOCAL_PORT=str(env_int("LOCAL_PORT", 15060) + i),
                   OUTDIR=f"/tmp/regbench/runs/{stamp}-{srv['name']}-{label}-r{int(rate)}-sipp{i + 1}")
        children.append(subprocess.Popen([sys.executable, os.path.join(HERE, "regbench.py"), "127.0.0.1",
                                          str(srv["port"]), str(rate / procs), str(count)],
                                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in children:
        out, err = p.communicate()
        res = next((json.loads(l[7:]) for l in out.splitlines() if l.startswith("RESULT ")), None)
        if res is None:
            print(out[-2000:], err[-2000:], file=sys.stderr)
            raise SystemExit(f"regbench.py gave no RESULT for {srv['name']} at {rate}")
        results.append(res)
    res = merge_runs(results, rate)
    res["server"] = srv["name"]
    res["phase"] = label
    with open(jsonl, "a") as f:
        f.write(json.dumps(res) + "\n")
    ok = passes(res, rate)
    lat = res.get("pcap_latency_ms") or {}
    print(f"[{time.strftime('%H:%M:%S')}] {srv['name']:9s} {label:10s} target {rate:6g}/s: achieved "
          f"{res['achieved_rate']} calls/s, failed {res['failed_pct']}%, retrans {res['retrans_pct']}%, "
          f"UDP drops sipp {res.get('udp_drops_sipp')} server {res.get('udp_drops_server')}, "
          f"server CPU {res['server_cpu_pct']}%, {res['registers_per_server_cpu_s']} REG/CPU-s, sipp CPU "
          f"{res['sipp_cpu_pct']}%, other CPU {res['other_cpu_s']} s"
          + (f", pcap p50 {lat.get('p50')} p99 {lat.get('p99')} ms" if lat else "")
          + ("" if ok else "  -> FAIL"), file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("PAUSE", "2")))
    return res


def merge_runs(results, rate):
    """One result for sipp processes that ran side by side: counts and rates add up; the server's
    CPU (measured by each over nearly the same window) is the largest; each process counted the
    others as "other CPU", which is taken back out."""
    if len(results) == 1:
        return results[0]
    res = dict(results[0])
    total = lambda k: sum((r.get(k) or 0) for r in results)  # noqa: E731
    for k in ("count", "calls_created", "successful", "failed", "retransmissions", "udp_drops_sipp",
              "achieved_rate", "overall_rate", "sipp_cpu_s", "sipp_cpu_pct"):
        res[k] = round(total(k), 2)
    for k in ("udp_drops_server", "server_cpu_s", "server_cpu_pct", "wall_s", "elapsed_s", "sipp_exit",
              "udp_rcvbuf_errors", "udp_in_errors"):
        res[k] = max((r.get(k) or 0) for r in results)
    details = {}
    for r in results:
        for k, v in (r.get("failure_detail") or {}).items():
            details[k] = details.get(k, 0) + v
    txn = res["txn_per_call"]
    ok, failed = res["successful"], res["failed"]
    res.update({
        "target_rate": rate, "sipp_procs": len(results), "failure_detail": details,
        "failed_pct": round(100.0 * failed / max(1, ok + failed), 4),
        "retrans_pct": round(100.0 * res["retransmissions"] / max(1, (ok + failed) * txn), 4),
        "register_tps": round(res["achieved_rate"] * txn, 1),
        "registers_per_server_cpu_s": round(ok * txn / res["server_cpu_s"], 0) if res["server_cpu_s"] else None,
        "other_cpu_s": round(max(0.0, min((r.get("other_cpu_s") or 0) - (total("sipp_cpu_s") - (r.get("sipp_cpu_s") or 0))
                                          for r in results)), 2),
        "outdir": [r.get("outdir") for r in results],
    })
    return res


def passes(res, rate):
    return (res["failed_pct"] < 0.1 and res["successful"] > 0
            and (res["achieved_rate"] or 0) >= 0.95 * rate)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True, help="NAME:PORT:PID")
    ap.add_argument("--out", required=True)
    ap.add_argument("--jsonl", default="")
    a = ap.parse_args()
    servers = []
    for s in a.server:
        n, port, pid = s.split(":")
        servers.append({"name": n, "port": int(port), "pid": int(pid)})
    rates = [int(x) for x in os.environ.get("RATES", "4000 8000 12000 16000 20000 24000 28000").split()]
    cd, fd, ld = env_int("COARSE_DURATION", 8), env_int("FINAL_DURATION", 20), env_int("LAT_DURATION", 10)
    reps, lreps = env_int("REPS", 3), env_int("LAT_REPS", 3)
    jsonl = a.jsonl or a.out + ".runs.jsonl"

    # 1. coarse sweep, interleaved
    state = {s["name"]: {"last_pass": None, "first_fail": None} for s in servers}
    for rate in rates:
        for s in servers:
            st = state[s["name"]]
            if st["first_fail"] is not None:
                continue
            r = run_one(s, rate, cd, "coarse", jsonl)
            if passes(r, rate):
                st["last_pass"] = rate
            else:
                st["first_fail"] = rate
    # 2. bisection probes between the last passing and the first failing step (PROBES=2)
    for s in servers:
        st = state[s["name"]]
        lo = st["last_pass"] or 0
        hi = st["first_fail"]
        for _ in range(env_int("PROBES", 2)):
            if hi is None:
                break
            mid = (lo + hi) // 2
            mid -= mid % 500
            if mid <= lo:
                break
            r = run_one(s, mid, cd, "probe", jsonl)
            if passes(r, mid):
                lo = st["last_pass"] = mid
            else:
                hi = mid
        st["candidate"] = st["last_pass"] or max(500, (hi or rates[0]) // 4)
        st["step"] = max(500, (rates[1] - rates[0]) // 2 if len(rates) > 1 else 1000)
    # 3. REPS runs at the candidate, interleaved; back off if the median fails
    final = {s["name"]: None for s in servers}
    for attempt in range(env_int("MAX_BACKOFF", 2) + 1):
        todo = [s for s in servers if final[s["name"]] is None]
        if not todo:
            break
        runs = {s["name"]: [] for s in todo}
        for rep in range(reps):
            for s in todo:
                runs[s["name"]].append(run_one(s, state[s["name"]]["candidate"], fd, f"final{rep + 1}", jsonl))
        for s in todo:
            st = state[s["name"]]
            rs = runs[s["name"]]
            rate = st["candidate"]
            ok = med([r["failed_pct"] for r in rs]) < 0.1 and med([r["achieved_rate"] for r in rs]) >= 0.95 * rate
            last_try = attempt == env_int("MAX_BACKOFF", 2) or rate - st["step"] < 500
            if ok or last_try:
                final[s["name"]] = {
                    "target_calls_s": rate, "passed": ok, "runs": len(rs),
                    "calls_s": med([r["achieved_rate"] for r in rs]),
                    "calls_s_range": [min(r["achieved_rate"] or 0 for r in rs), max(r["achieved_rate"] or 0 for r in rs)],
                    "register_s": med([r["register_tps"] for r in rs]),
                    "failed_pct": med([r["failed_pct"] for r in rs]),
                    "retrans_pct": med([r["retrans_pct"] for r in rs]),
                    "udp_drops_sipp": med([r.get("udp_drops_sipp") for r in rs]),
                    "udp_drops_server": med([r.get("udp_drops_server") for r in rs]),
                    "reg_per_cpu_s": med([r["registers_per_server_cpu_s"] for r in rs]),
                    "reg_per_cpu_s_range": [min(r["registers_per_server_cpu_s"] or 0 for r in rs),
                                            max(r["registers_per_server_cpu_s"] or 0 for r in rs)],
                    "server_cpu_pct": med([r["server_cpu_pct"] for r in rs]),
                    "sipp_cpu_pct": med([r["sipp_cpu_pct"] for r in rs]),
                    "other_cpu_s": med([r["other_cpu_s"] for r in rs]),
                    "first_fail_calls_s": st["first_fail"],
                    "sipp_limited": st["first_fail"] is None or med([r["sipp_cpu_pct"] / r.get("sipp_procs", 1) for r in rs]) > 90,
                }
            else:
                st["candidate"] = rate - st["step"]
    # 4. latency at half capacity
    have_dumpcap = shutil.which("dumpcap") is not None and os.environ.get("NO_PCAP", "") != "1"
    lat = {s["name"]: [] for s in servers}
    for rep in range(lreps):
        for s in servers:
            f = final[s["name"]]
            rate = max(250, int((f["calls_s"] or f["target_calls_s"]) / 2 // 250 * 250))
            f["latency_calls_s"] = rate
            lat[s["name"]].append(run_one(s, rate, ld, f"latency{rep + 1}", jsonl, pcap=have_dumpcap))
    for s in servers:
        f = final[s["name"]]
        rs = lat[s["name"]]
        if have_dumpcap and all(r.get("pcap_latency_ms") for r in rs):
            f["latency_source"] = "pcap (dumpcap on lo), both transactions pooled"
            f["p50_ms"] = med([r["pcap_latency_ms"]["p50"] for r in rs])
            f["p99_ms"] = med([r["pcap_latency_ms"]["p99"] for r in rs])
            f["p999_ms"] = med([r["pcap_latency_ms"]["p999"] for r in rs])
            for code in ("401", "200"):
                bs = [(r["pcap_latency_ms"].get("by_status") or {}).get(code) for r in rs]
                if all(bs):
                    f[f"p50_ms_{code}"] = med([b["p50"] for b in bs])
                    f[f"p99_ms_{code}"] = med([b["p99"] for b in bs])
        else:
            f["latency_source"] = "sipp RTD of the 2nd transaction (4 ms timer steps)"
            f["p50_ms"] = med([(r["rtt_ms"].get("rtd2") or {}).get("p50") for r in rs])
            f["p99_ms"] = med([(r["rtt_ms"].get("rtd2") or {}).get("p99") for r in rs])
        f["latency_failed_pct"] = med([r["failed_pct"] for r in rs])
        f["latency_other_cpu_s"] = med([r["other_cpu_s"] for r in rs])
    out = {"servers": final, "sipp_procs": sipp_procs(False), "sipp_nice": env_int("SIPP_NICE", 0), "coarse_rates": rates, "durations": {"coarse": cd, "final": fd, "latency": ld},
           "reps": reps, "latency_reps": lreps, "users": env_int("USERS", 10000), "runs_jsonl": jsonl,
           "noise": dict(NOISE, max_frac=float(os.environ.get("NOISE_MAX_FRAC", "0.1")))}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
