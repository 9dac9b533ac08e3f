#!/usr/bin/env python3
"""Deactivate BATCH users (one registered phone each) in one request, while OTHERS users keep
registering: API answer time, time until every phone got its NOTIFY, and the REGISTER latency of
the others before / during / after the batch.

  deactivate_batch.py --name NAME --sip-port P [--batch 10000] [--others 1000] [--first 20000]
                      [--rate 250] [--runs 3] [--sockets 8] [--out result.json]

Needs a running deskline instance NAME (lib/deskline.py start) with MD5 digest and the auth
throttle off (as lib/deskline.py configures it). Creates users u<ext> with one device each
(lib/deskline.py users: SIP user <ext>, password pw<ext>): exts FIRST..FIRST+BATCH-1 are the batch,
the next OTHERS exts the users who keep registering.

The batch's phones: SOCKETS UDP sockets on 127.0.0.1 (phone i on socket i % SOCKETS), each with a
thread that registers its phones (REGISTER -> 401 -> REGISTER with MD5 qop=auth -> 200, at most
WINDOW in flight), answers every NOTIFY with 200 and records when the first NOTIFY for each
extension (To: user part) arrived. So "every NOTIFY sent" is measured where it matters: at the
phones, including their answer time.

The others: sipp (`sipp/register_auth.xml`, injection file of the OTHERS users, local port
SIPP_PORT) at RATE calls/s (2 REGISTER transactions per call) for the whole run; dumpcap captures
sipp's port on `lo` and each transaction's latency (request -> final response, matched on Call-ID +
CSeq) is binned by when the request was sent: before the batch request, during it (from the
request until the last phone got its NOTIFY), after.

Each run: register every batch phone (checked: 200 for each) -> start dumpcap + sipp -> PRE s ->
POST /api/v1/users/deactivate {"usernames": [...]} -> wait for one NOTIFY per phone (up to 60 s)
-> POST_S s -> stop sipp and dumpcap -> check a sample of batch phones gets 403 -> POST
/api/v1/users/reactivate (same names) -> next run. Prints one JSON line; median over RUNS.
"""
import argparse
import hashlib
import json
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import deskline  # noqa: E402

