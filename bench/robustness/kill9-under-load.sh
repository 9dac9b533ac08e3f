#!/usr/bin/env bash
# kill -9 under REGISTER load, then restart on the same config and data: every binding that got a
# 200 OK must be back with its expiry; no binding may appear for a user that never registered.
#
#   bench/robustness/kill9-under-load.sh [USERS=10000] [RATE=2000 calls/s] [KILL_AFTER=3 s]
#
# deskline (release) with USERS users/devices (admin API); sipp bench/sipp/register_auth.xml over
# UDP (REGISTER -> 401 -> REGISTER with MD5 digest -> 200), one user per call, Expires 1800
# (capped by max_expires 3600), with -trace_msg so every 200 OK (its To user, Contact and granted
# expires, and its arrival time) is in sipp's message log. After KILL_AFTER seconds deskline gets
# SIGKILL; sipp runs to its end (the rest time out), then deskline restarts on the same data dir
# and GET /api/v1/registrations is compared with the log (check-kill9.py).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need sipp curl python3
N="${1:-10000}"; RATE="${2:-2000}"; KILL_AFTER="${3:-3}"
SIP_PORT="${SIP_PORT:-15070}"; ADMIN_PORT="${ADMIN_PORT:-19080}"
WORK="$(mktemp -d /tmp/deskline-kill9.XXXXXX)"
trap 'cleanup' EXIT
log "kill9-under-load: $N users, sipp REGISTER+auth over UDP at $RATE calls/s, SIGKILL after ${KILL_AFTER}s; work dir $WORK"
rb_config "$WORK" "$SIP_PORT" "$ADMIN_PORT"
start_deskline "$WORK" "$WORK/deskline.toml"
rb_users "$N" 1000 || die "could not create the users"
CSV="$(rb_sipp_users "$N" 1000 "$WORK/users")"

log "sipp: $N calls at $RATE/s (message log $WORK/sipp_messages.log)"
( cd "$WORK" && exec timeout 600 sipp "127.0.0.1:$SIP_PORT" -sf "$REPO/bench/sipp/register_auth.xml" -inf "$CSV" \
    -key expires 1800 -m "$N" -r "$RATE" -t u1 -i 127.0.0.1 -p 15170 -nostdin \
    -trace_msg -message_file sipp_messages.log -trace_stat -stf stats.csv -fd 1 \
    -recv_timeout 2000 -timeout 300s >sipp.out 2>&1 ) &
SIPP=$!
sleep "$KILL_AFTER"
T_KILL=$(date +%s.%N)
kill -KILL "$DESKLINE_PID"; wait "$DESKLINE_PID" 2>/dev/null
info "deskline pid $DESKLINE_PID killed with SIGKILL at $(date -u +%T.%N)"
DESKLINE_PID=""
wait "$SIPP"; info "sipp exited ($?): $(grep -E 'Successful call|Failed call' "$WORK/sipp.out" | tail -2 | tr -s ' ' | tr '\n' ' ')"

log "restart on the same config and data dir"
T0=$(date +%s.%N)
mv "$WORK/stdout.log" "$WORK/stdout.1.log"; mv "$WORK/stderr.log" "$WORK/stderr.1.log"
start_deskline "$WORK" "$WORK/deskline.toml"
info "restart to ready: $(python3 -c "print(round($(date +%s.%N)-$T0,2))") s"
api GET /api/v1/registrations >"$WORK/registrations.json"
[ "$API_STATUS" = 200 ] || die "GET /api/v1/registrations -> $API_STATUS"
T_QUERY=$(date +%s.%N)

log "compare sipp's 200 OKs with the restored bindings"
python3 "$RB_DIR/check-kill9.py" "$WORK/sipp_messages.log" "$WORK/registrations.json" "$T_KILL" "$T_QUERY" "$N" | tee "$WORK/check.txt"
while IFS= read -r line; do
  case "$line" in PASS:*) pass "${line#PASS: }" ;; FAIL:*) fail "${line#FAIL: }" ;; esac
done <"$WORK/check.txt"
stop_deskline
summary
