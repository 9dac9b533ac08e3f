#!/usr/bin/env python3
"""Start, stop and populate a deskline server for the benchmarks (loopback only).

  deskline.py start NAME --sip-port P --admin-port A [--set KEY=TOML ...] [--bin PATH]
        writes /tmp/regbench/deskline-NAME/{config.toml,data/,certs/,log,pid}, starts
        `deskline serve --config ...`, waits for "deskline: ready", prints the pid
  deskline.py stop NAME
        stops only the pid that `start` recorded (TERM, then KILL after 5 s)
  deskline.py users NAME --first 1000 --count N [--threads 24]
        creates users u<ext> (extension <ext>, no password) and one device each
        (MAC 0200<ext as 8 hex>, SIP user <ext>, password pw<ext>) through the admin API,
        many requests in flight on keep-alive connections; existing ones (409) are fine
  deskline.py import NAME --first 1000 --count N [--batch 5000]
        the same users and devices in batches through POST /api/v1/import (one durable step per
        batch, no password hashing): ~100x faster than `users`; refuses if any already exists
  deskline.py token NAME          prints the admin token
  deskline.py api NAME METHOD PATH [JSON]   one admin API call, prints status and body

`--set` overrides config keys, e.g. --set sip.max_contacts_per_aor=32
--set 'provisioning.https=["127.0.0.1:8443"]' (values are TOML literals).
"""
import argparse
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
STATE = os.environ.get("REGBENCH_STATE", "/tmp/regbench")


def inst_dir(name):
    return os.path.join(STATE, f"deskline-{name}")


def default_config(d, sip_port, admin_port):
    return {
        "": {"domain": '"deskline.bench"', "data_dir": json.dumps(os.path.join(d, "data"))},
        "sip": {
            "udp": json.dumps([f"127.0.0.1:{sip_port}"]), "tcp": "[]", "tls": "[]",
            "min_expires": "60", "max_expires": "7200", "default_expires": "3600",
            "max_contacts_per_aor": "10", "realm": '"deskline.bench"', "digest_algorithms": '["MD5"]',
            "nonce_lifetime": "300",
            # sipp sends every user from one source address; the bench must not be throttled
            # by the brute-force guard (Kamailio's config has none either)
            "auth_failures_before_throttle": "1000000",
        },
        "tls": {"cert": json.dumps(os.path.join(d, "certs", "server.pem")),
                "key": json.dumps(os.path.join(d, "certs", "server.key"))},
        "provisioning": {"https": "[]"},
        "admin": {"listen": json.dumps(f"127.0.0.1:{admin_port}")},
    }


def render_toml(cfg):
    out = [f"{k} = {v}" for k, v in cfg[""].items()]
    for sect, kv in cfg.items():
        if sect == "":
            continue
        out.append(f"\n[{sect}]")
        out += [f"{k} = {v}" for k, v in kv.items()]
    return "\n".join(out) + "\n"


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def cmd_start(a):
    d = inst_dir(a.name)
    os.makedirs(os.path.join(d, "certs"), exist_ok=True)
    pidf = os.path.join(d, "pid")
    if os.path.exists(pidf):
        old = int(open(pidf).read().strip() or 0)
        if old and alive(old):
            sys.exit(f"deskline {a.name} already running (pid {old}); stop it first")
    if a.fresh and os.path.isdir(os.path.join(d, "data")):
        subprocess.run(["rm", "-rf", os.path.join(d, "data")], check=True)
    cfg = default_config(d, a.sip_port, a.admin_port)
    for s in a.set or []:
        key, val = s.split("=", 1)
        sect, _, k = key.rpartition(".")
        cfg.setdefault(sect, {})[k] = val
    conf = os.path.join(d, "config.toml")
    with open(conf, "w") as f:
        f.write(render_toml(cfg))
    log = open(os.path.join(d, "log"), "w")
    env = dict(os.environ)
    # the per-request INFO lines (e.g. every config fetch) would be measured too; nginx runs with
    # access_log off. DESKLINE_LOG=info (the default without this) measures them.
    env.setdefault("DESKLINE_LOG", "warn")
    p = subprocess.Popen([a.bin, "serve", "--config", conf], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    with open(pidf, "w") as f:
        f.write(str(p.pid))
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        if p.poll() is not None:
            sys.stderr.write(open(os.path.join(d, "log")).read()[-3000:])
            os.unlink(pidf)
            sys.exit(f"deskline {a.name} exited with {p.returncode} (log {d}/log)")
        if "deskline: ready" in open(os.path.join(d, "log"), errors="replace").read():
            print(p.pid)
            print(f"deskline {a.name} pid {p.pid} sip udp 127.0.0.1:{a.sip_port} admin 127.0.0.1:{a.admin_port}"
                  f" config {conf} log {d}/log", file=sys.stderr)
            return
        time.sleep(0.1)
    p.kill()
    sys.exit(f"deskline {a.name} not ready after {a.timeout} s (log {d}/log)")


def cmd_stop(a):
    pidf = os.path.join(inst_dir(a.name), "pid")
    if not os.path.exists(pidf):
        return
    pid = int(open(pidf).read().strip() or 0)
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        cmdline = b""
    if pid and b"deskline" in cmdline:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not alive(pid) or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z":
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        print(f"stopped deskline {a.name} pid {pid}", file=sys.stderr)
    os.unlink(pidf)


def token(name):
    return open(os.path.join(inst_dir(name), "data", "admin.token")).read().strip()


def admin_addr(name):
    for line in open(os.path.join(inst_dir(name), "config.toml")):
        if line.startswith("listen"):
            host, port = json.loads(line.split("=", 1)[1].strip()).rsplit(":", 1)
            return host, int(port)
    raise SystemExit("no admin listen in config")


class Api:
    """One keep-alive connection to the admin API."""

    def __init__(self, name):
        self.host, self.port = admin_addr(name)
        self.tok = token(name)
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                data = json.dumps(body).encode() if body is not None else None
                hdrs = {"Authorization": f"Bearer {self.tok}"}
                if data is not None:
                    hdrs["Content-Type"] = "application/json"
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)


