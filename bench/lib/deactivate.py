#!/usr/bin/env python3
"""Deactivate a user with PHONES bound phones: time to the API answer and to the last NOTIFY.

  deactivate.py --name NAME --sip-port P [--phones 20] [--runs 5] [--out result.json]

Needs a running deskline instance NAME (lib/deskline.py start; max_contacts_per_aor >= PHONES).
Creates user `dq7000` (extension 7000) with PHONES devices (SIP users 7000p01..., passwords
pwd7000p01...), then simulates the phones: one UDP socket each on 127.0.0.1, REGISTER with
digest MD5 qop=auth (computed here with hashlib), User-Agent of a Yealink T46U, and a receiver
thread that answers every NOTIFY with 200 OK and records when it arrived.

Each run: all phones registered (checked: 200 OK for each) -> t0 -> POST
/api/v1/users/dq7000/deactivate on an already open keep-alive connection -> t_answer; then wait
for one NOTIFY per phone (up to 3 s) -> t_last. Afterwards reactivate (its NOTIFYs are ignored)
and register the phones again. Reports per run and the median over RUNS of
  answer_ms     = t_answer - t0            (bar < 50 ms)
  last_notify_ms = t_last - t0             (bar < 100 ms, every phone must get one)
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deskline  # noqa: E402

UA = "Yealink SIP-T46U 108.86.0.45"
EXT = "7000"
USER = "dq7000"


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def parse_msg(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    lines = head.split("\r\n")
    hdrs = []
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs.append((k.strip(), v.strip()))
    return lines[0], hdrs


def hget(hdrs, name, compact=None):
    for k, v in hdrs:
        if k.lower() == name.lower() or (compact and k.lower() == compact):
            return v
    return None


class Phone:
    def __init__(self, idx, server):
        self.idx = idx
        self.user = f"{EXT}p{idx:02d}"
        self.password = f"pwd{EXT}p{idx:02d}"
        self.mac = f"03000070{idx:04x}"
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.call_id = f"{random.getrandbits(64):016x}@127.0.0.1"
        self.cseq = 0
        self.tag = f"{random.getrandbits(32):08x}"
        self.responses = []           # (status line, headers) for our REGISTERs
        self.notifies = []            # perf_counter() of each NOTIFY received
        self.cond = threading.Condition()
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.perf_counter()
            first, hdrs = parse_msg(data)
            if first.startswith("SIP/2.0"):
                with self.cond:
                    self.responses.append((first, hdrs))
                    self.cond.notify_all()
                continue
            method = first.split(" ", 1)[0]
            if method == "NOTIFY":
                with self.cond:
                    self.notifies.append((t, hget(hdrs, "Event", "o")))
                    self.cond.notify_all()
            if method != "ACK":
                self.answer(data, hdrs, addr)

    def answer(self, data, hdrs, addr):
        out = ["SIP/2.0 200 OK"]
        for k, v in hdrs:
            kl = k.lower()
            if kl in ("via", "v", "from", "f", "call-id", "i", "cseq"):
                out.append(f"{k}: {v}")
            elif kl in ("to", "t"):
                out.append(f"{k}: {v}" + ("" if ";tag=" in v else f";tag={self.tag}"))
        out += [f"User-Agent: {UA}", "Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(out).encode(), addr)

    def send_register(self, auth=None, expires=3600):
        self.cseq += 1
        host = f"127.0.0.1:{self.server[1]}"
        branch = f"z9hG4bK{random.getrandbits(48):012x}"
        lines = [f"REGISTER sip:{host} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
                 "Max-Forwards: 70",
                 f"From: <sip:{EXT}@{host}>;tag={self.tag}",
                 f"To: <sip:{EXT}@{host}>",
                 f"Call-ID: {self.call_id}",
                 f"CSeq: {self.cseq} REGISTER",
                 f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
                 f"User-Agent: {UA} {self.mac[:2]}:{self.mac[2:4]}:{self.mac[4:6]}:{self.mac[6:8]}:{self.mac[8:10]}:{self.mac[10:]}",
                 f"Expires: {expires}",
                 "Allow: INVITE, ACK, OPTIONS, CANCEL, BYE, SUBSCRIBE, NOTIFY, INFO, REFER, UPDATE, MESSAGE"]
        if auth:
            lines.append(f"Authorization: {auth}")
        lines += ["Content-Length: 0", "", ""]
        with self.cond:
            self.responses.clear()
        self.sock.sendto("\r\n".join(lines).encode(), self.server)

    def wait_final(self, timeout=3.0):
        end = time.time() + timeout
        with self.cond:
            while True:
                for first, hdrs in self.responses:
                    code = int(first.split()[1])
                    if code >= 200:
                        return code, hdrs
                left = end - time.time()
                if left <= 0:
                    return None, None
                self.cond.wait(left)

    def register(self):
        self.send_register()
        code, hdrs = self.wait_final()
        if code == 401:
            ch = hget(hdrs, "WWW-Authenticate")
            p = dict(re.findall(r'(\w+)="?([^",]*)"?', ch.split(" ", 1)[1]))
            uri = f"sip:127.0.0.1:{self.server[1]}"
            cnonce = f"{random.getrandbits(32):08x}"
            nc = "00000001"
            ha1 = md5(f"{self.user}:{p['realm']}:{self.password}")
            ha2 = md5(f"REGISTER:{uri}")
            resp = md5(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            auth = (f'Digest username="{self.user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
                    f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}')
            if "opaque" in p:
                auth += f', opaque="{p["opaque"]}"'
            self.send_register(auth)
            code, hdrs = self.wait_final()
        return code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="deact")
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--phones", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    api = deskline.Api(a.name)
    st, body = api.call("POST", "/api/v1/users", {"username": USER, "display_name": "Deactivation bench", "extension": EXT})
    if st not in (200, 201, 409):
        raise SystemExit(f"create user: {st} {body[:300]!r}")
    phones = [Phone(i + 1, ("127.0.0.1", a.sip_port)) for i in range(a.phones)]
    for ph in phones:
        st, body = api.call("POST", "/api/v1/devices", {"mac": ph.mac, "user": USER, "vendor": "yealink", "model": "T46U",
                                                         "sip_username": ph.user, "sip_password": ph.password})
        if st not in (200, 201, 409):
            raise SystemExit(f"create device {ph.mac}: {st} {body[:300]!r}")
    runs = []
    for run in range(a.runs):
        codes = [ph.register() for ph in phones]
        if any(c != 200 for c in codes):
            raise SystemExit(f"run {run + 1}: not every phone registered: {codes}")
        st, body = api.call("GET", f"/api/v1/registrations?user={USER}")
        nbind = len(json.loads(body)) if st == 200 and body.strip().startswith(b"[") else None
        for ph in phones:
            with ph.cond:
                ph.notifies.clear()
        api.call("GET", "/healthz")   # keep-alive connection is warm
        t0 = time.perf_counter()
        st, body = api.call("POST", f"/api/v1/users/{USER}/deactivate")
        t_answer = time.perf_counter()
        if st != 200:
            raise SystemExit(f"deactivate: {st} {body[:300]!r}")
        answer = json.loads(body)
        deadline = time.time() + 3
        for ph in phones:
            with ph.cond:
                while not ph.notifies and time.time() < deadline:
                    ph.cond.wait(max(0.0, deadline - time.time()))
        got = [ph.notifies[0][0] for ph in phones if ph.notifies]
        r = {"run": run + 1, "bindings_before": nbind, "answer_ms": round((t_answer - t0) * 1000, 2),
             "notifies": len(got), "phones": len(phones),
             "first_notify_ms": round((min(got) - t0) * 1000, 2) if got else None,
             "last_notify_ms": round((max(got) - t0) * 1000, 2) if got else None,
             "events": sorted({ph.notifies[0][1] for ph in phones if ph.notifies} - {None}),
             "bindings_removed": answer.get("bindings_removed"),
             "devices_notified": len(answer.get("devices_notified", [])),
             "devices_unreachable": len(answer.get("devices_unreachable", []))}
        print(f"run {run + 1}: answer {r['answer_ms']} ms, NOTIFY {r['notifies']}/{len(phones)} first "
              f"{r['first_notify_ms']} ms last {r['last_notify_ms']} ms; bindings_removed {r['bindings_removed']},"
              f" notified {r['devices_notified']}, unreachable {r['devices_unreachable']}, events {r['events']}",
              file=sys.stderr, flush=True)
        runs.append(r)
        # refused while suspended? (must be 403)
        suspended_code = phones[0].register()
        r["register_while_suspended"] = suspended_code
        st, body = api.call("POST", f"/api/v1/users/{USER}/reactivate")
        if st != 200:
            raise SystemExit(f"reactivate: {st} {body[:300]!r}")
        time.sleep(0.5)
    complete = [r for r in runs if r["notifies"] == r["phones"]]
    res = {"phones": a.phones, "runs": runs,
           "answer_ms_median": statistics.median(r["answer_ms"] for r in runs),
           "last_notify_ms_median": (statistics.median(r["last_notify_ms"] for r in complete)
                                     if len(complete) == len(runs) else None),
           "all_notified": len(complete) == len(runs)}
    for ph in phones:
        ph.stop = True
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
