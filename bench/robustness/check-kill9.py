#!/usr/bin/env python3
"""Compares sipp's message log (-trace_msg) with GET /api/v1/registrations after a restart.
   check-kill9.py MESSAGES_LOG REGISTRATIONS_JSON T_KILL T_QUERY USERS"""
import datetime, json, re, sys

log, regs_path, t_kill, t_query, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
text = open(log, errors="replace").read()
# sipp: "----------------------------------------------- 2026-11-27\t03:40:01.123456\t1795750801.123456\n
#        UDP message received [N] bytes :\n\n<message>"
blocks = re.split(r"^-{20,} ", text, flags=re.M)
ok = {}            # user -> (granted, received_at, contact)
sent_auth = set()  # users that sent an authenticated REGISTER
sent_any = set()
for b in blocks:
    head, _, msg = b.partition("\n\n")
    ts = re.search(r"(\d{4}-\d\d-\d\d)[ \t]+(\d\d:\d\d:\d\d(?:\.\d+)?)", head.split("\n")[0])
    t = datetime.datetime.strptime(ts.group(1) + " " + ts.group(2), "%Y-%m-%d %H:%M:%S.%f").timestamp() if ts else None
    to = re.search(r"^To:\s*<sip:([^@>]+)@", msg, re.M | re.I)
    if not to:
        continue
    user = to.group(1)
    if "message sent" in head:
        sent_any.add(user)
        if re.search(r"^Authorization:", msg, re.M | re.I):
            sent_auth.add(user)
    elif "message received" in head and msg.startswith("SIP/2.0 200"):
        m = re.search(r"^Contact:.*?<([^>]+)>[^\r\n]*?;\s*expires=(\d+)", msg, re.M | re.I)
        if m:
            ok[user] = (int(m.group(2)), t, m.group(1))
        else:
            ok[user] = (None, t, None)

data = json.load(open(regs_path))
if isinstance(data, dict):
    data = next(v for v in data.values() if isinstance(v, list))
bound = {}
for r in data:
    u = re.match(r"sip:([^@]+)@", r["aor"]).group(1)
    bound.setdefault(u, []).append(r)

missing, wrong_exp, wrong_contact = [], [], []
for u, (granted, t, contact) in ok.items():
    rs = bound.get(u)
    if not rs:
        missing.append(u); continue
    r = rs[0]
    if granted is None or not (0 < r["expires_in"] <= granted):
        wrong_exp.append((u, r["expires_in"], granted))
    elif t is not None:
        # remaining life must not exceed what was left of the grant (+2 s rounding)
        left = granted - (t_query - t)
        if r["expires_in"] > left + 2:
            wrong_exp.append((u, r["expires_in"], round(left, 1)))
    if contact and contact.split(";")[0] not in r["contact"]:
        wrong_contact.append((u, r["contact"], contact))
extra = sorted(set(bound) - set(ok))
in_flight = [u for u in extra if u in sent_auth]      # committed, 200 lost with the process
invented = [u for u in extra if u not in sent_auth]

print(f"users: {n}; REGISTERs with credentials sent: {len(sent_auth)}; 200 OK received by sipp: {len(ok)}")
print(f"bindings after restart: {sum(len(v) for v in bound.values())} for {len(bound)} AORs")
print(f"  200 OK and binding back: {len(ok) - len(missing)}; 200 OK but binding MISSING: {len(missing)} {missing[:10]}")
print(f"  expiry not in (0, granted] or longer than the grant left: {len(wrong_exp)} {wrong_exp[:5]}")
print(f"  contact differs: {len(wrong_contact)} {wrong_contact[:3]}")
print(f"  binding without a 200 at sipp, authenticated REGISTER was in flight at the kill (allowed: committed, answer lost): {len(in_flight)}")
print(f"  binding for a user that never sent credentials (invented): {len(invented)} {invented[:10]}")
if ok:
    g = sorted(v[0] for v in ok.values() if v[0] is not None)
    print(f"  granted expires: min {g[0]} max {g[-1]}; 200 OKs timestamped: {sum(1 for v in ok.values() if v[1])}")
if len(ok) == 0:
    print("FAIL: no 200 OK before the kill: raise KILL_AFTER or lower RATE")
elif missing:
    print(f"FAIL: {len(missing)} of {len(ok)} bindings that got a 200 OK are missing after kill -9 + restart")
else:
    print(f"PASS: all {len(ok)} bindings that got a 200 OK are back after kill -9 + restart")
print(("FAIL" if wrong_exp or wrong_contact else "PASS") + f": expiries/contacts of restored bindings ({len(wrong_exp)} bad expiries, {len(wrong_contact)} bad contacts)")
print(("FAIL" if invented else "PASS") + f": no invented bindings ({len(invented)} for users that never sent credentials; {len(in_flight)} in-flight commits)")
if len(ok) >= n:
    print("FAIL: every user registered before the kill: the kill was not mid-run (lower KILL_AFTER)")