WINDOW = 100          # REGISTERs in flight per socket while registering the batch's phones


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def parse(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    lines = head.split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs.setdefault(k.strip().lower(), v.strip())
    return lines[0], hdrs


class PhoneSocket:
    """One UDP socket standing for many phones: registers them, answers their NOTIFYs."""

    def __init__(self, hub, server):
        self.hub, self.server = hub, server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.slots = threading.Semaphore(WINDOW)
        threading.Thread(target=self.loop, daemon=True).start()

    def send_register(self, ext, cseq, auth=None):
        host = f"127.0.0.1:{self.server[1]}"
        lines = [f"REGISTER sip:{host} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{random.getrandbits(48):012x};rport",
                 "Max-Forwards: 70",
                 f"From: <sip:{ext}@{host}>;tag=t{ext}",
                 f"To: <sip:{ext}@{host}>",
                 f"Call-ID: {ext}-{self.hub.run}@bench",
                 f"CSeq: {cseq} REGISTER",
                 f"Contact: <sip:{ext}@127.0.0.1:{self.port}>",
                 "User-Agent: Yealink SIP-T46U 108.86.0.45",
                 "Expires: 3600"]
        if auth:
            lines.append(f"Authorization: {auth}")
        lines += ["Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(lines).encode(), self.server)

    def authorization(self, ext, challenge):
        p = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
        uri = f"sip:127.0.0.1:{self.server[1]}"
        cnonce, nc = f"{random.getrandbits(32):08x}", "00000001"
        ha1, ha2 = md5(f"{ext}:{p['realm']}:pw{ext}"), md5(f"REGISTER:{uri}")
        resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        auth = (f'Digest username="{ext}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
                f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}')
        return auth + (f', opaque="{p["opaque"]}"' if "opaque" in p else "")

    def answer(self, hdrs, addr):
        out = ["SIP/2.0 200 OK"] + [f"{k}: {hdrs[k]}" for k in ("via", "from", "call-id", "cseq") if k in hdrs]
        to = hdrs.get("to", "")
        out += [f"To: {to}" + ("" if ";tag=" in to else ";tag=ph"), "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(out).encode(), addr)

    def loop(self):
        while True:
            data, addr = self.sock.recvfrom(65535)
            t = time.time()
            first, hdrs = parse(data)
            if first.startswith("SIP/2.0"):
                self.on_response(int(first.split()[1]), hdrs)
                continue
            method = first.split(" ", 1)[0]
            if method == "NOTIFY":
                m = re.search(r"sip:([^@;>]+)@", hdrs.get("to", ""))
                if m:
                    self.hub.notified(m.group(1), t)
            if method != "ACK":
                self.answer(hdrs, addr)

    def on_response(self, code, hdrs):
        ext = hdrs.get("call-id", "").split("-", 1)[0]
        if code < 200:
            return
        if code == 401 and "www-authenticate" in hdrs and hdrs.get("cseq", "").startswith("1 "):
            self.send_register(ext, 2, self.authorization(ext, hdrs["www-authenticate"]))
            return
        if code != 503:   # overloaded: no answer recorded, the next pass sends it again
            self.hub.answered(ext, code)
        self.slots.release()


class Hub:
    def __init__(self, server, nsock):
        self.socks = [PhoneSocket(self, server) for _ in range(nsock)]
        self.lock = threading.Condition()
        self.codes, self.first_notify, self.run = {}, {}, 0

    def answered(self, ext, code):
        with self.lock:
            self.codes[ext] = code
            self.lock.notify_all()

    def notified(self, ext, t):
        with self.lock:
            if ext not in self.first_notify:
                self.first_notify[ext] = t
                self.lock.notify_all()

    def register(self, exts, timeout=60):
        """REGISTERs every ext (retrying what got no answer); returns {code: count}."""
        self.run += 1
        with self.lock:
            for e in exts:
                self.codes.pop(e, None)
        for attempt in range(5):
            todo = [e for e in exts if self.codes.get(e) is None]
            if not todo:
                break
            if attempt:
                time.sleep(1)
            for e in todo:
                s = self.socks[int(e) % len(self.socks)]
                if not s.slots.acquire(timeout=2):
                    s.slots.release()  # a lost answer: free a slot, the retry pass resends
                s.send_register(e, 1)
            deadline = time.time() + timeout / 5
            with self.lock:
                while any(self.codes.get(e) is None for e in todo) and time.time() < deadline:
                    self.lock.wait(0.5)
            for s in self.socks:   # reset the windows between passes
                s.slots = threading.Semaphore(WINDOW)
        out = {}
        for e in exts:
            out[self.codes.get(e)] = out.get(self.codes.get(e), 0) + 1
        return out

    def wait_notifies(self, exts, timeout):
        deadline = time.time() + timeout
        with self.lock:
            while sum(1 for e in exts if e in self.first_notify) < len(exts) and time.time() < deadline:
                self.lock.wait(0.2)
            return [self.first_notify[e] for e in exts if e in self.first_notify]


def pcap_transactions(path, port):
    """(request time, latency ms) per transaction sent from `port` (first send to final answer)."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return []
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    scale = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}.get(magic)
    l2 = {1: 14, 113: 16, 276: 20, 0: 4}.get(struct.unpack("<I", data[20:24])[0])
    if scale is None or l2 is None:
        return []
    off, sent, out = 24, {}, []
    while off + 16 <= len(data):
        ts, frac, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        pkt, off = data[off + 16:off + 16 + incl], off + 16 + incl
        ip = pkt[l2:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        first, hdrs = parse(ip[ihl + 8:])
        key = (hdrs.get("call-id"), hdrs.get("cseq"))
        t = ts + frac * scale
        if sport == port and not first.startswith("SIP/2.0"):
            sent.setdefault(key, t)
        elif dport == port and first.startswith("SIP/2.0") and first[8:9] != "1" and key in sent:
            t0 = sent.pop(key)
            out.append((t0, (t - t0) * 1000.0))
    return out


def pct(vals, q):
    if not vals:
        return None
    vals = sorted(vals)
    k = (len(vals) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(vals) - 1)
    return round(vals[lo] + (vals[hi] - vals[lo]) * (k - lo), 3)


def window(txns, t_from, t_to):
    lat = [ms for t, ms in txns if t_from <= t < t_to]
    return {"n": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": round(max(lat), 3) if lat else None}


def timeline(txns, t0, t1, step=0.1):
    """(ms since the batch request, transactions, max latency ms) per `step` from t0 - 0.5 s."""
    out, t = [], t0 - 0.5
    while t < t1 + 0.5:
        lat = [ms for ts, ms in txns if t <= ts < t + step]
        out.append((round((t - t0) * 1000), len(lat), round(max(lat), 2) if lat else None))
        t += step
    return out


def sipp_failed(outdir):
    """sipp's cumulative failed calls (its last statistics screen)."""
    failed = None
    for line in open(os.path.join(outdir, "sipp.out"), errors="replace"):
        if line.strip().startswith("Failed call"):
            failed = int(line.split("|")[2].split()[0])
    return failed


def start_load(a, csv, outdir, count):
    pcap = os.path.join(outdir, "others.pcap")
    cap = subprocess.Popen(["dumpcap", "-q", "-P", "-i", "lo", "-f", f"udp port {a.sipp_port}", "-w", pcap],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(outdir, "dumpcap.log"), "w"))
    time.sleep(1.5)
    cmd = ["sipp", f"127.0.0.1:{a.sip_port}", "-sf", os.path.join(BENCH, "sipp", "register_auth.xml"),
           "-inf", csv, "-key", "expires", "3600", "-t", "u1", "-i", "127.0.0.1", "-p", str(a.sipp_port),
           "-r", str(a.rate), "-rp", "1000", "-m", str(count), "-nostdin", "-trace_err",
           "-default_behaviors", "abortunexp", "-recv_timeout", "10000", "-timeout", f"{count // a.rate + 60}s"]
    sipp = subprocess.Popen(cmd, cwd=outdir, stdout=open(os.path.join(outdir, "sipp.out"), "w"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return cap, sipp, pcap


def one_run(a, api, hub, batch, csv, outdir):
    codes = hub.register(batch)
    if codes.get(200, 0) != len(batch):
        raise SystemExit(f"not every batch phone registered: {codes}")
    st, body = api.call("GET", "/api/v1/stats")
    bindings_before = json.loads(body).get("bindings_total") if st == 200 else None
    with hub.lock:
        hub.first_notify.clear()
    secs = a.pre + a.post + 30
    cap, sipp, pcap = start_load(a, csv, outdir, int(a.rate * secs))
    t_load = time.time()
    time.sleep(a.pre)
    api.call("GET", "/healthz")
    t0 = time.time()
    st, body = api.call("POST", "/api/v1/users/deactivate", {"usernames": [f"u{e}" for e in batch]})
    t_answer = time.time()
    if st != 200:
        raise SystemExit(f"batch deactivate: {st} {body[:300]!r}")
    answer = json.loads(body)
    got = hub.wait_notifies(batch, 60)
    t_last = max(got) if got else time.time()
    time.sleep(a.post)
    t_end = time.time()
    sipp.send_signal(2)   # SIGINT: sipp prints its final statistics
    try:
        sipp.wait(10)
    except subprocess.TimeoutExpired:
        sipp.kill()
    time.sleep(0.5)
    cap.terminate()
    cap.wait(10)
    txns = pcap_transactions(pcap, a.sipp_port)
    if not a.keep_pcap:
        os.unlink(pcap)
    sample = batch[:: max(1, len(batch) // 100)]
    refused = hub.register(sample, timeout=15)
    st, _ = api.call("POST", "/api/v1/users/reactivate", {"usernames": [f"u{e}" for e in batch]})
    if st != 200:
        raise SystemExit(f"batch reactivate: {st}")
    time.sleep(3)   # its NOTIFY flood settles before the next run registers
    return {
        "bindings_before": bindings_before,
        "answer_ms": round((t_answer - t0) * 1000, 1),
        "notifies": len(got), "phones": len(batch),
        "first_notify_ms": round((min(got) - t0) * 1000, 1) if got else None,
        "last_notify_ms": round((t_last - t0) * 1000, 1) if got else None,
        "answer": {k: v for k, v in answer.items() if k != "unchanged"},
        "register_after_suspend": refused,
        "others_before": window(txns, t_load + 1, t0),
        "others_during": window(txns, t0, t_last),
        "others_after": window(txns, t_last, t_end),
        "others_transactions": len(txns),
        "others_failed_calls": sipp_failed(outdir),
        "others_timeline": timeline(txns, t0, t_last),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="batch")
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--sipp-port", type=int, default=15086)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--others", type=int, default=1000)
    ap.add_argument("--first", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=250, help="sipp calls/s of the others (2 REGISTERs each)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sockets", type=int, default=8)
    ap.add_argument("--pre", type=float, default=4)
    ap.add_argument("--post", type=float, default=3)
    ap.add_argument("--keep-pcap", action="store_true")
    ap.add_argument("--timeline", action="store_true", help="print the others' latency per 100 ms")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    outdir = os.path.join(deskline.STATE, f"batch-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(outdir, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "deskline.py"), "users", a.name, "--first", str(a.first),
                    "--count", str(a.batch + a.others)], check=True, stdout=subprocess.DEVNULL)
    csv_dir = subprocess.run([os.path.join(BENCH, "sipp", "gen-users.sh"), str(a.others), str(a.first + a.batch),
                              os.path.join(outdir, "others")], check=True, capture_output=True, text=True).stdout.strip()
    csv = os.path.join(csv_dir, "users.csv")
    api = deskline.Api(a.name)
    hub = Hub(("127.0.0.1", a.sip_port), a.sockets)
    batch = [str(e) for e in range(a.first, a.first + a.batch)]
    runs = []
    for run in range(a.runs):
        r = one_run(a, api, hub, batch, csv, outdir)
        r["run"] = run + 1
        print(f"run {run + 1}: answer {r['answer_ms']} ms; NOTIFY {r['notifies']}/{r['phones']} last "
              f"{r['last_notify_ms']} ms; others p99 before {r['others_before']['p99']} ms "
              f"during {r['others_during']['p99']} ms (n={r['others_during']['n']}) after {r['others_after']['p99']} ms;"
              f" answer {r['answer']}; REGISTER after suspend {r['register_after_suspend']}; others' failed calls "
              f"{r['others_failed_calls']}", file=sys.stderr, flush=True)
        if a.timeline:
            print("  timeline (ms, n, max ms): " + " ".join(f"{t}:{n}:{m}" for t, n, m in r["others_timeline"]),
                  file=sys.stderr, flush=True)
        runs.append(r)

    def med(f):
        vals = [f(r) for r in runs if f(r) is not None]
        return round(statistics.median(vals), 3) if vals else None
    res = {"batch": a.batch, "others": a.others, "rate_calls_s": a.rate, "runs": runs,
           "answer_ms_median": med(lambda r: r["answer_ms"]),
           "last_notify_ms_median": med(lambda r: r["last_notify_ms"]),
           "all_notified": all(r["notifies"] == r["phones"] for r in runs),
           "others_p99_before_median": med(lambda r: r["others_before"]["p99"]),
           "others_p99_during_median": med(lambda r: r["others_during"]["p99"]),
           "others_p99_after_median": med(lambda r: r["others_after"]["p99"]),
           "others_p50_during_median": med(lambda r: r["others_during"]["p50"])}
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
