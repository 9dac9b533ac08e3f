#!/bin/bash
# Deactivate 10,000 users (one registered phone each) in one batch request while 1,000 other users
# keep registering: time to the API answer, time until every phone got its NOTIFY, and the p99
# REGISTER latency of the others before / during / after the batch; median of RUNS runs
# (bar: < 5 s, the others' REGISTER p99 stays < 2 ms).
#
#   bench/deactivate-batch.sh   (env: BATCH=10000 OTHERS=1000 RATE=250 RUNS=3 DPORT=5086 DADMIN=9087
#                                SIPP_PORT=15086 OUT=/tmp/regbench/deactivate-batch.json
#                                EXTRA=--timeline: the others' latency per 100 ms, on stderr)
#
# Starts its own fresh deskline instance "batch" (release build, SIP UDP on DPORT, admin on DADMIN,
# MD5 only, auth throttle off: lib/deskline.py) and drives it with lib/deactivate_batch.py: the
# batch's phones are Python UDP sockets that register and answer every NOTIFY, the others are sipp
# (sipp/register_auth.xml at RATE calls/s = 2*RATE REGISTERs/s) captured with dumpcap on lo.
# Stops the instance on exit. Prints the command, date and machine with the figures.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BATCH="${BATCH:-10000}"; OTHERS="${OTHERS:-1000}"; RATE="${RATE:-250}"; RUNS="${RUNS:-3}"
DPORT="${DPORT:-5086}"; DADMIN="${DADMIN:-9087}"; SIPP_PORT="${SIPP_PORT:-15086}"
OUT="${OUT:-/tmp/regbench/deactivate-batch.json}"
mkdir -p "$(dirname "$OUT")"
[ -x "$HERE/../target/release/deskline" ] || (cd "$HERE/.." && cargo build --release)
trap 'python3 "$HERE/lib/deskline.py" stop batch 2>/dev/null || true' EXIT
python3 "$HERE/lib/deskline.py" stop batch 2>/dev/null || true
python3 "$HERE/lib/deskline.py" start batch --fresh --sip-port "$DPORT" --admin-port "$DADMIN" >/dev/null
python3 "$HERE/lib/deactivate_batch.py" --name batch --sip-port "$DPORT" --sipp-port "$SIPP_PORT" \
  --batch "$BATCH" --others "$OTHERS" --rate "$RATE" --runs "$RUNS" --out "$OUT" ${EXTRA:-} >/dev/null
python3 - "$OUT" "$0" <<'PY'
import json, os, platform, subprocess, sys, time
r = json.load(open(sys.argv[1]))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
env = " ".join(f"{k}={os.environ[k]}" for k in ("BATCH", "OTHERS", "RATE", "RUNS", "EXTRA", "DESKLINE_LOG") if k in os.environ)
print(f"command: {env + ' ' if env else ''}{sys.argv[2]}")
print(f"date:    {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
print(f"machine: {platform.node()} {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}")
print(f"load:    {r['batch']} users deactivated in one request; {r['others']} others registering at "
      f"{r['rate_calls_s']} calls/s ({2 * r['rate_calls_s']} REGISTER/s, sipp, PCAP latencies)\n")
print("| run | answer ms | every NOTIFY ms | notified | others p99 before | p99 during (n) | p99 after | during max |")
print("|---|---|---|---|---|---|---|---|")
for x in r["runs"]:
    b, d, a = x["others_before"], x["others_during"], x["others_after"]
    print(f"| {x['run']} | {x['answer_ms']} | {x['last_notify_ms']} | {x['notifies']}/{x['phones']} | "
          f"{b['p99']} | {d['p99']} ({d['n']}) | {a['p99']} | {d['max']} |")
print(f"| median | {r['answer_ms_median']} | {r['last_notify_ms_median']} | "
      f"{'all' if r['all_notified'] else 'NOT all'} | {r['others_p99_before_median']} | "
      f"{r['others_p99_during_median']} | {r['others_p99_after_median']} | |")
print("\nbars: every NOTIFY < 5000 ms; others' REGISTER p99 during < 2 ms.  raw: " + sys.argv[1])
PY
