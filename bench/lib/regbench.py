#!/usr/bin/env python3
# Origin: copied from the shared bench harness /work/shared/bench/lib/regbench.py (Kamailio baseline
# harness, BASELINE.md); adapted for deskline's bench/ (see bench/README.md).
"""Run one sipp REGISTER load test against a registrar and summarise it.

Called by run-register-bench.sh (see there for usage).  Prints a human
summary and one machine-readable line starting with "RESULT " (JSON), and
writes the same JSON to OUTDIR/summary.json.

Measures:
  * sipp: successful / failed calls, retransmissions, achieved call rate,
    response-time percentiles per RTD (sipp reports whole ms; on this VM its
    values come in 4 ms steps, so use --pcap for sub-millisecond latencies)
  * server CPU seconds (utime+stime of SERVER_PID and all its descendants,
    from /proc), so REGISTER transactions per server CPU-second can be computed
  * sipp's own CPU seconds, and the CPU seconds of every other process on
    the machine (noise from other processes), summed per process from /proc
  * kernel UDP receive-buffer drops during the run (/proc/net/snmp)
  * optionally (--pcap) microsecond request->response latencies from a
    loopback capture (UDP only)
"""
import argparse
import ipaddress
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
CLK = os.sysconf("SC_CLK_TCK")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proc_tree(root):
    """root pid and all its descendants (by scanning /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_of_tree(root):
    """Sum of utime+stime (seconds) and PSS (KiB) over root and descendants."""
    if not root:
        return None, None
    tot, rss = 0, 0
    for p in proc_tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            tot += int(fields[11]) + int(fields[12])  # utime, stime
            # PSS: shared memory (Kamailio's shm) split across the processes
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
    return tot / CLK, rss


def all_proc_cpu():
    """{pid: utime+stime+cutime+cstime (ticks)} for every process.  cutime/cstime
    catch short-lived children (e.g. compiler jobs) once their parent reaps them."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fl = s[s.rindex(")") + 2:].split()
        t = int(fl[11]) + int(fl[12])
        if d != "1":  # init reaps orphans: its cutime jumps by whole lifetimes
            t += int(fl[13]) + int(fl[14])
        out[int(d)] = (t, int(fl[1]))
    return out


def other_cpu(before, after, exclude):
    """CPU seconds used during the run by processes outside `exclude`
    (pids alive at the end; new pids count from zero)."""
    tot = 0
    for pid, (t1, _) in after.items():
        if pid in exclude:
            continue
        t0 = before.get(pid, (0, 0))[0]
        tot += max(0, t1 - t0)
    return tot / CLK


