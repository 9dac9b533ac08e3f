#!/bin/bash
# Origin: copied from the shared bench harness /work/shared/bench/run-register-bench.sh (Kamailio baseline
# harness, BASELINE.md); adapted for deskline's bench/ (see bench/README.md).
# One REGISTER load run with sipp against any registrar on loopback.
#
#   run-register-bench.sh TARGET_HOST TARGET_PORT [RATE=500] [COUNT=RATE*25]
#
# RATE is in calls/s (sipp -r); one call is one registration:
#   MODE=auth   (default) sipp/register_auth.xml   REGISTER->401->REGISTER->200 (2 txn/call)
#   MODE=noauth           sipp/register_noauth.xml REGISTER->200 (1 txn/call)
# Environment (all optional):
#   TRANSPORT=u1|un|t1|tn   sipp transport (default u1 = UDP, one socket)
#   USERS=N                 users 1000..1000+N-1, password pw<user> (default 10000);
#                           the target must know the same users (kamailio/start.sh --users N)
#   SERVER_PID=pid          server process to account CPU for (pid + descendants);
#                           default: the Kamailio started by kamailio/start.sh on TARGET_PORT
#   SCENARIO=file.xml       other scenario (TXN_PER_CALL=n to say how many txn per call)
#   EXPIRES=3600            Expires of the REGISTERs
#   PCAP=1                  also capture loopback with dumpcap and report microsecond
#                           latencies (UDP only; costs CPU, do not use for capacity runs;
#                           the capture is deleted after parsing unless KEEP_PCAP=1)
#   LOCAL_PORT=15060        sipp's local port (fixed, so Contacts repeat across runs)
#   OUTDIR=dir              where sipp's files go (default /tmp/regbench/runs/<time>-...)
#   LABEL=text              free text copied into the JSON result
# Prints a summary and a "RESULT {json}" line; exit 0 iff no call failed.
# Only loopback targets are accepted.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { sed -n '2,25p' "$0"; exit 2; }
HOST="$1"; PORT="$2"; RATE="${3:-500}"; COUNT="${4:-0}"
if [ -z "${SERVER_PID:-}" ] && [ -f "/tmp/regbench/kamailio-$PORT.pid" ]; then
  SERVER_PID="$(cat "/tmp/regbench/kamailio-$PORT.pid")"
fi
export SERVER_PID="${SERVER_PID:-0}"
exec python3 "$HERE/lib/regbench.py" "$HOST" "$PORT" "$RATE" "$COUNT"
