#!/usr/bin/env bash
# 50,000 idle TCP connections (plus some TLS) held open against deskline's SIP listeners; a new
# phone must still register within the p99 bar (< 2 ms for REGISTER at half capacity).
#
#   bench/robustness/idle-connections.sh [N_TCP=50000] [N_TLS=2000] [HOLD=60 s] [REGS=100]
#
# Raises `ulimit -n` to 120000 for deskline and the holder (holdconns.py, python asyncio; source
# addresses 127.0.0.2-5 so ephemeral ports do not run out), waits until all are open, then times
# REGS registrations over UDP and REGS over TCP (new connection per phone) with regclient.py
# (REGISTER -> 401 -> REGISTER with MD5 digest -> 200), reads deskline_open_connections and the
# server's RSS, holds for HOST seconds and checks that none were closed by the server.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need curl python3
NTCP="${1:-50000}"; NTLS="${2:-2000}"; HOLD="${3:-60}"; REGS="${4:-100}"
SIP_PORT="${SIP_PORT:-15090}"; ADMIN_PORT="${ADMIN_PORT:-19100}"
CAPPED=""
if ! ulimit -n 120000 2>/dev/null; then
  HARD=$(ulimit -Hn); ulimit -n "$HARD"
  if [ $((NTCP + NTLS)) -gt $((HARD - 1000)) ]; then
    CAPPED="the hard open-files limit here is $HARD (ulimit -n 120000 refused: no CAP_SYS_RESOURCE), so deskline can hold at most ~$((HARD - 1000)): asked $NTCP TCP + $NTLS TLS"
    NTLS=$(( NTLS * (HARD - 1000) / (NTCP + NTLS) )); NTCP=$(( HARD - 1000 - NTLS ))
    echo "WARNING: $CAPPED; running with $NTCP TCP + $NTLS TLS" >&2
  fi
fi
WORK="$(mktemp -d /tmp/deskline-idle.XXXXXX)"
HOLDER=""
trap '[ -n "$HOLDER" ] && kill $HOLDER 2>/dev/null; cleanup' EXIT
log "idle-connections: $NTCP TCP + $NTLS TLS idle connections, ulimit -n $(ulimit -n); work dir $WORK"
rb_config "$WORK" "$SIP_PORT" "$ADMIN_PORT"
start_deskline "$WORK" "$WORK/deskline.toml"
rb_users $((REGS * 3)) 1000 >/dev/null || die "could not create the users"
RSS0=$(rb_rss "$DESKLINE_PID")

log "baseline: $REGS registrations over UDP and TCP with no idle connections"
python3 "$RB_DIR/regclient.py" 127.0.0.1 "$SIP_PORT" 1000 "$REGS" udp | tee "$WORK/base-udp.txt"
python3 "$RB_DIR/regclient.py" 127.0.0.1 "$SIP_PORT" 1000 "$REGS" tcp | tee "$WORK/base-tcp.txt"

log "opening the idle connections"
LO0=$(netstat -s 2>/dev/null | awk '/times the listen queue of a socket overflowed/ {print $1}')
# one holder process per 15,000 connections (each process is under the same open-files limit)
NH=$(( (NTCP + NTLS + 14999) / 15000 )); HOLDER=""
for h in $(seq 0 $((NH - 1))); do
  python3 -u "$RB_DIR/holdconns.py" 127.0.0.1 "$SIP_PORT" $(( NTCP / NH )) $((SIP_PORT + 1)) $(( NTLS / NH )) 4 >"$WORK/holder.$h.log" 2>&1 &
  HOLDER="$HOLDER $!"
done
for _ in $(seq 1 900); do
  [ "$(cat "$WORK"/holder.*.log 2>/dev/null | grep -c '^OPEN')" -ge "$NH" ] && break; sleep 1
done
grep -h '^OPEN' "$WORK"/holder.*.log
OPENED=$(cat "$WORK"/holder.*.log | sed -n 's/^OPEN tcp+tls=\([0-9]*\).*/\1/p' | awk '{s+=$1} END{print s+0}')
sleep 2
METRIC=$(curl -s "$ADMIN_URL/metrics" | grep '^deskline_open_connections' | tr '\n' ' ')
RSS1=$(rb_rss "$DESKLINE_PID")
info "deskline_open_connections: $METRIC"
info "server RSS: $RSS0 KiB before, $RSS1 KiB with the connections ($(( (RSS1 - RSS0) * 1024 / (OPENED > 0 ? OPENED : 1) )) B per connection)"

