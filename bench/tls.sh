#!/bin/bash
# REGISTER with digest auth over TLS, 10,000 phones each on its own connection: deskline vs
# Kamailio 5.6 side by side (bar in ../../shared/spec/quality.md: deskline >= 1.5 x Kamailio).
#
#   bench/tls.sh
#
# 1. builds bench/sipload (simulated phones over TLS; Debian's sipp has no TLS) into
#    target/sipload, unless SKIP_BUILD=1 (then it must exist); installs kamailio-tls-modules if
#    missing (unless SKIP_INSTALL=1);
# 2. generates USERS users (1000.. with password pw<user>, sipp/gen-users.sh), starts Kamailio
#    (kamailio/start.sh --tls: TLS on KTLS, 1 TCP/TLS worker, see below; cert from its own openssl
#    CA) and deskline (lib/deskline.py start tls: TLS on DTLS with its development certificate,
#    durable store on) with the same users created through its admin API;
# 3. lib/tlsbench.py: one sipload per server opens CONNECTIONS TLS connections (certificates
#    verified against each server's CA) and keeps them; coarse sweep, bisection, 3 runs at the top,
#    then latency runs at half capacity, interleaved; capacity, REGISTERs per server CPU-second
#    (all of Kamailio's processes summed), client-side p50/p99 per transaction;
# 4. writes bench/results/<UTC stamp>-tls.md (+ .json, .runs.jsonl) and prints it.
#
# Kamailio 5.6.3 (Debian) with OpenSSL 3 crashes (SIGSEGV/SIGABRT in its OpenSSL allocator
# wrappers, Kamailio issues #3635, #3791) as soon as two TCP workers do TLS handshakes at once,
# with every rand_engine; with ONE TCP worker (KTCP_CHILDREN=1, the default here) it is stable.
# Its capacity is then bounded by one worker process (plus tcp_main); REGISTERs per CPU-second is
# the fairer comparison. KTCP_CHILDREN=2 reproduces the crash.
#
# Environment: USERS=10000 CONNECTIONS=10000 TLS_RATES="1000 2000 3000 4000 6000 8000 10000 12000 14000 16000 18000 20000"
#   COARSE_DURATION=8 FINAL_DURATION=15 REPS=3 LAT_DURATION=10 LAT_REPS=3 RAMP_CONCURRENCY=64
#   SIPLOAD_THREADS=2 KTCP_CHILDREN=1 KPORT=5170 KTLS=5171 DPORT=5180 DTLS=5181 DADMIN=9185
#   NOISE_RETRIES=2 (a run disturbed by other processes is repeated, see lib/tlsbench.py)
#   SKIP_BUILD=1 SKIP_INSTALL=1 SKIP_USERS=1 (deskline instance "tls" kept from a previous run)
#   OUT=path.json (also write the JSON there; bench/run.sh uses it)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CMDLINE="bench/tls.sh"
for v in USERS CONNECTIONS TLS_RATES COARSE_DURATION FINAL_DURATION REPS LAT_DURATION LAT_REPS KTCP_CHILDREN; do
  [ -n "${!v:-}" ] && CMDLINE="$v=\"${!v}\" $CMDLINE"
done
export USERS="${USERS:-10000}"
export CONNECTIONS="${CONNECTIONS:-$USERS}"
# calls/s of the coarse sweep (not RATES: bench/run.sh's UDP sweep goes much higher)
export RATES="${TLS_RATES:-1000 2000 3000 4000 6000 8000 10000 12000 14000 16000 18000 20000}"
KPORT="${KPORT:-5170}"; KTLS="${KTLS:-5171}"; DPORT="${DPORT:-5180}"; DTLS="${DTLS:-5181}"; DADMIN="${DADMIN:-9185}"
KTCP_CHILDREN="${KTCP_CHILDREN:-1}"
STAMP="$(date -u +%Y-%m-%dT%H%MZ)"
WORK="/tmp/regbench/tls-$STAMP"
mkdir -p "$WORK" "$HERE/results"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
# 10,000 connections per process: the container's hard limit is 20,000 open files (not raisable);
# the servers and each sipload are separate processes, each with its own limit
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((CONNECTIONS + 500)) ] || log "warning: open-file limit $(ulimit -n) < $CONNECTIONS connections"

cleanup() {
  "$HERE/kamailio/stop.sh" --port "$KPORT" 2>/dev/null || true
  python3 "$HERE/lib/deskline.py" stop tls 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  need=()
  command -v kamailio >/dev/null || need+=(kamailio kamailio-extra-modules)
  [ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need+=(kamailio-tls-modules)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${need[@]}" >/dev/null
  fi
fi
SIPLOAD="$REPO/target/sipload/release/sipload"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building bench/sipload"
  (cd "$REPO" && cargo build --release -q --manifest-path bench/sipload/Cargo.toml --target-dir target/sipload) >&2
  [ -x "$REPO/target/release/deskline" ] || (cd "$REPO" && cargo build --release --bin deskline 2>&1 | tail -2) >&2
fi
[ -x "$SIPLOAD" ] || { echo "no $SIPLOAD (build it: cargo build --release --manifest-path bench/sipload/Cargo.toml --target-dir target/sipload)" >&2; exit 1; }
[ -x "$REPO/target/release/deskline" ] || { echo "no $REPO/target/release/deskline" >&2; exit 1; }

"$HERE/kamailio/stop.sh" --port "$KPORT" 2>/dev/null || true
python3 "$HERE/lib/deskline.py" stop tls 2>/dev/null || true
"$HERE/sipp/gen-users.sh" "$USERS" >/dev/null
KPID="$("$HERE/kamailio/start.sh" --port "$KPORT" --users "$USERS" --tls "$KTLS" --max-conns $((CONNECTIONS + 2000)) \
  --tcp-children "$KTCP_CHILDREN")"
FRESH=(--fresh)
[ "${SKIP_USERS:-0}" = 1 ] && FRESH=()
DPID="$(python3 "$HERE/lib/deskline.py" start tls "${FRESH[@]}" --sip-port "$DPORT" --admin-port "$DADMIN" \
  --set "sip.tls=[\"127.0.0.1:$DTLS\"]")"
if [ "${SKIP_USERS:-0}" != 1 ]; then
  log "creating $USERS users in deskline"
  python3 "$HERE/lib/deskline.py" users tls --count "$USERS" >"$WORK/users.json"
fi
log "TLS sweep (kamailio pid $KPID on $KTLS, deskline pid $DPID on $DTLS, $CONNECTIONS connections each)"
python3 "$HERE/lib/tlsbench.py" --sipload "$SIPLOAD" \
  --server "kamailio:$KTLS:$KPID:/tmp/regbench/kamailio-tls/ca.pem" \
  --server "deskline:$DTLS:$DPID:/tmp/regbench/deskline-tls/certs/ca.pem" \
  --out "$WORK/tls.json" --md "$WORK/tls.md" --cmd "$CMDLINE" >/dev/null
cp /tmp/regbench/deskline-tls/config.toml "$WORK/deskline-config.toml"
REPORT="$HERE/results/$STAMP-tls.md"
cp "$WORK/tls.md" "$REPORT"
cp "$WORK/tls.json" "$HERE/results/$STAMP-tls.json"
cp "$WORK/tls.json.runs.jsonl" "$HERE/results/$STAMP-tls.json.runs.jsonl"
[ -n "${OUT:-}" ] && cp "$WORK/tls.json" "$OUT"
cat "$REPORT"
log "written $REPORT"
