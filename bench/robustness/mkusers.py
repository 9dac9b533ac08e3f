#!/usr/bin/env python3
"""Creates N users u<n> (no password) and N devices (MAC 00a0c9<n hex>, SIP user <n>, password pw<n>)
through deskline's admin API, 16 keep-alive connections in parallel. Loopback only.
   mkusers.py ADMIN_URL TOKEN N [FIRST=1000]"""
import http.client, json, sys, threading, time, urllib.parse

url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
u = urllib.parse.urlparse(url)
assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
todo = list(range(first, first + n))
lock = threading.Lock()
errors = []

def worker():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    while True:
        with lock:
            if not todo:
                return
            i = todo.pop()
        for path, body in (("/api/v1/users", {"username": f"u{i}", "display_name": f"User {i}", "extension": str(i)}),
                           ("/api/v1/devices", {"mac": "00a0c9%06x" % i, "user": f"u{i}", "extension": str(i),
                                                "sip_username": str(i), "sip_password": f"pw{i}"})):
            for attempt in range(3):
                try:
                    c.request("POST", path, json.dumps(body), h)
                    r = c.getresponse(); data = r.read()
                    if r.status not in (201, 409):
                        errors.append(f"{path} {i}: {r.status} {data[:100]!r}")
                    break
                except Exception as e:  # reconnect once
                    c.close(); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                    if attempt == 2:
                        errors.append(f"{path} {i}: {e}")

t0 = time.time()
ts = [threading.Thread(target=worker) for _ in range(16)]
for t in ts: t.start()
for t in ts: t.join()
print(f"created {n} users + {n} devices ({first}..{first+n-1}) in {time.time()-t0:.1f} s, {len(errors)} errors")
for e in errors[:5]: print("  ", e)
sys.exit(1 if errors else 0)
