#!/usr/bin/env python3
"""A persistent password guesser (what svcrack would be if it did not stop at the first 503):
for SECONDS, REGISTER as USER with wrong passwords as fast as answers come, over UDP from
LOCAL_IP; a fresh 401 challenge before each guess. Counts answers: 403 = a guess that was checked,
503 = throttled (Retry-After noted). Prints the guess rate achieved. Loopback only.
   guess.py HOST PORT USER SECONDS [LOCAL_IP=127.0.0.3]"""
import hashlib, os, re, socket, sys, time
host, port, user, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
lip = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.3"
assert host.startswith("127."), "loopback only"
md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((lip, 0)); s.settimeout(2); s.connect((host, port))
lp = s.getsockname()[1]; dom = f"{host}:{port}"
def req(cseq, extra=""):
    return (f"REGISTER sip:{dom} SIP/2.0\r\nVia: SIP/2.0/UDP {lip}:{lp};branch=z9hG4bK{os.urandom(6).hex()};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:{user}@{dom}>;tag=g\r\nTo: <sip:{user}@{dom}>\r\nCall-ID: guess{cseq}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{user}@{lip}:{lp}>\r\n{extra}Content-Length: 0\r\n\r\n").encode()
codes = {}; retry = set(); n = 0; t0 = time.time()
while time.time() - t0 < secs:
    n += 1
    try:
        s.send(req(2 * n)); r = s.recv(65535).decode(errors="replace")
        code = int(r.split(" ", 2)[1])
        if code == 401:
            ch = re.search(r"^WWW-Authenticate:\s*Digest\s+(.*)$", r, re.M | re.I).group(1)
            p = dict((k.lower(), v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', ch))
            uri = f"sip:{dom}"; cn = os.urandom(4).hex()
            realm, nonce = p["realm"], p["nonce"]
            ha1 = md5(f"{user}:{realm}:wrong{n}"); ha2 = md5(f"REGISTER:{uri}")
            resp = md5(f"{ha1}:{nonce}:00000001:{cn}:auth:{ha2}")
            s.send(req(2 * n + 1, f'Authorization: Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
                                  f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cn}"\r\n'))
            r = s.recv(65535).decode(errors="replace"); code = int(r.split(" ", 2)[1])
        m = re.search(r"^Retry-After:\s*(\d+)", r, re.M | re.I)
        if m: retry.add(int(m.group(1)))
    except socket.timeout:
        code = "timeout"
    codes[code] = codes.get(code, 0) + 1
el = time.time() - t0
checked = codes.get(403, 0)
print(f"{n} attempts in {el:.1f} s: answers {codes}; Retry-After values seen: {sorted(retry)[:5]}{'...' if len(retry) > 5 else ''}")
print(f"RESULT checked={checked} rate_per_s={checked/el:.3f} rate_per_min={checked/el*60:.1f} throttled={codes.get(503,0)}")
