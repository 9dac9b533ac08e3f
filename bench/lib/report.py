#!/usr/bin/env python3
"""Markdown report of one bench/run.sh sitting: every figure beside its bar and Kamailio's.

  report.py --dir /tmp/regbench/run-<stamp> --cmd "bench/run.sh"

Reads capacity.json (lib/capacity.py), tls.json (tls.sh / lib/tlsbench.py), memory.jsonl
(measure-memory.sh), deactivate.json (lib/deactivate.py) and provisioning.json (provisioning.sh)
where present.
"""
import argparse
import json
import os
import platform
import subprocess
import time


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(x, nd=0, unit=""):
    if x is None:
        return "–"
    if isinstance(x, (int, float)):
        s = f"{x:,.{nd}f}"
    else:
        s = str(x)
    return s + unit


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def verdict(ok):
    return "–" if ok is None else ("**pass**" if ok else "**FAIL**")


def tool_version(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (IndexError, OSError, subprocess.SubprocessError):
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cmd", default="bench/run.sh")
    a = ap.parse_args()
    cap = load(os.path.join(a.dir, "capacity.json"))
    dea = load(os.path.join(a.dir, "deactivate.json"))
    prov = load(os.path.join(a.dir, "provisioning.json"))
    tls = load(os.path.join(a.dir, "tls.json"))
    mem = {}
    try:
        for line in open(os.path.join(a.dir, "memory.jsonl")):
            r = json.loads(line)
            mem[r["server"]] = r
    except OSError:
        pass
    model = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    out = []
    p = out.append
    store_mode = ("fsync'd (bindings_fsync = true)" if os.environ.get("BINDINGS_FSYNC") == "1" else
                  "written to the OS, not fsync'd (server default: survive a crash of deskline, not a power loss)")
    p(f"# deskline vs Kamailio: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    p(f"* command: `{a.cmd}`")
    p(f"* machine: {os.cpu_count()} CPUs (`nproc`), {model}, kernel {platform.release()}, load average at the end "
      f"{open('/proc/loadavg').read().split()[0]}")
    p(f"* deskline: `{tool_version('cd ' + os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + ' && ./target/release/deskline --version')}`"
      f" (release build, durable store on: bindings journal + SQLite directory, group commit; bindings "
      f"{store_mode}), peer: `{tool_version('kamailio -v')}`,"
      f" load: `{tool_version('sipp -v 2>&1 | grep -m1 SIPp')}`")
    p(f"* raw data: {a.dir} (copied to bench/results/ with this file's stamp)\n")
    p("| figure | deskline | Kamailio | deskline ÷ Kamailio | bar | verdict |")
    p("|---|---|---|---|---|---|")
    notes = []
    if cap:
        d, k = cap["servers"].get("deskline"), cap["servers"].get("kamailio")
        if d and k:
            valid = d.get("passed") and k.get("passed")
            cv = (lambda ok: verdict(ok)) if valid else (lambda ok: "invalid: final runs failed (noise?)")
            r = ratio(d["register_s"], k["register_s"])
            p(f"| REGISTER with digest auth over UDP, highest rate with < 0.1 % failed (REGISTER/s = 2 × calls/s; median of "
              f"{d['runs']}) | {fmt(d['register_s'])} ({fmt(d['calls_s'])} calls/s at target {fmt(d['target_calls_s'])}"
              f"{'; sipp-limited' if d.get('sipp_limited') else ''}) | {fmt(k['register_s'])} ({fmt(k['calls_s'])} calls/s at target "
              f"{fmt(k['target_calls_s'])}{'; sipp-limited' if k.get('sipp_limited') else ''}) | {fmt(r, 2)} | ≥ 1.5 × Kamailio | "
              f"{cv(r >= 1.5 if r else None)} |")
            r = ratio(d["reg_per_cpu_s"], k["reg_per_cpu_s"])
            p(f"| REGISTERs per server CPU-second (at that rate; median [min-max]) | {fmt(d['reg_per_cpu_s'])} "
              f"[{fmt(d['reg_per_cpu_s_range'][0])}-{fmt(d['reg_per_cpu_s_range'][1])}] = "
              f"{fmt(1e6 / d['reg_per_cpu_s'] if d['reg_per_cpu_s'] else None, 1)} µs each | {fmt(k['reg_per_cpu_s'])} "
              f"[{fmt(k['reg_per_cpu_s_range'][0])}-{fmt(k['reg_per_cpu_s_range'][1])}] = "
              f"{fmt(1e6 / k['reg_per_cpu_s'] if k['reg_per_cpu_s'] else None, 1)} µs | {fmt(r, 2)} | ≥ 1.5 × Kamailio | "
              f"{cv(r >= 1.5 if r else None)} |")
            r50 = ratio(d.get("p50_ms"), k.get("p50_ms"))
            r99 = ratio(d.get("p99_ms"), k.get("p99_ms"))
            p(f"| p50 latency of a REGISTER transaction at half of capacity ({d.get('latency_calls_s')} / "
              f"{k.get('latency_calls_s')} calls/s) | {fmt(d.get('p50_ms'), 3)} ms | {fmt(k.get('p50_ms'), 3)} ms | "
              f"{fmt(r50, 2)} | – | – |")
            p(f"| p99 latency of a REGISTER transaction at half of capacity | {fmt(d.get('p99_ms'), 3)} ms | "
              f"{fmt(k.get('p99_ms'), 3)} ms | {fmt(r99, 2)} | < 2 ms | "
              f"{verdict(d['p99_ms'] < 2 if d.get('p99_ms') is not None else None)} |")
            notes.append(f"Latency source: {d.get('latency_source')}; median of {cap.get('latency_reps')} runs of "
                         f"{cap['durations']['latency']} s each. By answer, p50/p99 ms: deskline 401 "
                         f"{fmt(d.get('p50_ms_401'), 3)}/{fmt(d.get('p99_ms_401'), 3)}, 200 {fmt(d.get('p50_ms_200'), 3)}/"
                         f"{fmt(d.get('p99_ms_200'), 3)}; Kamailio 401 {fmt(k.get('p50_ms_401'), 3)}/{fmt(k.get('p99_ms_401'), 3)}, "
                         f"200 {fmt(k.get('p50_ms_200'), 3)}/{fmt(k.get('p99_ms_200'), 3)}.")
            notes.append(f"Capacity: load from {cap.get('sipp_procs', 1)} sipp process(es) side by side (SIPP_PROCS), "
                         f"at nice {cap.get('sipp_nice', 0)} (SIPP_NICE; the servers at 0); "
                         f"coarse sweep over {cap['coarse_rates']} calls/s ({cap['durations']['coarse']} s per step), "
                         f"bisection probes towards the first failing step, then {cap['reps']} runs of {cap['durations']['final']} s "
                         f"at the top; first failing coarse step: deskline {d.get('first_fail_calls_s')}, Kamailio "
                         f"{k.get('first_fail_calls_s')} calls/s. At the top: retransmissions deskline {d.get('retrans_pct')} %, "
                         f"Kamailio {k.get('retrans_pct')} % of transactions; failed calls deskline {d.get('failed_pct')} %, "
                         f"Kamailio {k.get('failed_pct')} %; server CPU deskline {d.get('server_cpu_pct')} %, Kamailio "
                         f"{k.get('server_cpu_pct')} % of one core; sipp CPU {d.get('sipp_cpu_pct')} % / {k.get('sipp_cpu_pct')} %; "
                         f"datagrams dropped by the kernel for a full receive buffer, sipp's socket / the server's: deskline runs "
                         f"{d.get('udp_drops_sipp')} / {d.get('udp_drops_server')}, Kamailio runs {k.get('udp_drops_sipp')} / "
                         f"{k.get('udp_drops_server')} (sipp's socket buffer: SIPP_BUFF, default 4 MiB).")
            notes.append(f"Noise: CPU seconds used by other processes during a final run (median): deskline's runs "
                         f"{d.get('other_cpu_s')}, Kamailio's {k.get('other_cpu_s')} (of {2 * cap['durations']['final']} available);"
                         f" above ~1 CPU-s per 25 s run the run was disturbed (BASELINE.md).")
            nz = cap.get("noise")
            if nz:
                notes.append(f"Noise gate: a run during which other processes used more than {nz['max_frac']:.0%} of the "
                             f"machine's CPU was repeated ({nz['retried']} repeats, {nz['waited_s']:.0f} s waited); "
                             f"{nz['kept_disturbed']} disturbed runs had to be kept.")
            if not d.get("passed") or not k.get("passed"):
                notes.append("Warning: the median of the final runs did not pass at the lowest rate tried for "
                             + ", ".join(n for n, s in cap["servers"].items() if not s.get("passed")) + ".")
    if tls and tls["servers"].get("deskline") and tls["servers"].get("kamailio"):
        d, k = tls["servers"]["deskline"], tls["servers"]["kamailio"]
        cv = verdict if (d.get("passed") and k.get("passed")) else (lambda ok: "invalid: final runs failed")
        r = ratio(d["calls_s"], k["calls_s"])
        p(f"| REGISTER with digest auth over TLS, {fmt(tls['connections'])} phones each on its own connection, highest rate "
          f"with < 0.1 % failed (REGISTER/s; median of {d['runs']}) | {fmt(d['register_s'])} ({fmt(d['calls_s'])} calls/s) | "
          f"{fmt(k['register_s'])} ({fmt(k['calls_s'])} calls/s; 1 TCP worker, see tls.sh) | {fmt(r, 2)} | ≥ 1.5 × Kamailio | "
          f"{cv(r >= 1.5 if r else None)} |")
        r = ratio(d["reg_per_cpu_s"], k["reg_per_cpu_s"])
        p(f"| … REGISTERs per server CPU-second over TLS | {fmt(d['reg_per_cpu_s'])} | {fmt(k['reg_per_cpu_s'])} | "
          f"{fmt(r, 2)} | – | – |")
        notes.append(f"TLS (bench/tls.sh, sipload): client-side p50/p99 ms at half capacity, REGISTER→401 / →200: deskline "
                     f"{fmt(d.get('half', {}).get('p50_ms_401'), 2)}/{fmt(d.get('half', {}).get('p99_ms_401'), 2)}, "
                     f"{fmt(d.get('half', {}).get('p50_ms_200'), 2)}/{fmt(d.get('half', {}).get('p99_ms_200'), 2)}; Kamailio "
                     f"{fmt(k.get('half', {}).get('p50_ms_401'), 2)}/{fmt(k.get('half', {}).get('p99_ms_401'), 2)}, "
                     f"{fmt(k.get('half', {}).get('p50_ms_200'), 2)}/{fmt(k.get('half', {}).get('p99_ms_200'), 2)}. "
                     f"sipload CPU at the top: {d.get('client_cpu_pct')} % / {k.get('client_cpu_pct')} % of one core.")
    if mem.get("deskline") or mem.get("kamailio"):
        d, k = mem.get("deskline", {}), mem.get("kamailio", {})
        dv = d.get("rss_per_binding_B")
        kv = k.get("pss_per_binding_B")
        r = ratio(dv, kv)
        p(f"| memory per registered phone at {fmt(d.get('bindings') or k.get('bindings'))} bindings (RSS growth ÷ bindings; "
          f"Kamailio: PSS growth over its processes) | {fmt(dv)} B (PSS {fmt(d.get('pss_per_binding_B'))} B) | {fmt(kv)} B "
          f"(shm used {fmt(k.get('shm_used_per_binding_B'))} B) | {fmt(r, 2)} | ≤ Kamailio's | {verdict(r <= 1.0 if r else None)} |")
        notes.append(f"Memory: deskline {fmt(d.get('bindings'))} bindings, RSS {fmt(d.get('rss_before_KiB'))} → "
                     f"{fmt(d.get('rss_after_KiB'))} KiB; Kamailio {fmt(k.get('bindings'))} contacts, PSS "
                     f"{fmt(k.get('pss_before_KiB'))} → {fmt(k.get('pss_after_KiB'))} KiB. Both registered the users once "
                     f"with sipp register_auth.xml at 3000 calls/s.")
    if dea:
        p(f"| deactivate a user with {dea['phones']} bound phones: API answer (median of {len(dea['runs'])}) | "
          f"{fmt(dea['answer_ms_median'], 1)} ms | – | – | < 50 ms | {verdict(dea['answer_ms_median'] < 50)} |")
        lm = dea.get("last_notify_ms_median")
        p(f"| … every NOTIFY received (last one; median of {len(dea['runs'])}) | {fmt(lm, 1)} ms"
          f"{'' if dea.get('all_notified') else ' (a phone missed its NOTIFY)'} | – | – | < 100 ms | "
          f"{verdict(lm < 100 if lm is not None else False)} |")
        notes.append("Deactivate runs (answer / last NOTIFY ms): "
                     + ", ".join(f"{r['answer_ms']}/{r['last_notify_ms']}" for r in dea["runs"]))
    if prov:
        d, n = prov["deskline"], prov["nginx"]
        p(f"| provisioning: config fetches/s over HTTPS keep-alive with client certificates ({prov['connections']} "
          f"connections, {prov['body_bytes']} B file; median of {prov['reps']}) | {fmt(d['rate'])} (p99 {fmt(d['p99_ms'], 1)} ms) "
          f"| nginx: {fmt(n['rate'])} (p99 {fmt(n['p99_ms'], 1)} ms) | {fmt(prov['ratio'], 2)} (vs nginx) | ≥ 0.5 × nginx | "
          f"{verdict(prov['ratio'] >= 0.5)} |")
        p(f"| … fetches per server CPU-second | {fmt(d['req_per_server_cpu_s'])} | nginx: {fmt(n['req_per_server_cpu_s'])} | "
          f"{fmt(prov['cpu_ratio'], 2)} (vs nginx) | – | – |")
        notes.append(f"Provisioning runs (req/s): deskline {d['rates']}, nginx {n['rates']}; non-200 answers "
                     f"deskline {d['non_200']}, nginx {n['non_200']}; connection errors {d['errors']} / {n['errors']}.")
    p("")
    for n in notes:
        p(f"* {n}")
    p("\nThe machine is shared: compare the ratios (both servers ran interleaved in this sitting), not the absolute "
      "figures. See bench/README.md for the method and caveats.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
