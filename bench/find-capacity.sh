#!/bin/bash
# Origin: copied from the shared bench harness /work/shared/bench/find-capacity.sh (Kamailio baseline
# harness, BASELINE.md); adapted for deskline's bench/ (see bench/README.md).
# Capacity sweep: REPS repetitions of each target rate, interleaved
# (rep 1: all rates, rep 2: all rates, ...), then a markdown summary.
#
#   find-capacity.sh MODE [RATE ...]        MODE = auth | noauth
#
# Environment:
#   REPS=3  DURATION=25 (seconds per run)  TRANSPORT=u1  USERS=10000
#   HOST=127.0.0.1 PORT=5070
#   START_KAMAILIO=1   (re)start the reference Kamailio for MODE via kamailio/start.sh
#                      and stop it at the end; set 0 to measure another server that
#                      is already running on HOST:PORT (then set SERVER_PID for CPU)
#   RESULTS=file.jsonl (default /tmp/regbench/capacity-MODE-TRANSPORT-<time>.jsonl)
#   PAUSE=3            seconds between runs
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MODE="${1:?usage: find-capacity.sh auth|noauth [RATE ...]}"; shift
RATES=("$@")
if [ ${#RATES[@]} -eq 0 ]; then
  if [ "$MODE" = noauth ]; then RATES=(4000 8000 12000 16000 20000); else RATES=(2000 4000 6000 8000 10000); fi
fi
REPS="${REPS:-3}"; DURATION="${DURATION:-25}"; PAUSE="${PAUSE:-3}"
HOST="${HOST:-127.0.0.1}"; PORT="${PORT:-5070}"
export TRANSPORT="${TRANSPORT:-u1}" USERS="${USERS:-10000}" MODE
RESULTS="${RESULTS:-/tmp/regbench/capacity-$MODE-$TRANSPORT-$(date +%Y%m%d-%H%M%S).jsonl}"
mkdir -p "$(dirname "$RESULTS")"
if [ "${START_KAMAILIO:-1}" = 1 ]; then
  "$HERE/kamailio/stop.sh" --port "$PORT" 2>/dev/null || true
  if [ "$MODE" = noauth ]; then
    "$HERE/kamailio/start.sh" --noauth --port "$PORT" --users "$USERS" >/dev/null
  else
    "$HERE/kamailio/start.sh" --port "$PORT" --users "$USERS" >/dev/null
  fi
  trap '"$HERE/kamailio/stop.sh" --port "$PORT"' EXIT
fi
echo "results -> $RESULTS" >&2
for rep in $(seq 1 "$REPS"); do
  for rate in "${RATES[@]}"; do
    count=$((rate * DURATION))
    LABEL="rep$rep" "$HERE/run-register-bench.sh" "$HOST" "$PORT" "$rate" "$count" >"$RESULTS.tmp" || true
    grep '^RESULT ' "$RESULTS.tmp" | cut -c8- >>"$RESULTS"
    grep -E '^(successful|failed|achieved|server CPU)' "$RESULTS.tmp" | sed "s/^/[rep $rep rate $rate] /" >&2
    sleep "$PAUSE"
  done
done
rm -f "$RESULTS.tmp"
python3 "$HERE/lib/summarise.py" "$RESULTS"
