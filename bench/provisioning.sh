#!/bin/bash
# Provisioning: config fetches over HTTPS keep-alive with a client certificate, deskline vs nginx
# (Debian's) serving the same bytes as a static file over TLS with the same client-certificate
# check. Bar: deskline >= 0.5 x nginx.
#
#   bench/provisioning.sh     (env: CONNS=32 DURATION=10 REPS=3 THREADS=1 PPORT=8443 NPORT=8444
#                              OUT=result.json)
#
# 1. `deskline certs init` makes a server CA + server certificate, a device CA and a client
#    certificate for MAC 805ec0a1b2c3; a fresh deskline instance "prov" serves provisioning on
#    127.0.0.1:PPORT with [tls] device_ca = that device CA and the repo's provisioning-templates;
#    user prov2000 (extension 2000) gets the device (vendor yealink, model T46U);
# 2. one curl fetch of /805ec0a1b2c3.cfg (Yealink UA, client cert) saves the exact bytes; nginx
#    (worker_processes auto, TLS 1.2/1.3, ssl_verify_client on with the same device CA, same
#    server certificate, access_log off) serves that file on 127.0.0.1:NPORT;
# 3. bench/provload (Rust, rustls; built here) opens CONNS keep-alive connections, each with the
#    client certificate, and GETs the file back to back for DURATION s; REPS runs each,
#    interleaved. Server CPU (utime+stime of the process tree from /proc) gives requests per
#    server CPU-second too, since the load generator shares the 2 cores.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CONNS="${CONNS:-32}"; DURATION="${DURATION:-10}"; REPS="${REPS:-3}"; THREADS="${THREADS:-1}"
PPORT="${PPORT:-8443}"; NPORT="${NPORT:-8444}"; SPORT="${SPORT:-5086}"; ADMIN="${ADMIN:-9087}"
OUT="${OUT:-/tmp/regbench/provisioning.json}"
MAC=805ec0a1b2c3
UA="Yealink SIP-T46U 108.86.0.45 80:5e:c0:a1:b2:c3"
ST=/tmp/regbench/prov
CERTS="$ST/certs"
mkdir -p "$ST"
NGINX_PID=""
cleanup() {
  python3 "$HERE/lib/deskline.py" stop prov 2>/dev/null || true
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then kill -QUIT "$NGINX_PID"; sleep 0.5; kill -KILL "$NGINX_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

command -v nginx >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null; }
PROVLOAD="$REPO/target/provload/release/provload"
if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -x "$PROVLOAD" ]; then
  (cd "$REPO" && cargo build --release -q --manifest-path bench/provload/Cargo.toml --target-dir target/provload) >&2
fi

# 1. certificates, deskline, user and device
"$REPO/target/release/deskline" certs init "$CERTS" --device "$MAC" >/dev/null
python3 "$HERE/lib/deskline.py" stop prov 2>/dev/null || true
DPID="$(python3 "$HERE/lib/deskline.py" start prov --fresh --sip-port "$SPORT" --admin-port "$ADMIN" \
  --set "tls.cert=\"$CERTS/server.pem\"" --set "tls.key=\"$CERTS/server.key\"" \
  --set "tls.device_ca=[\"$CERTS/device-ca.pem\"]" \
  --set "provisioning.https=[\"127.0.0.1:$PPORT\"]" \
  --set "provisioning.templates=\"$REPO/provisioning-templates\"")"
python3 "$HERE/lib/deskline.py" api prov POST /api/v1/users '{"username":"prov2000","display_name":"Provisioning bench","extension":"2000"}' >/dev/null
python3 "$HERE/lib/deskline.py" api prov POST /api/v1/devices "{\"mac\":\"$MAC\",\"user\":\"prov2000\",\"vendor\":\"yealink\",\"model\":\"T46U\"}" >/dev/null

# 2. the exact bytes, and nginx serving them
CODE="$(curl -sS -o "$ST/$MAC.cfg" -w '%{http_code}' --cacert "$CERTS/ca.pem" --cert "$CERTS/devices/$MAC.pem" \
  --key "$CERTS/devices/$MAC.key" -A "$UA" "https://127.0.0.1:$PPORT/$MAC.cfg")"
