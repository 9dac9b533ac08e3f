#!/usr/bin/env bash
# Offered load at 3x capacity: no crash, RSS bounded, the excess answered 503 + Retry-After, and
# back to 0 failures at normal load afterwards.
#
#   bench/robustness/overload.sh [CAPACITY calls/s (default: ramp to find it)] [USERS=20000] [SECONDS=30]
#
# One sipp "call" = REGISTER -> 401 -> REGISTER (MD5 digest) -> 200, so calls/s x 2 = REGISTERs/s.
# Capacity ramp: 5 s at 500, 1000, 2000, 3000, 4000, 6000, 8000 calls/s; capacity = the highest
# step with < 0.1 % failed calls. Overload: sipp at 3 x capacity for SECONDS, RSS sampled every
# second; 503s are counted from /metrics and from sipp's error log (-trace_err logs every
# unexpected answer with its headers: Retry-After is checked there). Recovery: 15 s at capacity/2.
# The overload is offered by SIPP_PROCS sipp processes (default 3), each at 3 x capacity / SIPP_PROCS:
# one sipp cannot send much more than deskline serves on 2 cores (measured 2026-12-07: at 30,000
# calls/s one sipp lost 647,527 calls at its own socket while deskline dropped nothing and needed
# no 503), so several share the load, and the CPU they take is what the server must shed against.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need sipp curl python3
CAP="${1:-}"; N="${2:-20000}"; SECS="${3:-30}"
SIP_PORT="${SIP_PORT:-15080}"; ADMIN_PORT="${ADMIN_PORT:-19090}"
WORK="$(mktemp -d /tmp/deskline-overload.XXXXXX)"
trap 'cleanup' EXIT
log "overload: $N users; work dir $WORK"
rb_config "$WORK" "$SIP_PORT" "$ADMIN_PORT"
start_deskline "$WORK" "$WORK/deskline.toml"
rb_users "$N" 1000 || die "could not create the users"
CSV="$(rb_sipp_users "$N" 1000 "$WORK/users")"
LPORT=15190

run_sipp() { # NAME RATE SECONDS [LOCAL_PORT] -> prints "ok failed"
  local name="$1" rate="$2" secs="$3" calls=$(( $2 * $3 ))
  LPORT=$((LPORT + 1))
  local port="${4:-$LPORT}"
  ( cd "$WORK" && timeout $((secs + 90)) sipp "127.0.0.1:$SIP_PORT" -sf "$REPO/bench/sipp/register_auth.xml" -inf "$CSV" \
      -key expires 3600 -m "$calls" -r "$rate" -t u1 -i 127.0.0.1 -p "$port" -nostdin \
      -nd -trace_err -error_file "$name.errors.log" -trace_stat -stf "$name.stats.csv" -fd 1 \
      -recv_timeout 3000 -timeout $((secs + 60))s >"$name.out" 2>&1 )
  awk -F';' 'NR==1 { for (i=1;i<=NF;i++) col[$i]=i; next } { last=$0 }
      END { split(last, f, ";"); printf "%d %d\n", f[col["SuccessfulCall(C)"]], f[col["FailedCall(C)"]] }' "$WORK/$name.stats.csv"
}

if [ -z "$CAP" ]; then
  log "capacity ramp (5 s per step)"
  CAP=0
  for r in 500 1000 2000 3000 4000 6000 8000; do
    read -r ok failed < <(run_sipp "ramp-$r" "$r" 5)
    info "$r calls/s: successful=$ok failed=$failed"
    if [ $((ok + failed)) -gt 0 ] && [ $((failed * 1000)) -lt $((ok + failed)) ]; then CAP=$r; else break; fi
    kill -0 "$DESKLINE_PID" || die "deskline died during the ramp"
  done
  [ "$CAP" -gt 0 ] || die "no step without failures"
  info "capacity (rough, sipp on the same 2 cores): $CAP calls/s = $((CAP * 2)) REGISTERs/s"
fi
OVER=$((CAP * 3)); NORMAL=$((CAP / 2))
m503_0=$(rb_metric 'deskline_register_responses_total\{status="503"\}')
RSS0=$(rb_rss "$DESKLINE_PID")
# kernel drops on a UDP socket bound to 127.0.0.1:PORT (last column of /proc/net/udp)
udp_drops() { awk -v p="$(printf '0100007F:%04X' "$1")" '$2==p {print $NF}' /proc/net/udp | head -1; }
D0=$(udp_drops "$SIP_PORT")

