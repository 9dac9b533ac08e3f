#!/usr/bin/env python3
"""A minimal SIP phone for latency: COUNT registrations of users FIRST.. (password pw<user>), each
REGISTER -> 401 -> REGISTER with MD5 digest (qop=auth) -> 200, one after the other; over UDP, or
TCP with a new connection per phone (connect time included). Prints p50/p90/p99/max of the whole
exchange and of the authenticated transaction alone, in ms. Loopback only.
   regclient.py HOST PORT FIRST COUNT [udp|tcp] [LOCAL_IP=127.0.0.1]"""
import hashlib, os, re, socket, sys, time

host, port, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
proto = sys.argv[5] if len(sys.argv) > 5 else "udp"
lip = sys.argv[6] if len(sys.argv) > 6 else "127.0.0.1"
assert host.startswith("127.") or host == "localhost", "loopback only"
md5 = lambda s: hashlib.md5(s.encode()).hexdigest()

class Conn:
    def __init__(self):
        if proto == "udp":
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); self.s.bind((lip, 0))
            self.s.connect((host, port))
        else:
            self.s = socket.create_connection((host, port), timeout=5, source_address=(lip, 0))
            self.buf = b""
        self.s.settimeout(5)
        self.lport = self.s.getsockname()[1]
    def send(self, m): self.s.send(m.encode())
    def recv(self):
        if proto == "udp":
            return self.s.recv(65535).decode(errors="replace")
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                cl = int((re.search(rb"\r\nContent-Length:\s*(\d+)", self.buf[:i], re.I) or [0, b"0"])[1])
                if len(self.buf) >= i + 4 + cl:
                    m, self.buf = self.buf[:i + 4 + cl], self.buf[i + 4 + cl:]
                    return m.decode(errors="replace")
            d = self.s.recv(65535)
            if not d: raise ConnectionError("closed")
            self.buf += d

def register(user):
    t0 = time.perf_counter()
    c = Conn()
    tr = proto.upper(); cid = os.urandom(8).hex(); tag = os.urandom(4).hex()
    dom = f"{host}:{port}"
    def req(cseq, extra=""):
        return (f"REGISTER sip:{dom} SIP/2.0\r\nVia: SIP/2.0/{tr} {lip}:{c.lport};branch=z9hG4bK{os.urandom(6).hex()};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{user}@{dom}>;tag={tag}\r\nTo: <sip:{user}@{dom}>\r\nCall-ID: {cid}\r\n"
                f"CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{lip}:{c.lport};transport={proto}>\r\n{extra}Expires: 600\r\n"
                f"User-Agent: regclient\r\nContent-Length: 0\r\n\r\n")
    c.send(req(1)); r = c.recv()
    code = int(r.split(" ", 2)[1])
    if code != 401: return None, None, code
    ch = re.search(r"^WWW-Authenticate:\s*Digest\s+(.*)$", r, re.M | re.I).group(1)
    p = dict((k.lower(), v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', ch))
    cn = os.urandom(4).hex(); uri = f"sip:{dom}"; pw = f"pw{user}"
    ha1 = md5(f"{user}:{p['realm']}:{pw}"); ha2 = md5(f"REGISTER:{uri}")
    resp = md5(f"{ha1}:{p['nonce']}:00000001:{cn}:auth:{ha2}")
    auth = (f'Authorization: Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cn}"'
            + (f', opaque="{p["opaque"]}"' if "opaque" in p else "") + "\r\n")
    t1 = time.perf_counter()
    c.send(req(2, auth)); r = c.recv()
    t2 = time.perf_counter()
    code = int(r.split(" ", 2)[1])
    c.s.close()
    return (t2 - t0) * 1000, (t2 - t1) * 1000, code

full, authed, codes = [], [], {}
for i in range(count):
    try:
        a, b, code = register(first + i)
    except Exception as e:
        code = type(e).__name__
        a = b = None
    codes[code] = codes.get(code, 0) + 1
    if code == 200:
        full.append(a); authed.append(b)
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))] if v else float("nan")
print(f"{proto}: {count} registrations, answers {codes}")
for name, v in (("whole exchange (connect+401+200)", full), ("authenticated REGISTER -> 200", authed)):
    print(f"  {name}: p50 {pct(v,50):.3f} ms  p90 {pct(v,90):.3f} ms  p99 {pct(v,99):.3f} ms  max {max(v) if v else float('nan'):.3f} ms")
print(f"RESULT ok={codes.get(200,0)} p50={pct(full,50):.3f} p99={pct(full,99):.3f} auth_p99={pct(authed,99):.3f}")
