#!/bin/bash
# Deactivate a user with 20 bound phones: time from the API call to its answer, and to the last
# NOTIFY the phones receive; median of 5 runs (bars: < 50 ms answer, < 100 ms last NOTIFY).
#
#   bench/deactivate.sh            (env: PHONES=20 RUNS=5 DPORT=5084 DADMIN=9085 OUT=result.json)
#
# Starts its own fresh deskline instance "deact" (release build, SIP UDP on DPORT, admin on
# DADMIN, max_contacts_per_aor = 32 so that 20 phones fit on one address of record) and drives it
# with lib/deactivate.py (20 simulated phones: UDP sockets, REGISTER with digest MD5, 200 OK to
# every NOTIFY). Stops the instance on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PHONES="${PHONES:-20}"; RUNS="${RUNS:-5}"; DPORT="${DPORT:-5084}"; DADMIN="${DADMIN:-9085}"
OUT="${OUT:-/tmp/regbench/deactivate.json}"
trap 'python3 "$HERE/lib/deskline.py" stop deact 2>/dev/null || true' EXIT
python3 "$HERE/lib/deskline.py" stop deact 2>/dev/null || true
python3 "$HERE/lib/deskline.py" start deact --fresh --sip-port "$DPORT" --admin-port "$DADMIN" \
  --set sip.max_contacts_per_aor=32 >/dev/null
python3 "$HERE/lib/deactivate.py" --name deact --sip-port "$DPORT" --phones "$PHONES" --runs "$RUNS" --out "$OUT"
