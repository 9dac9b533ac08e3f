#!/bin/bash
# Origin: copied from the shared bench harness /work/shared/bench/kamailio/stop.sh (Kamailio baseline
# harness, BASELINE.md); adapted for deskline's bench/ (see bench/README.md).
# Stop the Kamailio started by start.sh (only the pid it recorded).
#   kamailio/stop.sh [--port N]
set -u
PORT=5070
[ "${1:-}" = "--port" ] && PORT="$2"
PIDFILE=/tmp/regbench/kamailio-$PORT.pid
[ -f "$PIDFILE" ] || { echo "no pid file $PIDFILE" >&2; exit 0; }
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null && grep -q kamailio "/proc/$PID/cmdline" 2>/dev/null; then
  kill -TERM "$PID"
  for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
  echo "stopped kamailio pid $PID" >&2
else
  echo "pid $PID not running (or not kamailio)" >&2
fi
rm -f "$PIDFILE" "$PIDFILE.kam"