def mac_of(ext):
    return f"0200{ext:08x}"


def cmd_users(a):
    t0 = time.time()
    errors = []
    lock = threading.Lock()
    done = [0]

    def run(phase):
        q = queue.Queue()
        for ext in range(a.first, a.first + a.count):
            q.put(ext)

        def worker():
            api = Api(a.name)
            while True:
                try:
                    ext = q.get_nowait()
                except queue.Empty:
                    return
                if phase == "users":
                    st, body = api.call("POST", "/api/v1/users",
                                        {"username": f"u{ext}", "display_name": f"Bench {ext}", "extension": str(ext)})
                else:
                    st, body = api.call("POST", "/api/v1/devices",
                                        {"mac": mac_of(ext), "user": f"u{ext}", "sip_username": str(ext),
                                         "sip_password": f"pw{ext}"})
                if st not in (200, 201, 409):
                    with lock:
                        errors.append((phase, ext, st, body[:200]))
                with lock:
                    done[0] += 1
        ts = [threading.Thread(target=worker) for _ in range(a.threads)]
        [t.start() for t in ts]
        [t.join() for t in ts]

    run("users")
    t1 = time.time()
    run("devices")
    t2 = time.time()
    n = a.count
    print(f"created {n} users in {t1 - t0:.1f} s ({n / max(1e-9, t1 - t0):.0f}/s) and {n} devices in "
          f"{t2 - t1:.1f} s ({n / max(1e-9, t2 - t1):.0f}/s); {len(errors)} errors", file=sys.stderr)
    for e in errors[:5]:
        print("  error:", e, file=sys.stderr)
    print(json.dumps({"users": n, "users_s": round(t1 - t0, 2), "devices_s": round(t2 - t1, 2), "errors": len(errors)}))
    if errors:
        sys.exit(1)


def import_batch(api, first, count):
    """POST /api/v1/import of users u<ext> and their devices, ext in [first, first+count)."""
    exts = range(first, first + count)
    body = {"users": [{"username": f"u{e}", "extension": str(e)} for e in exts],
            "devices": [{"mac": mac_of(e), "user": f"u{e}", "sip_username": str(e), "sip_password": f"pw{e}"}
                        for e in exts]}
    st, data = api.call("POST", "/api/v1/import", body)
    if st != 201:
        raise SystemExit(f"import {first}..{first + count - 1}: {st} {data[:300]!r}")


def cmd_import(a):
    t0 = time.time()
    api = Api(a.name)
    for first in range(a.first, a.first + a.count, a.batch):
        import_batch(api, first, min(a.batch, a.first + a.count - first))
    dt = time.time() - t0
    print(f"imported {a.count} users + {a.count} devices in {dt:.1f} s ({a.count / max(1e-9, dt):.0f}/s)",
          file=sys.stderr)
    print(json.dumps({"users": a.count, "import_s": round(dt, 2)}))


def cmd_token(a):
    print(token(a.name))


def cmd_api(a):
    st, body = Api(a.name).call(a.method, a.path, json.loads(a.json) if a.json else None)
    print(st)
    print(body.decode(errors="replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    s = sp.add_parser("start")
    s.add_argument("name")
    s.add_argument("--sip-port", type=int, default=5080)
    s.add_argument("--admin-port", type=int, default=9081)
    s.add_argument("--set", action="append")
    s.add_argument("--bin", default=os.path.join(REPO, "target", "release", "deskline"))
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--fresh", action="store_true", help="delete the instance's data dir first")
    s.set_defaults(f=cmd_start)
    s = sp.add_parser("stop")
    s.add_argument("name")
    s.set_defaults(f=cmd_stop)
    s = sp.add_parser("users")
    s.add_argument("name")
    s.add_argument("--first", type=int, default=1000)
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--threads", type=int, default=24)
    s.set_defaults(f=cmd_users)
    s = sp.add_parser("import")
    s.add_argument("name")
    s.add_argument("--first", type=int, default=1000)
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--batch", type=int, default=5000)
    s.set_defaults(f=cmd_import)
    s = sp.add_parser("token")
    s.add_argument("name")
    s.set_defaults(f=cmd_token)
    s = sp.add_parser("api")
    s.add_argument("name")
    s.add_argument("method")
    s.add_argument("path")
    s.add_argument("json", nargs="?")
    s.set_defaults(f=cmd_api)
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