[ "$CODE" = 200 ] || { echo "deskline answered $CODE to the config fetch:" >&2; cat "$ST/$MAC.cfg" >&2; exit 1; }
BYTES="$(stat -c %s "$ST/$MAC.cfg")"
chmod 644 "$ST/$MAC.cfg"; chmod 755 "$ST"
mkdir -p "$ST/nginx"
cat >"$ST/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $ST/nginx/nginx.pid;
error_log $ST/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_timeout 75s;
  keepalive_requests 10000000;
  default_type text/plain;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $CERTS/server.pem;
    ssl_certificate_key $CERTS/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate $CERTS/device-ca.pem;
    ssl_verify_client on;
    location = /$MAC.cfg { alias $ST/$MAC.cfg; }
  }
}
EOF
nginx -c "$ST/nginx/nginx.conf" -g 'daemon off;' </dev/null >"$ST/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
sleep 1
kill -0 "$NGINX_PID" || { cat "$ST/nginx/error.log" "$ST/nginx/stdout.log" >&2; exit 1; }
cmp -s <(curl -sS --cacert "$CERTS/ca.pem" --cert "$CERTS/devices/$MAC.pem" --key "$CERTS/devices/$MAC.key" \
  -A "$UA" "https://127.0.0.1:$NPORT/$MAC.cfg") "$ST/$MAC.cfg" || { echo "nginx does not serve the same bytes" >&2; exit 1; }

# 3. interleaved runs
python3 - "$PROVLOAD" "$DPID" "$NGINX_PID" "$PPORT" "$NPORT" "$CERTS" "$MAC" "$UA" "$CONNS" "$DURATION" "$REPS" "$THREADS" "$BYTES" "$OUT" <<'PY'
import json, os, statistics, subprocess, sys, time
prov, dpid, npid, pport, nport, certs, mac, ua, conns, dur, reps, threads, nbytes, out = sys.argv[1:]
CLK = os.sysconf("SC_CLK_TCK")
def tree_cpu(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            kids.setdefault(int(s[s.rindex(")") + 2:].split()[1]), []).append(int(d))
    tot, todo = 0, [int(root)]
    while todo:
        p = todo.pop(); todo += kids.get(p, [])
        try:
            f = open(f"/proc/{p}/stat").read(); f = f[f.rindex(")") + 2:].split()
            tot += int(f[11]) + int(f[12])
        except OSError:
            pass
    return tot / CLK
runs = {"deskline": [], "nginx": []}
for rep in range(int(reps)):
    for name, pid, port in (("deskline", dpid, pport), ("nginx", npid, nport)):
        c0 = tree_cpu(pid); t0 = time.time()
        p = subprocess.run([prov, "--url", f"https://127.0.0.1:{port}/{mac}.cfg", "--ca", f"{certs}/ca.pem",
                            "--cert", f"{certs}/devices/{mac}.pem", "--key", f"{certs}/devices/{mac}.key",
                            "--connections", conns, "--duration", dur, "--warmup", "2", "--threads", threads,
                            "--ua", ua], capture_output=True, text=True)
        c1 = tree_cpu(pid); wall = time.time() - t0
        try:
            r = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            sys.exit(f"provload failed against {name}: {p.stdout[-500:]} {p.stderr[-1000:]}")
        # server CPU over the whole run (warm-up included) -> scale requests by the same window
        r["server_cpu_pct"] = round(100 * (c1 - c0) / wall, 1)
        r["req_per_server_cpu_s"] = round(r["rate"] / max(1e-9, (c1 - c0) / wall), 0)
        runs[name].append(r)
        print(f"[{time.strftime('%H:%M:%S')}] {name:8s} rep {rep + 1}: {r['rate']:.0f} req/s ok {r['ok']} other {r['other_status']}"
              f" errors {r['errors']} p50 {r['latency_ms']['p50']} ms p99 {r['latency_ms']['p99']} ms; server CPU "
              f"{r['server_cpu_pct']}%, {r['req_per_server_cpu_s']:.0f} req/server-CPU-s; client CPU {r['client_cpu_s']} s",
              file=sys.stderr, flush=True)
        time.sleep(1)
med = lambda xs: statistics.median(xs)
res = {"body_bytes": int(nbytes), "connections": int(conns), "duration_s": float(dur), "reps": int(reps),
       "client_threads": int(threads)}
for n, rs in runs.items():
    res[n] = {"rate": med([r["rate"] for r in rs]), "rates": [round(r["rate"]) for r in rs],
              "req_per_server_cpu_s": med([r["req_per_server_cpu_s"] for r in rs]),
              "server_cpu_pct": med([r["server_cpu_pct"] for r in rs]),
              "p50_ms": med([r["latency_ms"]["p50"] for r in rs]), "p99_ms": med([r["latency_ms"]["p99"] for r in rs]),
              "non_200": sum(r["other_status"] for r in rs), "errors": sum(r["errors"] for r in rs)}
res["ratio"] = round(res["deskline"]["rate"] / max(1e-9, res["nginx"]["rate"]), 3)
res["cpu_ratio"] = round(res["deskline"]["req_per_server_cpu_s"] / max(1e-9, res["nginx"]["req_per_server_cpu_s"]), 3)
with open(out, "w") as f:
    json.dump(res, f, indent=1)
print(json.dumps(res))
PY
