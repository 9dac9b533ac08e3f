#!/bin/bash
# Origin: adapted from the shared bench harness /work/shared/bench/measure-memory.sh (Kamailio
# baseline harness, BASELINE.md): same method (register N distinct users once with sipp
# register_auth.xml at RATE calls/s, Expires 3600, and divide the memory growth by the bindings),
# extended to deskline.
#
#   measure-memory.sh [kamailio|deskline|both] [N]        (default: both 100000)
#
# Kamailio: started fresh on KPORT (default 5078) with N users and 1 GiB shm; memory = PSS summed
#   over all its processes (its memory is shared mmap, so per-process RSS would mislead), plus
#   its own allocator's "used" shm from kamcmd core.shmmem; bindings = usrloc location_contacts.
# deskline: a fresh instance "mem" (SIP UDP DPORT=5082, admin 9083, new data dir) with the same N
#   users and devices created (POST /api/v1/import, batches of 5,000) before the first snapshot; memory = RSS (and PSS) of the
#   one process; bindings = successful sipp registrations (one new binding each).
# One JSON line per server goes to OUT (default /tmp/regbench/memory.jsonl) and to stdout.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WHO="${1:-both}"; N="${2:-100000}"
KPORT="${KPORT:-5078}"; DPORT="${DPORT:-5082}"; DADMIN="${DADMIN:-9083}"; RATE="${RATE:-3000}"
OUT="${OUT:-/tmp/regbench/memory.jsonl}"
mkdir -p /tmp/regbench
CTL="unix:/tmp/regbench/kamailio-$KPORT.ctl"
cleanup() { "$HERE/kamailio/stop.sh" --port "$KPORT" 2>/dev/null || true; python3 "$HERE/lib/deskline.py" stop mem 2>/dev/null || true; }
trap cleanup EXIT

snap() {  # PID KIND -> "pss_kib rss_kib(max process) shm_used bindings nproc"
  python3 - "$1" "$2" "$CTL" "$DADMIN" <<'PY'
import os, subprocess, sys, urllib.request
root, kind, ctl, admin = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
kids = {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            s = open(f'/proc/{d}/stat').read()
        except OSError:
            continue
        kids.setdefault(int(s[s.rindex(')')+2:].split()[1]), []).append(int(d))
tree, todo = [], [root]
while todo:
    p = todo.pop(); tree.append(p); todo += kids.get(p, [])
pss = rss = 0
for p in tree:
    for line in open(f'/proc/{p}/smaps_rollup'):
        if line.startswith('Pss:'):
            pss += int(line.split()[1])
        elif line.startswith('Rss:'):
            rss = max(rss, int(line.split()[1]))
shm, contacts = -1, -1
if kind == 'kamailio':
    out = subprocess.run(['kamcmd', '-s', ctl, 'core.shmmem'], capture_output=True, text=True).stdout
    vals = {l.split(':')[0].strip(): int(l.split(':')[1]) for l in out.splitlines() if ':' in l}
    shm = vals.get('used', -1)
    st = subprocess.run(['kamcmd', '-s', ctl, 'stats.get_statistics', 'location_contacts'], capture_output=True, text=True).stdout
    contacts = int(st.split('=')[-1]) if '=' in st else -1
print(pss, rss, shm, contacts, len(tree))
PY
}

register_all() {  # PORT PID -> sipp summary lines; sets REG_OK
  local out
  out="$(OUTDIR="/tmp/regbench/runs/memory-$1-$N" SERVER_PID="$2" USERS="$N" MODE=auth \
    "$HERE/run-register-bench.sh" 127.0.0.1 "$1" "$RATE" "$N" || true)"
  echo "$out" | grep -E '^(successful|failed|achieved)' >&2
  REG_OK="$(echo "$out" | awk '/^successful calls/{print $4}')"
}

result() {  # server N before after ... -> JSON
  python3 - "$@" <<'PY' | tee -a "$OUT"
import json, sys
kind, n, p0, p1, r0, r1, u0, u1, b = sys.argv[1], *map(int, sys.argv[2:])
res = {"server": kind, "users": n, "bindings": b,
       "pss_before_KiB": p0, "pss_after_KiB": p1, "pss_per_binding_B": round((p1 - p0) * 1024 / max(1, b), 1),
       "rss_before_KiB": r0, "rss_after_KiB": r1, "rss_per_binding_B": round((r1 - r0) * 1024 / max(1, b), 1)}
if u0 >= 0:
    res["shm_used_per_binding_B"] = round((u1 - u0) / max(1, b), 1)
print(json.dumps(res))
PY
}

if [ "$WHO" = kamailio ] || [ "$WHO" = both ]; then
  "$HERE/kamailio/stop.sh" --port "$KPORT" 2>/dev/null || true
  PID="$("$HERE/kamailio/start.sh" --port "$KPORT" --users "$N" --shm 1024 2>/dev/null)"
  sleep 2
  read -r P0 R0 U0 C0 NP <<<"$(snap "$PID" kamailio)"
  echo "kamailio N=$N before: PSS $P0 KiB over $NP processes, max RSS $R0 KiB, shm used $U0, contacts $C0" >&2
  register_all "$KPORT" "$PID"
  sleep 2
  read -r P1 R1 U1 C1 NP <<<"$(snap "$PID" kamailio)"
  echo "kamailio N=$N after : PSS $P1 KiB, max RSS $R1 KiB, shm used $U1, contacts $C1" >&2
  result kamailio "$N" "$P0" "$P1" "$R0" "$R1" "$U0" "$U1" "$C1"
  "$HERE/kamailio/stop.sh" --port "$KPORT"
fi

if [ "$WHO" = deskline ] || [ "$WHO" = both ]; then
  python3 "$HERE/lib/deskline.py" stop mem 2>/dev/null || true
  PID="$(python3 "$HERE/lib/deskline.py" start mem --fresh --sip-port "$DPORT" --admin-port "$DADMIN" \
    $([ "${BINDINGS_FSYNC:-0}" = 1 ] && echo --set store.bindings_fsync=true))"
  python3 "$HERE/lib/deskline.py" import mem --first 1000 --count "$N" >/dev/null
  sleep 3
  read -r P0 R0 U0 C0 NP <<<"$(snap "$PID" deskline)"
  echo "deskline N=$N before: PSS $P0 KiB, RSS $R0 KiB" >&2
  register_all "$DPORT" "$PID"
  sleep 3
  read -r P1 R1 U1 C1 NP <<<"$(snap "$PID" deskline)"
  echo "deskline N=$N after : PSS $P1 KiB, RSS $R1 KiB" >&2
  result deskline "$N" "$P0" "$P1" "$R0" "$R1" -1 -1 "${REG_OK:-0}"
  python3 "$HERE/lib/deskline.py" stop mem
fi
