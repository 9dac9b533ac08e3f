#!/usr/bin/env python3
"""REGISTER with digest auth over TLS, every phone on its own connection, for several registrars
side by side (bench/tls.sh calls this; the bar: deskline >= 1.5 x Kamailio).

  tlsbench.py --server NAME:PORT:PID[:CA] [--server ...] --sipload PATH --out tls.json [--md tls.md]

Per server one `sipload --control` process (bench/sipload) opens CONNECTIONS TLS connections
(phones 1000.., password pw<user>; at most RAMP_CONCURRENCY handshakes at a time) and keeps them
open for every run; a run is one line `run RATE DURATION` on its stdin, answered with a JSON line.
All runs are interleaved server by server so that both see the same machine noise:

  1. coarse sweep over RATES (calls/s; a call = REGISTER -> 401 -> REGISTER -> 200), COARSE_DURATION
     s each; a server leaves the sweep at its first failing step;
  2. PROBES bisection probes between its last passing and first failing step (GRAIN calls/s);
  3. REPS runs of FINAL_DURATION s at the highest passing rate (stepping down by half a step at
     most MAX_BACKOFF times if their median fails) -> capacity = median achieved rate;
     REGISTERs per server CPU-second = 2 x successful calls / utime+stime of the server's process
     tree (/proc, every Kamailio process summed), median over those runs;
  4. LAT_REPS runs of LAT_DURATION s at half that capacity -> median p50/p99 of each transaction
     as sipload measures it (request written -> response parsed, in the client).

Pass rule of a run: failed < 0.1 % (non-200 final, broken connection, or no answer in TIMEOUT s)
and achieved >= 95 % of the target. Environment: CONNECTIONS=10000 FIRST=1000 RAMP_CONCURRENCY=64
RATES="1000 2000 3000 4000 6000 8000 10000 12000" COARSE_DURATION=8 PROBES=2 GRAIN=250
FINAL_DURATION=15 REPS=3 LAT_DURATION=10 LAT_REPS=3 TIMEOUT=5 SIPLOAD_THREADS=2 PAUSE=2
NOISE_MAX_FRAC=0.1 NOISE_RETRIES=2 NOISE_WAIT=10.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from regbench import all_proc_cpu, cpu_of_tree, other_cpu, proc_tree  # noqa: E402


def env(k, d):
    return type(d)(os.environ.get(k, d))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Load:
    """One sipload --control process with its connections to one server."""

    def __init__(self, srv, sipload, jsonl):
        self.srv = srv
        self.jsonl = jsonl
        cmd = [sipload, "--port", str(srv["port"]), "--connections", str(env("CONNECTIONS", 10000)),
               "--first", str(env("FIRST", 1000)), "--ramp-concurrency", str(env("RAMP_CONCURRENCY", 64)),
               "--timeout", str(env("TIMEOUT", 5.0)), "--threads", str(env("SIPLOAD_THREADS", 2)), "--control"]
        if srv.get("ca"):
            cmd += ["--ca", srv["ca"]]
        if os.environ.get("SIPLOAD_TCP") == "1":
            cmd.append("--tcp")
        self.cmd = cmd
        c0 = cpu_of_tree(srv["pid"])[0]
        t0 = time.time()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                  preexec_fn=raise_nofile)
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit(f"sipload for {srv['name']} exited during the ramp (code {self.p.wait()})")
        self.ramp = json.loads(line)
        self.ramp["server_cpu_s"] = round(cpu_of_tree(srv["pid"])[0] - c0, 2)
        self.ramp["wall_s"] = round(time.time() - t0, 2)
        print(f"[{time.strftime('%H:%M:%S')}] {srv['name']:9s} ramp: {self.ramp['established']}/"
              f"{self.ramp['connections']} connections in {self.ramp['ramp_s']:.1f} s "
              f"({self.ramp['handshakes_s']:.0f} handshakes/s), server CPU {self.ramp['server_cpu_s']} s",
              file=sys.stderr, flush=True)

    def run(self, rate, duration, label):
        limit = env("NOISE_MAX_FRAC", 0.1) * duration * (os.cpu_count() or 1)
        for attempt in range(env("NOISE_RETRIES", 2) + 1):
            r = self.run_once(rate, duration, label)
            r["disturbed"] = r["other_cpu_s"] > limit
            if not r["disturbed"] or attempt == env("NOISE_RETRIES", 2):
                return r
            print(f"    (disturbed: other processes used {r['other_cpu_s']} CPU-s > {limit:.1f}; retrying)",
                  file=sys.stderr, flush=True)
            time.sleep(env("NOISE_WAIT", 10))
        return r

    def run_once(self, rate, duration, label):
        pid = self.srv["pid"]
        exclude = set(proc_tree(pid)) | {self.p.pid, os.getpid()}
        before = all_proc_cpu()
        c0 = cpu_of_tree(pid)[0]
        self.p.stdin.write(f"run {rate} {duration}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        c1 = cpu_of_tree(pid)[0]
        after = all_proc_cpu()
        if not line:
            raise SystemExit(f"sipload for {self.srv['name']} died (code {self.p.wait()})")
        r = json.loads(line)
        r.update(server=self.srv["name"], phase=label, server_cpu_s=round(c1 - c0, 3),
                 other_cpu_s=round(other_cpu(before, after, exclude | set(proc_tree(pid))), 2))
        r["server_cpu_pct"] = round(100 * r["server_cpu_s"] / r["elapsed_s"], 1)
        r["registers_per_server_cpu_s"] = round(2 * r["ok"] / r["server_cpu_s"]) if r["server_cpu_s"] > 0 else None
        r["client_cpu_pct"] = round(100 * r["client_cpu_s"] / r["elapsed_s"], 1)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(r) + "\n")
        ok = passes(r, rate)
        lat = r["latency_ms"]
        print(f"[{time.strftime('%H:%M:%S')}] {self.srv['name']:9s} {label:9s} target {rate:6g}/s: achieved "
              f"{r['achieved_rate']} calls/s, failed {r['failed_pct']:.3f}% ({r['failed_status']} status, "
              f"{r['failed_timeout']} timeout, {r['failed_conn']} conn), server CPU {r['server_cpu_pct']}%, "
              f"{r['registers_per_server_cpu_s']} REG/CPU-s, sipload CPU {r['client_cpu_pct']}%, p99 "
              f"{lat['challenge']['p99']}/{lat['auth']['p99']} ms, other CPU {r['other_cpu_s']} s"
              + ("" if ok else "  -> FAIL"), file=sys.stderr, flush=True)
        time.sleep(env("PAUSE", 2.0))
        return r

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


def passes(r, rate):
    return r["failed_pct"] < 0.1 and r["ok"] > 0 and r["achieved_rate"] >= 0.95 * rate


def summary(rs, rate, ok):
    def m(f):
        return med([f(r) for r in rs])
    return {
        "target_calls_s": rate, "passed": ok, "runs": len(rs),
        "calls_s": m(lambda r: r["achieved_rate"]),
        "calls_s_range": [min(r["achieved_rate"] for r in rs), max(r["achieved_rate"] for r in rs)],
        "register_s": m(lambda r: r["register_tps"]),
        "failed_pct": m(lambda r: r["failed_pct"]),
        "reg_per_cpu_s": m(lambda r: r["registers_per_server_cpu_s"]),
        "reg_per_cpu_s_range": [min(r["registers_per_server_cpu_s"] or 0 for r in rs),
                                max(r["registers_per_server_cpu_s"] or 0 for r in rs)],
        "server_cpu_pct": m(lambda r: r["server_cpu_pct"]),
        "client_cpu_pct": m(lambda r: r["client_cpu_pct"]),
        "other_cpu_s": m(lambda r: r["other_cpu_s"]),
        "p50_ms_401": m(lambda r: r["latency_ms"]["challenge"]["p50"]),
        "p99_ms_401": m(lambda r: r["latency_ms"]["challenge"]["p99"]),
        "p50_ms_200": m(lambda r: r["latency_ms"]["auth"]["p50"]),
        "p99_ms_200": m(lambda r: r["latency_ms"]["auth"]["p99"]),
        "connections_alive": min(r["connections_alive"] for r in rs),
        "disturbed_runs": sum(1 for r in rs if r.get("disturbed")),
    }


def measure(servers, sipload, jsonl):
    loads = [Load(s, sipload, jsonl) for s in servers]
    rates = [int(x) for x in os.environ.get("RATES", "1000 2000 3000 4000 6000 8000 10000 12000").split()]
    cd, fd, ld = env("COARSE_DURATION", 8), env("FINAL_DURATION", 15), env("LAT_DURATION", 10)
    grain = env("GRAIN", 250)
    st = {l.srv["name"]: {"last_pass": None, "first_fail": None} for l in loads}
    # 1. coarse sweep
    for rate in rates:
        for l in loads:
            s = st[l.srv["name"]]
            if s["first_fail"] is None:
                if passes(l.run(rate, cd, "coarse"), rate):
                    s["last_pass"] = rate
                else:
                    s["first_fail"] = rate
    # 2. bisection probes
    for l in loads:
        s = st[l.srv["name"]]
        lo, hi = s["last_pass"] or 0, s["first_fail"]
        for _ in range(env("PROBES", 2)):
            if hi is None:
                break
            mid = (lo + hi) // 2 // grain * grain
            if mid <= lo:
                break
            if passes(l.run(mid, cd, "probe"), mid):
                lo = s["last_pass"] = mid
            else:
                hi = mid
        s["candidate"] = s["last_pass"] or max(grain, (hi or rates[0]) // 4 // grain * grain)
        s["step"] = max(grain, (rates[1] - rates[0]) // 2 if len(rates) > 1 else 500)
    # 3. final runs at the top, interleaved, backing off if the median fails
    final = {l.srv["name"]: None for l in loads}
    for attempt in range(env("MAX_BACKOFF", 2) + 1):
        todo = [l for l in loads if final[l.srv["name"]] is None]
        if not todo:
            break
        runs = {l.srv["name"]: [] for l in todo}
        for rep in range(env("REPS", 3)):
            for l in todo:
                runs[l.srv["name"]].append(l.run(st[l.srv["name"]]["candidate"], fd, f"final{rep + 1}"))
        for l in todo:
            s, rs = st[l.srv["name"]], runs[l.srv["name"]]
            rate = s["candidate"]
            ok = med([r["failed_pct"] for r in rs]) < 0.1 and med([r["achieved_rate"] for r in rs]) >= 0.95 * rate
            if ok or attempt == env("MAX_BACKOFF", 2) or rate - s["step"] < grain:
                final[l.srv["name"]] = summary(rs, rate, ok)
                final[l.srv["name"]]["first_fail_calls_s"] = s["first_fail"]
                final[l.srv["name"]]["client_limited"] = s["first_fail"] is None
            else:
                s["candidate"] = rate - s["step"]
    # 4. latency at half of each one's capacity
    lat = {l.srv["name"]: [] for l in loads}
    for rep in range(env("LAT_REPS", 3)):
        for l in loads:
            f = final[l.srv["name"]]
            rate = max(100, int((f["calls_s"] or f["target_calls_s"]) / 2 // 100 * 100))
            f["latency_calls_s"] = rate
            lat[l.srv["name"]].append(l.run(rate, ld, f"latency{rep + 1}"))
    for l in loads:
        f = final[l.srv["name"]]
        rs = lat[l.srv["name"]]
        if rs:
            h = summary(rs, f["latency_calls_s"], None)
            f["half"] = {k: h[k] for k in ("p50_ms_401", "p99_ms_401", "p50_ms_200", "p99_ms_200", "failed_pct",
                                             "server_cpu_pct", "client_cpu_pct", "reg_per_cpu_s")}
        f["ramp"] = l.ramp
        f["sipload_cmd"] = " ".join(l.cmd)
        l.close()
    return final


def fmt(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}" if isinstance(x, (int, float)) else str(x)


def ratio(a, b):
    return None if a is None or not b else a / b


def markdown(out, cmd):
    s = out["servers"]
    names = list(s)
    d, k = s.get("deskline"), s.get("kamailio")
    uname = os.uname()
    lines = [f"# TLS REGISTER benchmark, {out['date']}", "",
             f"Command: `{cmd}`  ", f"Machine: {uname.nodename}, {uname.sysname} {uname.release}, "
             f"{os.cpu_count()} CPUs ({out['cpu_model']}), shared; sipload runs on the same cores  ",
             f"Load: bench/sipload, {out['connections']} phones each on its own TLS connection (users 1000.., "
             f"MD5 qop=auth), REGISTER -> 401 -> REGISTER -> 200; pass = < 0.1 % failed and >= 95 % of the "
             f"target; {out['reps']} x {out['durations']['final']} s at the top, medians", ""]
    hdr = "| figure | " + " | ".join(names) + (" | deskline / Kamailio | bar |" if d and k else " |")
    lines += [hdr, "|" + "---|" * (hdr.count("|") - 1)]

    def row(label, key, nd=0, bar="", is_ratio=True):
        vals = [s[n].get(key) if "." not in key else s[n].get(key.split(".")[0], {}).get(key.split(".")[1])
                for n in names]
        line = f"| {label} | " + " | ".join(fmt(v, nd) for v in vals)
        if d and k:
            dv, kv = vals[names.index("deskline")], vals[names.index("kamailio")]
            r = ratio(dv, kv) if is_ratio else None
            line += f" | {fmt(r, 2)} | {bar}"
        lines.append(line + " |")
    row("highest call rate with < 0.1 % failures (calls/s, 2 REGISTERs each)", "calls_s", 0, "≥ 1.5")
    row("REGISTER transactions/s at that rate", "register_s", 0)
    row("REGISTERs per server CPU-second", "reg_per_cpu_s", 0, "≥ 1.5")
    row("server CPU at the top rate (% of one core)", "server_cpu_pct", 0, "", False)
    row("sipload CPU at the top rate (% of one core)", "client_cpu_pct", 0, "", False)
    row("failed at the top rate (%)", "failed_pct", 3, "", False)
    row("first failing rate of the sweep (calls/s)", "first_fail_calls_s", 0, "", False)
    for tr, key in (("REGISTER→401", "401"), ("REGISTER+auth→200", "200")):
        for where, src in (("at the top rate", None), ("at half of capacity", "half")):
            vals = []
            for n in names:
                f = s[n] if src is None else s[n].get(src, {})
                vals.append(f"{fmt(f.get('p50_ms_' + key), 2)} / {fmt(f.get('p99_ms_' + key), 2)}")
            lines.append(f"| p50 / p99 {tr} {where} (ms, client-side) | " + " | ".join(vals)
                         + (" | | p99 < 2 ms (half) |" if d and k and src else (" | | |" if d and k else " |")))
    vals = [f"{s[n]['ramp']['established']}/{s[n]['ramp']['connections']} in {s[n]['ramp']['ramp_s']:.1f} s, "
            f"server {s[n]['ramp']['server_cpu_s']} CPU-s" for n in names]
    lines.append("| TLS connections opened (ramp) | " + " | ".join(vals) + (" | | |" if d and k else " |"))
    lines += ["", "Per-server sipload commands: " + "; ".join(f"`{s[n]['sipload_cmd']}`" for n in names),
              "", f"Raw runs: `{out['runs_jsonl']}`. Noise: median other-process CPU at the top "
              + ", ".join(f"{n} {fmt(s[n].get('other_cpu_s'), 1)} CPU-s (of {2 * out['durations']['final']}; "
                          f"{s[n].get('disturbed_runs')} of the kept top runs disturbed)" for n in names) + ".",
              "", "Kamailio runs with ONE TCP/TLS worker: with two, Kamailio 5.6.3 + OpenSSL 3 crashes under "
              "concurrent handshakes (see tls.sh); its capacity is that of one worker, its REGISTERs per "
              "CPU-second are comparable. Latencies are client-side (sipload on the same cores)."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", action="append", required=True, help="NAME:PORT:PID[:CA]")
    ap.add_argument("--sipload", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--md")
    ap.add_argument("--cmd", default="bench/tls.sh")
    a = ap.parse_args()
    servers = []
    for spec in a.server:
        parts = spec.split(":", 3)
        servers.append({"name": parts[0], "port": int(parts[1]), "pid": int(parts[2]),
                        "ca": parts[3] if len(parts) > 3 else None})
    raise_nofile()
    jsonl = a.out + ".runs.jsonl"
    final = measure(servers, a.sipload, jsonl)
    cpu_model = "?"
    try:
        cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"servers": final, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_model": cpu_model,
           "connections": env("CONNECTIONS", 10000), "reps": env("REPS", 3),
           "durations": {"coarse": env("COARSE_DURATION", 8), "final": env("FINAL_DURATION", 15),
                         "latency": env("LAT_DURATION", 10)},
           "rates": os.environ.get("RATES", "1000 2000 3000 4000 6000 8000 10000 12000"), "runs_jsonl": jsonl}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    md = markdown(out, a.cmd)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    print(md)


if __name__ == "__main__":
    main()
