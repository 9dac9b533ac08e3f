#!/usr/bin/env python3
"""One million bindings in one deskline process, and how fast they all come back after a restart.

  million.py [--count 1000000] [--rate 6000] [--sip-port 5186] [--admin-port 9186] [--name million]

1. a fresh deskline NAME (durable store on, deskline.py's bench config: UDP only, MD5, throttle
   off, expires up to 7200) with COUNT users u<ext> and COUNT devices (SIP user <ext>, password
   pw<ext>, ext 1000..), created with POST /api/v1/import in batches of 5,000;
2. VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) before and after sipp registers
   every device once (register_auth.xml, Expires 3600, RATE calls/s): one binding per device;
   the devices a busy machine's 503s and timeouts left out (GET /api/v1/devices?registered=false)
   are registered in up to 3 top-up passes at RATE/2;
3. a clean stop (SIGTERM), then a restart on the same data dir; then kill -9, then a restart:
   each restart is timed from exec to the "deskline: ready" line, and the bindings it holds are
   counted (the deskline_registrations gauge, then GET /api/v1/stats' bindings_total);
4. prints a table (command, date, machine) and appends one JSON line to OUT.
Loopback only; stops only the pid it started.
"""
import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import deskline as dl  # noqa: E402


def mem_kib(pid):
    """(VmRSS, Pss) of one process, KiB."""
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    pss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
    return rss, pss


def gauge(name):
    """The deskline_registrations gauge summed over transports (cheap: no snapshot)."""
    host, port = dl.admin_addr(name)
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30).read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("deskline_registrations{"))


def stats_total(name):
    t0 = time.time()
    st, body = dl.Api(name).call("GET", "/api/v1/stats")
    if st != 200:
        raise SystemExit(f"/api/v1/stats: {st} {body[:200]!r}")
    return json.loads(body)["bindings_total"], time.time() - t0


def exec_until_ready(name, binary):
    """Starts `deskline serve` on NAME's config; returns (pid, seconds from exec to ready)."""
    d = dl.inst_dir(name)
    env = dict(os.environ, DESKLINE_LOG=os.environ.get("DESKLINE_LOG", "warn"))
    log = open(os.path.join(d, "log"), "a")
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", "--config", os.path.join(d, "config.toml")], stdout=subprocess.PIPE,
                         stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True, text=True)
    with open(os.path.join(d, "pid"), "w") as f:
        f.write(str(p.pid))
    for line in p.stdout:
        log.write(line)
        if line.strip() == "deskline: ready":
            ready = time.monotonic() - t0
            threading.Thread(target=lambda: [log.write(l) for l in p.stdout], daemon=True).start()
            return p, ready
    raise SystemExit(f"deskline {name} exited ({p.wait()}) before it was ready; see {d}/log")


def stop(p, sig):
    """Stops our own server with `sig`; returns seconds until it is gone."""
    t0 = time.monotonic()
    os.kill(p.pid, sig)
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    return time.monotonic() - t0


def register_all(a, pid):
    env = dict(os.environ, SERVER_PID=str(pid), USERS=str(a.count), MODE="auth", LOCAL_PORT=str(a.local_port),
               OUTDIR=time.strftime(f"/tmp/regbench/runs/%Y%m%d-%H%M%S-million-{a.count}"))
    t0 = time.time()
    out = subprocess.run([os.path.join(BENCH, "run-register-bench.sh"), "127.0.0.1", str(a.sip_port), str(a.rate),
                          str(a.count)], env=env, capture_output=True, text=True).stdout
    m = re.search(r"^successful calls\D*(\d+)", out, re.M)
    f = re.search(r"^failed calls\D*(\d+)", out, re.M)
    print("\n".join(l for l in out.splitlines() if re.match(r"(successful|failed|achieved)", l)), file=sys.stderr)
    return (int(m.group(1)) if m else 0), (int(f.group(1)) if f else -1), time.time() - t0


def missing_extensions(name):
    """SIP users (extensions) of the devices with no binding: GET /api/v1/devices?registered=false."""
    st, body = dl.Api(name).call("GET", "/api/v1/devices?registered=false")
    if st != 200:
        raise SystemExit(f"/api/v1/devices: {st} {body[:200]!r}")
    return [d["extension"] for d in json.loads(body) if d.get("extension")]