PROCS="${SIPP_PROCS:-3}"
log "overload: $OVER calls/s (3 x $CAP) for $SECS s from $PROCS sipp processes; RSS every second"
PIDS=()
for i in $(seq 1 "$PROCS"); do
  run_sipp "overload$i" $((OVER / PROCS)) "$SECS" $((LPORT + 100 + i)) >"$WORK/overload$i.result" &
  PIDS+=($!)
done
any_running() { for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
: >"$WORK/rss.txt"
while any_running; do echo "$(date +%s) $(rb_rss "$DESKLINE_PID")" >>"$WORK/rss.txt"; sleep 1; done
wait "${PIDS[@]}"
read -r ok failed < <(cat "$WORK"/overload*.result | awk '{o += $1; f += $2} END {printf "%d %d\n", o, f}')
alive=1; kill -0 "$DESKLINE_PID" 2>/dev/null || alive=0
DROPS=$(( $(udp_drops "$SIP_PORT") - D0 ))
info "datagrams dropped by the kernel at deskline's UDP socket (receive buffer full): $DROPS"
m503=$(( $(rb_metric 'deskline_register_responses_total\{status="503"\}') - m503_0 ))
# sipp (-nd) logs each unexpected answer with the whole message: "... received 'SIP/2.0 503 ..."
# (or "Dead call ... received '...") and its header lines; only 503s carry Retry-After here.
e503=$(cat "$WORK"/overload*.errors.log 2>/dev/null | grep -o "SIP/2.0 503" | wc -l)
eRA=$(cat "$WORK"/overload*.errors.log 2>/dev/null | grep -ci '^Retry-After: *[0-9]'); eRA=${eRA:-0}
reasons=$(cat "$WORK"/overload*.errors.log 2>/dev/null | grep -o "SIP/2.0 503[^']*" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
RSSMAX=$(awk '$2>m{m=$2} END{print m+0}' "$WORK/rss.txt")
RSSEND=$(tail -1 "$WORK/rss.txt" | awk '{print $2}')
# growth over the second half of the run (KiB/s): bounded means ~flat
SLOPE=$(awk '{t[NR]=$1; r[NR]=$2} END { h=int(NR/2); if (NR-h<2) {print 0; exit}; printf "%.0f\n", (r[NR]-r[h+1])/((t[NR]-t[h+1])>0?(t[NR]-t[h+1]):1) }' "$WORK/rss.txt")
info "$PROCS sipps at $OVER calls/s: successful=$ok failed=$failed (goodput $((ok / SECS)) calls/s vs capacity $CAP); server alive=$alive"
info "503 answers: $m503 (metrics deskline_register_responses_total{status=\"503\"}), $e503 seen by sipp, $eRA of them with Retry-After; reasons: ${reasons:-none}"
info "RSS KiB: before $RSS0, max $RSSMAX, end $RSSEND, slope over the 2nd half ${SLOPE} KiB/s"
[ "$alive" = 1 ] && pass "no crash at 3x capacity ($OVER calls/s offered, $ok calls succeeded)" || fail "deskline died under 3x capacity"
if [ "$RSSMAX" -lt $((RSS0 + 512 * 1024)) ] && [ "$SLOPE" -lt 2048 ]; then
  pass "memory bounded (RSS $RSS0 -> max $RSSMAX KiB, 2nd-half slope $SLOPE KiB/s)"
else
  fail "memory not bounded (RSS $RSS0 -> max $RSSMAX KiB, 2nd-half slope $SLOPE KiB/s)"
fi
if [ "$m503" -gt 0 ] && [ "$e503" -gt 0 ] && [ "$eRA" -ge "$e503" ]; then
  pass "excess answered 503 with Retry-After ($m503 by metrics; $e503 at sipp, all with Retry-After)"
elif [ "$failed" = 0 ]; then
  fail "no 503 at $OVER calls/s and no failures: the offered load did not overload the server (sipp-bound?)"
else
  fail "excess not answered 503 + Retry-After ($m503 by metrics, $e503 at sipp, $eRA with Retry-After; $failed failed calls)"
fi

log "recovery: $NORMAL calls/s for 15 s (after 5 s of quiet)"
sleep 5
read -r ok failed < <(run_sipp recovery "$NORMAL" 15)
info "sipp at $NORMAL calls/s: successful=$ok failed=$failed"
[ "$failed" = 0 ] && [ "$ok" -gt 0 ] && pass "back to normal: $ok calls, 0 failures at $NORMAL calls/s" || fail "after overload: $failed failures of $((ok + failed)) at $NORMAL calls/s"
stop_deskline
summary
