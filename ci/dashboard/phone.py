#!/usr/bin/env python3
"""A tiny SIP phone over UDP for the dashboard test (standard library only).

    phone.py SERVER_HOST:PORT DOMAIN EXTENSION SIP_USERNAME SIP_PASSWORD [--expect CODE] [--stay SECS]

Sends REGISTER (Expires 300) to the server, answers the 401 challenge with a digest
(SHA-256 when offered, else MD5; qop=auth) and prints one JSON line with the final answer:
    {"event": "final", "code": 200, "reason": "OK", "contact": "sip:...", "algorithm": "SHA-256"}
Without --expect it must get 200; with --expect CODE it must get CODE (exit 1 otherwise).
After a 200 it stays up for --stay seconds (default 300) and answers every request the server
sends (NOTIFY, OPTIONS, ...) with 200 OK, printing a JSON line for each, until killed.
"""
import hashlib
import json
import os
import random
import re
import socket
import sys
import time


def out(**kw):
    print(json.dumps(kw), flush=True)


def fail(msg):
    out(event="error", message=msg)
    sys.exit(1)


def parse(data):
    text = data.decode("utf-8", "replace")
    head, _, _ = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
    return lines[0], headers


def header(headers, name):
    return [v for k, v in headers if k == name]


def digest_params(challenge):
    return {k.lower(): (v1 if v1 else v2) for k, v1, v2 in re.findall(r'(\w[\w-]*)\s*=\s*(?:"([^"]*)"|([^\s,]+))', challenge)}


def main():
    args = sys.argv[1:]
    expect, stay = 200, 300.0
    if "--expect" in args:
        i = args.index("--expect"); expect = int(args[i + 1]); del args[i:i + 2]
    if "--stay" in args:
        i = args.index("--stay"); stay = float(args[i + 1]); del args[i:i + 2]
    if len(args) != 5:
        fail(__doc__.strip().splitlines()[2].strip())
    server, domain, ext, user, password = args
    host, port = server.rsplit(":", 1)
    addr = (host, int(port))

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    lport = sock.getsockname()[1]
    contact = f"sip:{ext}@127.0.0.1:{lport}"
    call_id = f"{os.urandom(8).hex()}@127.0.0.1"
    from_tag = os.urandom(4).hex()
    uri = f"sip:{domain}"

    def register(cseq, auth=None):
        msg = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{os.urandom(6).hex()};rport",
            "Max-Forwards: 70",
            f"From: <sip:{ext}@{domain}>;tag={from_tag}",
            f"To: <sip:{ext}@{domain}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} REGISTER",
            f"Contact: <{contact}>",
            "Expires: 300",
            "User-Agent: deskline-ci-phone/1.0",
        ]
        if auth:
            msg.append(f"Authorization: {auth}")
        msg += ["Content-Length: 0", "", ""]
        sock.sendto("\r\n".join(msg).encode(), addr)

    def final_answer(cseq):
        deadline = time.time() + 10
        while time.time() < deadline:
            sock.settimeout(max(0.1, deadline - time.time()))
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                break
            start, headers = parse(data)
            if not start.startswith("SIP/2.0 "):
                continue  # a request from the server before our answer: ignored here
            if not any(c.split()[0] == str(cseq) for c in header(headers, "cseq")):
                continue
            parts = start.split(" ", 2)
            code = int(parts[1])
            if code < 200:
                continue
            return code, (parts[2] if len(parts) > 2 else ""), headers
        fail(f"no final answer to REGISTER (CSeq {cseq}) from {server} within 10 s")

    register(1)
    code, reason, headers = final_answer(1)
    algorithm = None
    if code == 401:
        challenges = [digest_params(c) for c in header(headers, "www-authenticate") if c.lower().startswith("digest")]
        by_algo = {c.get("algorithm", "MD5").upper(): c for c in challenges}
        for algorithm, h in (("SHA-256", hashlib.sha256), ("MD5", hashlib.md5)):
            if algorithm in by_algo:
                ch = by_algo[algorithm]
                break
        else:
            fail(f"no SHA-256 or MD5 digest challenge in the 401: {header(headers, 'www-authenticate')}")
        H = lambda s: h(s.encode()).hexdigest()
        realm, nonce = ch["realm"], ch["nonce"]
        cnonce, nc = os.urandom(8).hex(), "00000001"
        ha1 = H(f"{user}:{realm}:{password}")
        ha2 = H(f"REGISTER:{uri}")
        qop = "auth" if "auth" in [q.strip() for q in ch.get("qop", "").split(",")] else None
        if qop:
            response = H(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
        else:
            response = H(f"{ha1}:{nonce}:{ha2}")
        auth = (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'response="{response}", algorithm={algorithm}')
        if qop:
            auth += f', qop={qop}, nc={nc}, cnonce="{cnonce}"'
        if "opaque" in ch:
            auth += f', opaque="{ch["opaque"]}"'
        register(2, auth)
        code, reason, headers = final_answer(2)

    out(event="final", code=code, reason=reason, contact=contact, algorithm=algorithm)
    if code != expect:
        fail(f"REGISTER for {ext} (auth user {user}) got {code} {reason}, expected {expect}")
    if code != 200:
        return

    # Registered: answer whatever the server sends until killed or --stay runs out.
    deadline = time.time() + stay
    while time.time() < deadline:
        sock.settimeout(max(0.1, deadline - time.time()))
        try:
            data, src = sock.recvfrom(65535)
        except socket.timeout:
            break
        start, headers = parse(data)
        if start.startswith("SIP/2.0 "):
            continue
        method = start.split(" ", 1)[0]
        out(event="request", method=method, event_header=(header(headers, "event") or [None])[0])
        to = (header(headers, "to") or [""])[0]
        if ";tag=" not in to:
            to += f";tag={os.urandom(4).hex()}"
        resp = ["SIP/2.0 200 OK"]
        resp += [f"Via: {v}" for v in header(headers, "via")]
        resp += [f"From: {(header(headers, 'from') or [''])[0]}", f"To: {to}",
                 f"Call-ID: {(header(headers, 'call-id') or [''])[0]}", f"CSeq: {(header(headers, 'cseq') or [''])[0]}",
                 "Content-Length: 0", "", ""]
        sock.sendto("\r\n".join(resp).encode(), src)


if __name__ == "__main__":
    main()