def top_up(a, rate):
    """Registers, once more, the devices the first pass left out (its 503s and timeouts)."""
    exts = missing_extensions(a.name)
    if not exts:
        return 0
    outdir = time.strftime(f"/tmp/regbench/runs/%Y%m%d-%H%M%S-million-{a.count}-topup")
    os.makedirs(outdir, exist_ok=True)
    csv = os.path.join(outdir, "users.csv")
    with open(csv, "w") as f:
        f.write("SEQUENTIAL\n" + "".join(f"{e};pw{e};[authentication username={e} password=pw{e}]\n" for e in exts))
    cmd = ["sipp", f"127.0.0.1:{a.sip_port}", "-sf", os.path.join(BENCH, "sipp", "register_auth.xml"), "-inf", csv,
           "-key", "expires", "3600", "-t", "u1", "-i", "127.0.0.1", "-p", str(a.local_port), "-r", str(rate),
           "-rp", "1000", "-m", str(len(exts)), "-nostdin", "-default_behaviors", "abortunexp",
           "-recv_timeout", "5000", "-timeout", f"{len(exts) // rate + 60}s", "-max_recv_loops", "10000"]
    with open(os.path.join(outdir, "sipp.out"), "w") as out:
        subprocess.run(cmd, cwd=outdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return len(exts)


def restart_and_count(a, how, p):
    stopped = stop(p, signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    p, ready = exec_until_ready(a.name, a.bin)
    back = gauge(a.name)
    total, stats_s = stats_total(a.name)
    rss, _ = mem_kib(p.pid)
    print(f"{how}: stopped in {stopped:.2f} s; ready {ready:.2f} s after exec; gauge {back:.0f}, "
          f"stats bindings_total {total} ({stats_s:.1f} s); RSS {rss} KiB", file=sys.stderr)
    return p, {"stop_s": round(stopped, 2), "ready_s": round(ready, 2), "gauge": int(back), "stats_total": total,
               "rss_after_restart_KiB": rss}


def setup(a):
    dl.cmd_stop(argparse.Namespace(name=a.name))
    start = argparse.Namespace(name=a.name, sip_port=a.sip_port, admin_port=a.admin_port, bin=a.bin, timeout=120,
                               fresh=True, set=[])
    with open(os.devnull, "w") as null:
        saved, sys.stdout = sys.stdout, null
        try:
            dl.cmd_start(start)
        finally:
            sys.stdout = saved
    pid = int(open(os.path.join(dl.inst_dir(a.name), "pid")).read())
    t0 = time.time()
    api = dl.Api(a.name)
    for first in range(1000, 1000 + a.count, 5000):
        dl.import_batch(api, first, min(5000, 1000 + a.count - first))
    print(f"imported {a.count} users + devices in {time.time() - t0:.1f} s", file=sys.stderr)
    return pid, time.time() - t0


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Linux {platform.release()}"


def run(a):
    pid, import_s = setup(a)
    time.sleep(3)
    rss0, pss0 = mem_kib(pid)
    ok, failed, reg_s = register_all(a, pid)
    time.sleep(3)
    # memory is measured on the first pass' bindings: the top-up's device listing allocates a lot
    rss1, pss1 = mem_kib(pid)
    measured = gauge(a.name)
    t0, retried = time.time(), []
    for _ in range(3):
        if gauge(a.name) >= a.count:
            break
        retried.append(top_up(a, max(500, a.rate // 2)))
        print(f"top-up pass: {retried[-1]} devices registered again", file=sys.stderr)
    reg_s += time.time() - t0
    held = gauge(a.name)
    print(f"registered {ok} ({failed} failed) in {reg_s:.0f} s; held {held:.0f}; RSS {rss0} -> {rss1} KiB, "
          f"PSS {pss0} -> {pss1} KiB at {measured:.0f} bindings", file=sys.stderr)
    # the server was started by deskline.py (not our child): adopt it for stop()
    p = Adopted(pid)
    res = {"count": a.count, "import_s": round(import_s, 1), "registered": ok, "failed": failed,
           "register_s": round(reg_s, 1), "retried": retried, "held": int(held), "rss_before_KiB": rss0, "rss_after_KiB": rss1,
           "pss_before_KiB": pss0, "pss_after_KiB": pss1,
           "measured_at": int(measured),
           "rss_per_binding_B": round((rss1 - rss0) * 1024 / max(1, measured), 1),
           "pss_per_binding_B": round((pss1 - pss0) * 1024 / max(1, measured), 1)}
    p, res["sigterm"] = restart_and_count(a, "sigterm", p)
    p, res["kill9"] = restart_and_count(a, "kill9", p)
    stop(p, signal.SIGTERM)
    data = os.path.join(dl.inst_dir(a.name), "data")
    res["db_bytes"] = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.startswith("deskline.db"))
    return res


class Adopted:
    """A server process we started through deskline.py (so not our child): wait by polling."""

    def __init__(self, pid):
        self.pid = pid

    def wait(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = open(f"/proc/{self.pid}/stat").read().split(") ")[1][0]
            except OSError:
                return 0
            if state == "Z":
                return 0
            time.sleep(0.01)
        raise subprocess.TimeoutExpired(str(self.pid), timeout)


def report(a, res):
    rows = [("bindings held after registering", f"{res['held']:,} (first pass at {a.rate}/s: {res['registered']:,} "
                                                 f"ok, {res['failed']:,} failed; top-up passes for "
                                                 f"{res['retried'] or 'none'}; {res['register_s']:.0f} s in all)"),
            ("RSS growth per binding", f"{res['rss_per_binding_B']} B (PSS {res['pss_per_binding_B']} B) at "
                                       f"{res['measured_at']:,} bindings (after the first pass); RSS {res['rss_before_KiB'] // 1024} -> {res['rss_after_KiB'] // 1024} MiB"),
            ("restart after SIGTERM: exec -> ready", f"{res['sigterm']['ready_s']} s, {res['sigterm']['gauge']:,} "
                                                     f"bindings back (stats: {res['sigterm']['stats_total']:,})"),
            ("restart after kill -9: exec -> ready", f"{res['kill9']['ready_s']} s, {res['kill9']['gauge']:,} "
                                                     f"bindings back (stats: {res['kill9']['stats_total']:,})"),
            ("clean stop (SIGTERM) took", f"{res['sigterm']['stop_s']} s"),
            ("store file (deskline.db + WAL)", f"{res['db_bytes'] / 2**20:.0f} MiB"),
            ("users + devices import", f"{res['import_s']} s")]
    print(f"\ncommand: {' '.join(sys.argv)}\ndate: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
          f"machine: {machine()}\n")
    print("| figure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=4000)
    ap.add_argument("--name", default="million")
    ap.add_argument("--sip-port", type=int, default=5186)
    ap.add_argument("--admin-port", type=int, default=9186)
    ap.add_argument("--local-port", type=int, default=15186)
    ap.add_argument("--bin", default=os.path.join(dl.REPO, "target", "release", "deskline"))
    ap.add_argument("--out", default="/tmp/regbench/million.jsonl")
    a = ap.parse_args()
    res = run(a)
    res.update(command=" ".join(sys.argv), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(res) + "\n")
    report(a, res)


if __name__ == "__main__":
    main()