log "a new phone registers while they are held: $REGS over UDP, $REGS over TCP"
python3 "$RB_DIR/regclient.py" 127.0.0.1 "$SIP_PORT" $((1000 + REGS)) "$REGS" udp | tee "$WORK/held-udp.txt"
python3 "$RB_DIR/regclient.py" 127.0.0.1 "$SIP_PORT" $((1000 + 2 * REGS)) "$REGS" tcp 127.0.0.1 | tee "$WORK/held-tcp.txt"

log "holding for $HOLD s"
sleep "$HOLD"
METRIC2=$(curl -s "$ADMIN_URL/metrics" | grep '^deskline_open_connections' | tr '\n' ' ')
# server side of the connections: sockets deskline accepted (ESTABLISHED with our local port)
SRV=$(( $(ss -Htn state established "( sport = :$SIP_PORT or sport = :$((SIP_PORT + 1)) )" | wc -l) ))
LO1=$(netstat -s 2>/dev/null | awk '/times the listen queue of a socket overflowed/ {print $1}')
info "server-side established sockets: $SRV; listen-queue overflows during the run: $(( ${LO1:-0} - ${LO0:-0} )) (a client whose final ACK was dropped believes it is connected)"
info "deskline_open_connections after the hold: $METRIC2"
kill -TERM $HOLDER; wait $HOLDER 2>/dev/null; HOLDER=""
grep -h '^FINAL' "$WORK"/holder.*.log
FINAL_OPEN=$(cat "$WORK"/holder.*.log | sed -n 's/^FINAL open=\([0-9]*\).*/\1/p' | awk '{s+=$1} END{print s+0}')
CLOSED=$(cat "$WORK"/holder.*.log | sed -n 's/^FINAL.*closed_by_peer=\([0-9]*\)/\1/p' | awk '{s+=$1} END{print s+0}')
alive=1; kill -0 "$DESKLINE_PID" 2>/dev/null || alive=0

want=$(( (NTCP / NH + NTLS / NH) * NH ))
[ -n "$CAPPED" ] && RESULTS+=("LIMIT: 50,000 not reachable on this machine: $CAPPED; the run used $want")
[ "$OPENED" -ge "$want" ] && pass "$OPENED of $want idle connections opened" || fail "only $OPENED of $want idle connections opened"
[ "${CLOSED:-1}" = 0 ] && [ "$alive" = 1 ] && pass "all held ${HOLD}+ s, none closed by the server (${FINAL_OPEN} open at the end)" \
  || fail "${CLOSED:-?} connections closed by the server while idle (alive=$alive)"
metric_total=$(echo "$METRIC2" | awk '{for(i=2;i<=NF;i+=2) s+=$i} END{print s+0}')
[ "$metric_total" -ge "$SRV" ] && pass "deskline_open_connections reports $metric_total after the hold = server-side sockets $SRV ($METRIC2; 2 s after opening: $METRIC)" \
  || fail "deskline_open_connections reports $metric_total for $SRV server-side sockets after the hold ($METRIC2)"
for t in udp tcp; do
  ok=$(sed -n 's/^RESULT ok=\([0-9]*\).*/\1/p' "$WORK/held-$t.txt"); p99=$(sed -n 's/.* p99=\([0-9.]*\) .*/\1/p' "$WORK/held-$t.txt")
  ap99=$(sed -n 's/.*auth_p99=\([0-9.a-z]*\).*/\1/p' "$WORK/held-$t.txt")
  bp99=$(sed -n 's/.* p99=\([0-9.]*\) .*/\1/p' "$WORK/base-$t.txt")
  if [ "$ok" = "$REGS" ] && python3 -c "import sys; sys.exit(0 if float('$ap99') < 2.0 else 1)"; then
    pass "$t: $ok/$REGS new phones registered with $OPENED idle connections held; authenticated REGISTER p99 $ap99 ms (< 2 ms); whole exchange p99 $p99 ms (baseline $bp99 ms)"
  else
    fail "$t: $ok/$REGS registered; authenticated REGISTER p99 $ap99 ms (bar < 2 ms); whole exchange p99 $p99 ms (baseline $bp99 ms)"
  fi
done
stop_deskline
summary
