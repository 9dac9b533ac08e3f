#!/bin/bash
# deskline vs Kamailio 5.6, side by side in one sitting, every figure beside its bar
# (../../shared/spec/quality.md).  One command:
#
#   bench/run.sh
#
# What it does (all on loopback; state and logs under /tmp/regbench):
#   1. installs what is missing (Debian: kamailio, sip-tester = sipp, tshark/dumpcap, nginx-light,
#      procps; the setup.sh of the shared harness minus the interop clients) and builds deskline
#      (cargo build --release) and the provisioning load generator (bench/provload);
#   2. generates USERS users (1000.. with password pw<user>), starts Kamailio (bench/kamailio, 2 UDP
#      workers, in-memory usrloc, MD5 qop=auth) on 5070 and deskline (durable store on) on 5080
#      with the same users created through its admin API;
#   3. REGISTER with digest auth over UDP, same sipp scenario (sipp/register_auth.xml) for both,
#      interleaved: coarse rate sweep, then REPS runs at the top -> capacity, REGISTERs per server
#      CPU-second; then REPS runs at half of each one's capacity with PCAP=1 -> p50/p99 latency
#      (lib/capacity.py);
#   4. memory per binding at MEM_BINDINGS bindings for both (measure-memory.sh);
#   5. deactivate a user with 20 phones (deactivate.sh) and config fetches over HTTPS keep-alive
#      with client certificates vs nginx serving the same bytes (provisioning.sh);
#   6. REGISTER with digest auth over TLS, 10,000 phones each on its own connection (tls.sh:
#      bench/sipload against Kamailio with tls.so and deskline);
#   7. writes bench/results/<date>.md (and .json) and prints it.
#
# Environment: USERS=10000 MEM_BINDINGS=100000 RATES="4000 8000 ... 28000" COARSE_DURATION=8
#   FINAL_DURATION=20 REPS=3 LAT_DURATION=10 SKIP_INSTALL=1 SKIP_BUILD=1 SKIP_CAPACITY=1
#   SKIP_MEMORY=1 SKIP_DEACTIVATE=1 SKIP_PROVISIONING=1 SKIP_TLS=1 KPORT=5070 DPORT=5080 DADMIN=9081
#   BINDINGS_FSYNC=1 (fsync every binding commit too; see below)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CMDLINE="bench/run.sh${*:+ $*}"
for v in SIPP_NICE SIPP_PROCS SIPP_BUFF BINDINGS_FSYNC USERS MEM_BINDINGS RATES COARSE_DURATION FINAL_DURATION REPS LAT_DURATION SKIP_CAPACITY SKIP_MEMORY SKIP_DEACTIVATE SKIP_PROVISIONING SKIP_TLS; do
  [ -n "${!v:-}" ] && CMDLINE="$v=\"${!v}\" $CMDLINE"
done
export USERS="${USERS:-10000}"
MEM_BINDINGS="${MEM_BINDINGS:-100000}"
KPORT="${KPORT:-5070}"; DPORT="${DPORT:-5080}"; DADMIN="${DADMIN:-9081}"
# BINDINGS_FSYNC=1: [store] bindings_fsync = true (binding commits fsync'd too, synchronous=FULL);
# default: the server's default (binding commits synchronous=NORMAL in WAL: durable across a crash
# of deskline, not across a power loss; directory changes always FULL)
export BINDINGS_FSYNC="${BINDINGS_FSYNC:-0}"
DL_SET=()
[ "$BINDINGS_FSYNC" = 1 ] && DL_SET=(--set store.bindings_fsync=true)
STAMP="$(date -u +%Y-%m-%dT%H%MZ)"
WORK="/tmp/regbench/run-$STAMP"
mkdir -p "$WORK" "$HERE/results"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

cleanup() {
  "$HERE/kamailio/stop.sh" --port "$KPORT" 2>/dev/null || true
  python3 "$HERE/lib/deskline.py" stop reg 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. tools and builds
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  need=()
  command -v kamailio >/dev/null || need+=(kamailio kamailio-extra-modules)
  command -v sipp >/dev/null || need+=(sip-tester)
  command -v dumpcap >/dev/null || need+=(tshark)
  command -v nginx >/dev/null || need+=(nginx-light)
  command -v pgrep >/dev/null || need+=(procps)
  command -v openssl >/dev/null || need+=(openssl)
  [ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need+=(kamailio-tls-modules)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q >/dev/null
    apt-get install -y -q "${need[@]}" >/dev/null
  fi
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release (deskline)"
  (cd "$REPO" && cargo build --release --bin deskline 2>&1 | tail -2) >&2
fi
[ -x "$REPO/target/release/deskline" ] || { echo "no $REPO/target/release/deskline" >&2; exit 1; }

# ---- 2-3. capacity + latency, side by side
if [ "${SKIP_CAPACITY:-0}" != 1 ]; then
  "$HERE/kamailio/stop.sh" --port "$KPORT" 2>/dev/null || true
  python3 "$HERE/lib/deskline.py" stop reg 2>/dev/null || true
  "$HERE/sipp/gen-users.sh" "$USERS" >/dev/null
  KPID="$("$HERE/kamailio/start.sh" --port "$KPORT" --users "$USERS")"
  DPID="$(python3 "$HERE/lib/deskline.py" start reg --fresh --sip-port "$DPORT" --admin-port "$DADMIN" "${DL_SET[@]}")"
  log "creating $USERS users in deskline"
  python3 "$HERE/lib/deskline.py" users reg --count "$USERS" >"$WORK/users.json"
  log "capacity sweep + latency (kamailio pid $KPID, deskline pid $DPID)"
  python3 "$HERE/lib/capacity.py" --server "kamailio:$KPORT:$KPID" --server "deskline:$DPORT:$DPID" \
    --out "$WORK/capacity.json" >/dev/null
  cp /tmp/regbench/deskline-reg/config.toml "$WORK/deskline-config.toml"
  cleanup
fi

# ---- 4. memory per binding
if [ "${SKIP_MEMORY:-0}" != 1 ]; then
  log "memory per binding at $MEM_BINDINGS bindings"
  OUT="$WORK/memory.jsonl" "$HERE/measure-memory.sh" both "$MEM_BINDINGS" >/dev/null
fi

# ---- 5. deactivate and provisioning
if [ "${SKIP_DEACTIVATE:-0}" != 1 ]; then
  log "deactivate a user with 20 phones"
  OUT="$WORK/deactivate.json" "$HERE/deactivate.sh" >/dev/null || log "deactivate bench failed"
fi
if [ "${SKIP_PROVISIONING:-0}" != 1 ]; then
  log "provisioning fetch rate vs nginx"
  OUT="$WORK/provisioning.json" "$HERE/provisioning.sh" >/dev/null || log "provisioning bench failed"
fi

if [ "${SKIP_TLS:-0}" != 1 ]; then
  log "REGISTER over TLS, $USERS phones each on its own connection"
  OUT="$WORK/tls.json" SKIP_INSTALL=1 SKIP_BUILD="${SKIP_BUILD:-0}" "$HERE/tls.sh" >/dev/null || log "TLS bench failed"
fi

# ---- 6. report
REPORT="$HERE/results/$STAMP.md"
python3 "$HERE/lib/report.py" --dir "$WORK" --cmd "$CMDLINE" >"$REPORT"
for f in "$WORK"/*.json "$WORK"/*.jsonl; do [ -f "$f" ] && cp "$f" "$HERE/results/$STAMP-$(basename "$f")"; done
cat "$REPORT"
log "written $REPORT"