def ancestors(pid):
    out = []
    while pid > 1:
        out.append(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            break
        pid = int(s[s.rindex(")") + 2:].split()[1])
    return out


def sys_cpu():
    """(busy, total) jiffies for the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user+nice+system+irq+softirq+steal (idle/iowait are not monotonic on
    # tickless kernels, so "total - idle" is unreliable)
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy, busy + v[3] + v[4]


def udp_errors():
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    d = dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))
    return d.get("RcvbufErrors", 0), d.get("InErrors", 0)


def port_free(p):
    for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, typ)
        if typ == socket.SOCK_STREAM:  # TIME_WAIT from a previous TCP run is fine
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", p))
            t.close()
            return p
        except OSError:
            t.close()
    raise SystemExit("no free port")


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def summarise(vals):
    vals = sorted(vals)
    if not vals:
        return None
    return {
        "n": len(vals),
        "mean": round(statistics.fmean(vals), 3),
        "p50": round(pct(vals, 0.50), 3),
        "p90": round(pct(vals, 0.90), 3),
        "p99": round(pct(vals, 0.99), 3),
        "p999": round(pct(vals, 0.999), 3),
        "max": round(vals[-1], 3),
    }


def parse_pcap_latency(path, server_port):
    """Request->first final-or-401 response latency (ms) per transaction,
    matched on Call-ID + CSeq, from a classic pcap of UDP SIP on loopback."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return None
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B2C3D4:
        endian, scale = "<", 1e-6
    elif magic == 0xA1B23C4D:
        endian, scale = "<", 1e-9
    else:
        return None
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20, 0: 4}.get(linktype)
    if l2 is None:
        return None
    off = 24
    sent = {}
    lat = []
    by_code = {}
    while off + 16 <= len(data):
        ts, tfrac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        t = ts + tfrac * scale
        ip = pkt[l2:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        payload = ip[ihl + 8:]
        head = payload.split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        callid = cseq = None
        for ln in lines[1:]:
            low = ln[:8].lower()
            if low.startswith(b"call-id:") or ln[:2].lower() == b"i:":
                callid = ln.split(b":", 1)[1].strip()
            elif low.startswith(b"cseq:"):
                cseq = ln.split(b":", 1)[1].strip()
        if callid is None or cseq is None:
            continue
        key = (callid, cseq)
        if dport == server_port and not lines[0].startswith(b"SIP/2.0"):
            sent.setdefault(key, t)  # first send (ignore retransmissions)
        elif sport == server_port and lines[0].startswith(b"SIP/2.0"):
            code = lines[0][8:11]
            if code[:1] != b"1" and key in sent:
                ms = (t - sent.pop(key)) * 1000.0
                lat.append(ms)
                by_code.setdefault(code.decode(errors="replace"), []).append(ms)
    res = summarise(lat)
    if res:  # deskline addition: the same per final status (401 challenge vs 200 save)
        res["by_status"] = {c: summarise(v) for c, v in sorted(by_code.items())}
    return res



def udp_socket_drops(port):
    """Datagrams the kernel dropped for full receive buffers, per UDP socket bound to `port`
    (the last column of /proc/net/udp and udp6); summed."""
    total = 0
    for f in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 12 and int(cols[1].rsplit(":", 1)[1], 16) == port:
                total += int(cols[-1])
    return total


class DropWatch:
    """Whose receive buffer overflowed during a run: sipp's socket lives only as long as sipp, so
    it is sampled while sipp runs (its last value is kept); the server's is a difference."""

    def __init__(self, client_port, server_port):
        self.client_port, self.server_port = client_port, server_port
        self.server0 = udp_socket_drops(server_port)
        self.client = 0

    def sample(self):
        self.client = max(self.client, udp_socket_drops(self.client_port))

    def server_delta(self):
        return udp_socket_drops(self.server_port) - self.server0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("rate", type=float, nargs="?", default=500)
    ap.add_argument("count", type=int, nargs="?", default=0)
    ap.add_argument("--mode", default=os.environ.get("MODE", "auth"))
    ap.add_argument("--scenario", default=os.environ.get("SCENARIO", ""))
    ap.add_argument("--transport", default=os.environ.get("TRANSPORT", "u1"))
    ap.add_argument("--users", type=int, default=int(os.environ.get("USERS", "10000")))
    ap.add_argument("--server-pid", type=int, default=int(os.environ.get("SERVER_PID", "0") or 0))
    ap.add_argument("--outdir", default=os.environ.get("OUTDIR", ""))
    ap.add_argument("--expires", default=os.environ.get("EXPIRES", "3600"))
    ap.add_argument("--label", default=os.environ.get("LABEL", ""))
    ap.add_argument("--pcap", action="store_true", default=os.environ.get("PCAP", "") == "1")
    ap.add_argument("--recv-timeout", default=os.environ.get("RECV_TIMEOUT", "5000"))
    ap.add_argument("--sipp-extra", default=os.environ.get("SIPP_EXTRA", ""))
    a = ap.parse_args()

    if not is_loopback(a.host):
        raise SystemExit(f"refusing non-loopback target {a.host!r}: only 127.0.0.0/8 or ::1 may be load-tested here")
    scen = a.scenario or os.path.join(BENCH, "sipp", "register_noauth.xml" if a.mode == "noauth" else "register_auth.xml")
    txn_per_call = 2 if os.path.basename(scen) == "register_auth.xml" else 1
    if os.environ.get("TXN_PER_CALL"):
        txn_per_call = int(os.environ["TXN_PER_CALL"])
    count = a.count or int(a.rate * 25)
    users_dir = f"/tmp/regbench/users-{a.users}"
    csv = os.path.join(users_dir, "users.csv")
    if not os.path.exists(csv):
        subprocess.run([os.path.join(BENCH, "sipp", "gen-users.sh"), str(a.users)], check=True, stdout=subprocess.DEVNULL)
    outdir = a.outdir or time.strftime(f"/tmp/regbench/runs/%Y%m%d-%H%M%S-{a.mode}-{a.transport}-r{int(a.rate)}")
    os.makedirs(outdir, exist_ok=True)
    # Fixed local port by default: the Contact (sip:USER@127.0.0.1:LPORT) then
    # stays the same from run to run, so repeated runs refresh the same binding
    # instead of adding one per run (Kamailio's max_contacts=10 would then
    # answer 503 "Too many registered contacts").
    lport = int(os.environ.get("LOCAL_PORT", "15060"))
    if not port_free(lport):
        print(f"warning: local port {lport} busy, using a random one (Contacts will differ from earlier runs)",
              file=sys.stderr)
        lport = free_port()
    # sipp writes RTT samples every rtt_freq calls and drops the remainder at
    # exit, so pick a divisor of count (<= 1000)
    rtt_freq = next(f for f in range(min(1000, count), 0, -1) if count % f == 0)
    cmd = ["sipp", f"{a.host}:{a.port}", "-sf", scen, "-inf", csv, "-key", "expires", str(a.expires),
           "-t", a.transport, "-i", "127.0.0.1", "-p", str(lport),
           "-r", str(a.rate), "-rp", "1000", "-m", str(count),
           "-trace_stat", "-fd", "1",
           "-trace_err", "-nostdin", "-default_behaviors", "abortunexp",
           "-recv_timeout", str(a.recv_timeout),
           "-timeout", str(int(count / a.rate + 60)) + "s", "-timeout_error",
           "-max_recv_loops", "10000", "-max_sched_loops", "10000"]
    if a.transport.startswith("t") or a.transport == "un":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by sipp
            soft = hard
        cmd += ["-max_socket", str(max(100, min(60000, soft - 200)))]
    # sipp's default socket buffers are 64 KiB: at ~15,000 calls/s its single receive socket
    # overflows during bursts and the kernel drops answers (per-socket drops below show they are
    # all sipp's), which then look like the server's failures. A 4 MiB buffer (the kernel's
    # rmem_max here) for both servers alike; SIPP_BUFF=0 keeps sipp's default.
    buff = int(os.environ.get("SIPP_BUFF", "4194304"))
    if buff > 0:
        cmd += ["-buff_size", str(buff)]
    # Per-call RTT samples cost sipp ~7 % of its CPU (20,000 calls/s against deskline, 2 runs each,
    # 2026-11-27: 11.3 and 10.9 CPU-s without, 12.4 and 11.7 with), and at the top rate sipp's CPU
    # is what runs out first. capacity.py asks for them (SIPP_RTT=1) only in the latency runs,
    # the only ones whose RTTs it reads; run by hand, regbench keeps them.
    if os.environ.get("SIPP_RTT", "1") != "0":
        cmd += ["-trace_rtt", "-rtt_freq", str(rtt_freq)]
    if a.sipp_extra:
        cmd += a.sipp_extra.split()
    # SIPP_NICE=-10: sipp runs at a higher scheduling priority than the server, for both servers
    # alike. On 2 cores the server's threads and the kernel's packet work preempt the single-
    # threaded sipp, whose socket then overflows below the server's limit; a negative nice lets
    # sipp read its socket whenever it has work. Default 0 (as in the shared harness).
    nice = int(os.environ.get("SIPP_NICE", "0"))
    if nice != 0:
        cmd = ["nice", "-n", str(nice)] + cmd

    cap = None
    pcap_path = os.path.join(outdir, "capture.pcap")
    if a.pcap:
        cap = subprocess.Popen(["dumpcap", "-q", "-P", "-i", "lo", "-f", f"udp port {a.port}", "-w", pcap_path],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(outdir, "dumpcap.log"), "w"))
        time.sleep(1.5)

    srv0, rss0 = cpu_of_tree(a.server_pid)
    sb0, st0 = sys_cpu()
    ap0 = all_proc_cpu()
    ub0 = udp_errors()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    drops = DropWatch(lport, a.port)
    with open(os.path.join(outdir, "sipp.out"), "w") as so:
        p = subprocess.Popen(cmd, cwd=outdir, stdout=so, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while p.poll() is None:
            drops.sample()
            time.sleep(0.25)
    t1 = time.time()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    srv1, rss1 = cpu_of_tree(a.server_pid)
    sb1, st1 = sys_cpu()
    ap1 = all_proc_cpu()
    excl = set(ancestors(os.getpid()))
    if a.server_pid:
        excl |= set(proc_tree(a.server_pid))
    others = other_cpu(ap0, ap1, excl)
    ub1 = udp_errors()
    if cap:
        time.sleep(0.5)
        cap.terminate()
        cap.wait()

    wall = t1 - t0
    sipp_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    ncpu = os.cpu_count() or 1
    busy = (sb1 - sb0) / CLK
    # stats file: <scenario>_<pid>_.csv ; rtt file: <scenario>_<pid>_rtt.csv
    files = os.listdir(outdir)
    stat_f = [f for f in files if f.endswith("_.csv")]
    rtt_f = [f for f in files if f.endswith("_rtt.csv")]
    last = {}
    if stat_f:
        with open(os.path.join(outdir, stat_f[0])) as f:
            rows = [l.rstrip("\n").split(";") for l in f if l.strip()]
        hdr = rows[0]
        last = dict(zip(hdr, rows[-1]))
        first = dict(zip(hdr, rows[1])) if len(rows) > 1 else last

    def num(k):
        try:
            return float(last.get(k, "0"))
        except ValueError:
            return 0.0
    ok = int(num("SuccessfulCall(C)"))
    failed = int(num("FailedCall(C)"))
    created = int(num("TotalCallCreated"))
    retrans = int(num("Retransmissions(C)"))
    # throughput while calls were still being created (excludes the tail in
    # which only retransmitted stragglers complete): last periodic row with
    # TotalCallCreated < count; falls back to the whole run.
    steady_ok, steady_t = None, None
    try:
        tstart = float(first["StartTime"].split("\t")[-1])
        tend = float(last["CurrentTime"].split("\t")[-1])
        sipp_elapsed = tend - tstart
        for r in rows[1:]:
            d = dict(zip(hdr, r))
            t = float(d["CurrentTime"].split("\t")[-1]) - tstart
            if int(float(d["TotalCallCreated"])) < count and t >= 2:
                steady_ok, steady_t = int(float(d["SuccessfulCall(C)"])), t
    except (KeyError, ValueError, NameError):
        sipp_elapsed = wall
    rtds = {}
    if rtt_f:
        per = {}
        with open(os.path.join(outdir, rtt_f[0])) as f:
            next(f, None)
            for line in f:
                parts = line.strip().split(";")
                if len(parts) >= 3:
                    per.setdefault(parts[2], []).append(float(parts[1]))
        rtds = {f"rtd{k}": summarise(v) for k, v in sorted(per.items())}
    fail_detail = {k.replace("(C)", ""): int(float(v)) for k, v in last.items()
                   if k.startswith("Failed") and k.endswith("(C)") and v not in ("", "0")}
    res = {
        "label": a.label, "target": f"{a.host}:{a.port}", "transport": a.transport,
        "scenario": os.path.basename(scen), "txn_per_call": txn_per_call,
        "target_rate": a.rate, "count": count, "users": a.users,
        "calls_created": created, "successful": ok, "failed": failed,
        "failed_pct": round(100.0 * failed / max(1, ok + failed), 4),
        "failure_detail": fail_detail, "retransmissions": retrans,
        "udp_drops_sipp": drops.client, "udp_drops_server": drops.server_delta(),
        "sipp_exit": p.returncode,
        "elapsed_s": round(sipp_elapsed, 3), "wall_s": round(wall, 3),
        "achieved_rate": (round(steady_ok / steady_t, 1) if steady_t else
                          (round(ok / sipp_elapsed, 1) if sipp_elapsed > 0 else None)),
        "overall_rate": round(ok / sipp_elapsed, 1) if sipp_elapsed > 0 else None,
        "retrans_pct": round(100.0 * retrans / max(1, (ok + failed) * txn_per_call), 4),
        "register_tps": None,
        "rtt_ms": rtds,
        "server_pid": a.server_pid or None,
        "server_cpu_s": round(srv1 - srv0, 2) if srv0 is not None else None,
        "server_cpu_pct": round(100 * (srv1 - srv0) / wall, 1) if srv0 is not None else None,
        "server_pss_kib_after": rss1,
        "registers_per_server_cpu_s": (round(ok * txn_per_call / (srv1 - srv0), 0)
                                       if srv0 is not None and srv1 - srv0 > 0 else None),
        "sipp_cpu_s": round(sipp_cpu, 2), "sipp_cpu_pct": round(100 * sipp_cpu / wall, 1),
        # /proc/stat (tick-sampled) under-counts this bursty load on this VM;
        # kept for reference only.  other_cpu_s is summed per process instead.
        "proc_stat_busy_cpu_s": round(busy, 2), "machine_cpus": ncpu,
        "other_cpu_s": round(others, 2),
        "udp_rcvbuf_errors": ub1[0] - ub0[0], "udp_in_errors": ub1[1] - ub0[1],
        "loadavg_after": open("/proc/loadavg").read().split()[0],
        "outdir": outdir,
    }
    if res["achieved_rate"]:
        res["register_tps"] = round(res["achieved_rate"] * txn_per_call, 1)
    if a.pcap and os.path.exists(pcap_path):
        res["pcap_latency_ms"] = parse_pcap_latency(pcap_path, a.port)
        if os.environ.get("KEEP_PCAP", "") != "1":
            os.unlink(pcap_path)  # ~2 KB per call; KEEP_PCAP=1 keeps it
    # sipp's error log holds every failed message (GBs when a run collapses):
    # keep its first 1 MB; gzip the per-transaction RTT file.
    for fn in os.listdir(outdir):
        fp = os.path.join(outdir, fn)
        if fn.endswith("_errors.log") and os.path.getsize(fp) > 1 << 20:
            with open(fp, "r+b") as f:
                f.truncate(1 << 20)
                f.seek(0, 2)
                f.write(b"\n[... truncated by regbench.py ...]\n")
        elif fn.endswith("_rtt.csv") and os.environ.get("KEEP_RAW", "") != "1":
            subprocess.run(["gzip", "-f", fp])
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(res, f, indent=1)

    print(f"== {res['scenario']} {a.transport} -> {res['target']}  target {a.rate:g} calls/s x {count} calls"
          f" ({txn_per_call} REGISTER txn/call)")
    print(f"successful calls : {ok}")
    print(f"failed calls     : {failed} ({res['failed_pct']}%) {fail_detail if fail_detail else ''}")
    print(f"retransmissions  : {retrans} ({res['retrans_pct']}% of txn)   kernel UDP rcvbuf drops: {res['udp_rcvbuf_errors']} "
          f"(sipp's socket {res['udp_drops_sipp']}, the server's {res['udp_drops_server']})")
    print(f"achieved rate    : {res['achieved_rate']} calls/s = {res['register_tps']} REGISTER/s (steady part);"
          f" {res['overall_rate']} calls/s over the whole {res['elapsed_s']} s")
    for k, v in rtds.items():
        if v:
            print(f"response {k} ms : p50 {v['p50']}  p90 {v['p90']}  p99 {v['p99']}  p99.9 {v['p999']}  max {v['max']}  (n={v['n']}; sipp timer: 4 ms steps here, PCAP=1 for sub-ms)")
    if res.get("pcap_latency_ms"):
        v = res["pcap_latency_ms"]
        print(f"pcap txn latency : p50 {v['p50']}  p90 {v['p90']}  p99 {v['p99']}  p99.9 {v['p999']}  max {v['max']} ms (n={v['n']})")
    if res["server_cpu_s"] is not None:
        print(f"server CPU       : {res['server_cpu_s']} s ({res['server_cpu_pct']}% of one core) -> "
              f"{res['registers_per_server_cpu_s']} REGISTER per server CPU-second; PSS {rss1} KiB")
    print(f"sipp CPU         : {res['sipp_cpu_s']} s ({res['sipp_cpu_pct']}%);  other processes on the machine:"
          f" {res['other_cpu_s']} CPU-s (of {round(wall * ncpu, 1)} available)")
    print("RESULT " + json.dumps(res, separators=(",", ":")))
    return 0 if failed == 0 and ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
