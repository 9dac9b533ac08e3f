#!/usr/bin/env python3
"""10,000 (or COUNT) guessed MACs fetched from deskline's HTTPS provisioning without proof, over one
keep-alive TLS connection (reconnecting if the server closes it), vendor file names rotating
(<mac>.cfg, <mac>.boot, <MAC>-deskline.cfg, <mac>.xml, spa<mac>.xml, cfg<mac>.xml). The devices
00a0c9<n hex> for n = 1000..1019 exist. Checks: no 200/304, identical status/body/header shape for
known and unknown MACs (nonces aside), no secret in any body. Loopback only.
   macscan.py HOST:PORT [COUNT=10000]"""
import hashlib, http.client, random, re, ssl, sys, time

hp, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000
host, port = hp.rsplit(":", 1)
assert host.startswith("127."), "loopback only"
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
known = ["00a0c9%06x" % n for n in range(1000, 1020)]
rnd = random.Random(7)
macs = []
for i in range(count):
    if i % 500 < 20:
        macs.append((known[i % 500], True))
    else:
        macs.append((rnd.choice(["00a0c9", "805ec0", "0004f2", "000b82", "000413", "00562b"]) + "%06x" % rnd.randrange(1 << 24), False))
forms = [lambda m: f"/{m}.cfg", lambda m: f"/{m}.boot", lambda m: f"/{m.upper()}-deskline.cfg",
         lambda m: f"/{m}.xml", lambda m: f"/spa{m}.xml", lambda m: f"/cfg{m}.xml"]
conn = None; reconnects = 0
shapes = {}; statuses = {}; bodies = {}; secret_hits = 0; served = 0
t0 = time.time()
for i, (mac, is_known) in enumerate(macs):
    path = forms[i % len(forms)](mac)
    for attempt in range(3):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10); reconnects += 1
            conn.request("GET", path, headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15"})
            r = conn.getresponse(); body = r.read()
            break
        except Exception:
            conn = None
    else:
        print(f"FAIL: request for {path} failed 3 times"); sys.exit(1)
    if r.getheader("connection", "").lower() == "close":
        conn.close(); conn = None
    st = r.status
    statuses[st] = statuses.get(st, 0) + 1
    if st in (200, 304): served += 1
    if re.search(rb"pw10\d\d|sip_password|secret", body, re.I): secret_hits += 1
    hdrs = tuple(sorted((k.lower(), re.sub(r'(nonce|opaque)="[^"]*"', r'\1=""', v) if k.lower() == "www-authenticate" else
                         ("<date>" if k.lower() == "date" else v)) for k, v in r.getheaders()))
    key = (st, hashlib.sha256(body).hexdigest()[:16], hash(hdrs))
    shapes.setdefault(key, [0, 0])[0 if is_known else 1] += 1
    bodies[key] = body[:80]
el = time.time() - t0
print(f"{count} GETs in {el:.1f} s ({count/el:.0f}/s) over {reconnects} TLS connection(s); statuses {statuses}")
for k, (kn, un) in shapes.items():
    print(f"  answer shape status={k[0]} body={k[1]} (\"{bodies[k].decode(errors='replace').strip()}\"): known MACs {kn}, unknown MACs {un}")
print(("PASS" if served == 0 else "FAIL") + f": {served} configs served to {count} guessed MACs without proof")
print(("PASS" if secret_hits == 0 else "FAIL") + f": {secret_hits} answers contain a secret")
print(("PASS" if len(shapes) == 1 else "FAIL") + f": {len(shapes)} distinct answer(s) (status, body, headers without nonce/date) for known and unknown MACs")
