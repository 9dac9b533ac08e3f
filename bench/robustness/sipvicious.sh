#!/usr/bin/env bash
# Security scans against deskline on loopback:
#  1. svwar (extension enumeration) with REGISTER, REGISTER --force, OPTIONS, INVITE over
#     990-1030 (1000-1019 exist): must find none.
#  2. svcrack against a real extension (1000, password pw1000): a 17-word list with the password
#     13th, and a 2000-word list with it last; must not find it; the source must be throttled
#     (503 + Retry-After) after a few failures; the guess rate achieved is logged.
#     guess.py: a guesser that ignores the 503s keeps going for 60 s: the guess rate it achieves.
#  3. 10,000 guessed MACs (vendor file names) fetched over one HTTPS keep-alive connection with no
#     proof: 0 configs, 0 secrets, identical answers for known and unknown MACs (macscan.py).
#
#   bench/robustness/sipvicious.sh          (venv with sipvicious: /tmp/rb-venv, made when missing)
# Never uses sipvicious -R (reports over the internet) or -A.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need curl python3
V="${SIPVICIOUS_VENV:-/tmp/rb-venv}"
if [ ! -x "$V/bin/sipvicious_svwar" ]; then
  python3 -m venv "$V" && "$V/bin/pip" install -q sipvicious || die "pip install sipvicious failed"
fi
SIP_PORT="${SIP_PORT:-15100}"; ADMIN_PORT="${ADMIN_PORT:-19110}"
WORK="$(mktemp -d /tmp/deskline-svv.XXXXXX)"
trap 'cleanup' EXIT
log "sipvicious: work dir $WORK"
rb_config "$WORK" "$SIP_PORT" "$ADMIN_PORT"
start_deskline "$WORK" "$WORK/deskline.toml"
rb_users 20 1000 || die "could not create the users"
PROV="127.0.0.1:$((ADMIN_PORT + 1))"
COMMON=(-p "$SIP_PORT")

found_in() { grep -E '^\| *[0-9]+ *\|' "$1" | grep -v -i 'extension' | tr -s ' ' | tr '\n' ' '; }
run() { # NAME CMD...  (time-boxed; output in WORK/NAME.txt)
  local name="$1"; shift
  local t0; t0=$(date +%s.%N)
  timeout 300 "$@" >"$WORK/$name.txt" 2>&1; local rc=$?
  ELAPSED=$(python3 -c "print(round($(date +%s.%N)-$t0,2))")
  info "$name (rc=$rc, ${ELAPSED} s): ${*#"$V/bin/"}"
  grep -v -E '^\s*$' "$WORK/$name.txt" | grep -v -E '^\+|^\| *Extension' | cut -c1-150 | head -4 | sed 's/^/      /'
}

log "1. svwar: extension enumeration (1000-1019 exist)"
for m in REGISTER REGISTER-force OPTIONS INVITE; do
  args=(-m "${m%-force}"); [ "$m" = REGISTER-force ] && args+=(--force)
  run "svwar-$m" "$V/bin/sipvicious_svwar" "${args[@]}" "${COMMON[@]}" -e 990-1030 127.0.0.1
  f="$(found_in "$WORK/svwar-$m.txt")"
  [ -z "$f" ] && pass "svwar $m over 990-1030 finds no extension" || fail "svwar $m found: $f"
done

log "2. svcrack against extension 1000"
{ printf '%s\n' 123456 password 1234 admin secret pw999 pw1001 letmein 0000 1000 qwerty pass pw1000 111111 abc123 voip sip; } >"$WORK/words17.txt"
{ seq -f 'guess%04g' 1 1999; echo pw1000; } >"$WORK/words2000.txt"
for wl in words17 words2000; do
  f0=$(rb_metric '^deskline_auth_failures_total'); t0=$(rb_metric 'deskline_register_responses_total\{status="503"\}')
  run "svcrack-$wl" "$V/bin/sipvicious_svcrack" "${COMMON[@]}" -u 1000 -d "$WORK/$wl.txt" 127.0.0.1
  fails=$(( $(rb_metric '^deskline_auth_failures_total') - f0 )); thr=$(( $(rb_metric 'deskline_register_responses_total\{status="503"\}') - t0 ))
  rate=$(python3 -c "print(round($fails/max($ELAPSED,0.01),2))")
  info "server: $fails digest checks failed, $thr REGISTERs answered 503 (throttled) in $ELAPSED s -> guess rate achieved $rate guesses/s ($fails guesses checked of $(wc -l <"$WORK/$wl.txt") offered)"
  if grep -q 'pw1000' "$WORK/svcrack-$wl.txt" && [ -n "$(found_in "$WORK/svcrack-$wl.txt")" ]; then
    fail "svcrack ($wl) found the password: $(found_in "$WORK/svcrack-$wl.txt")"
  else
    pass "svcrack ($wl) did not find the password ($fails guesses checked in $ELAPSED s, $rate/s)"
  fi
  [ "$thr" -gt 0 ] && [ "$fails" -le 20 ] && pass "source throttled after $fails failures ($thr answers 503)" \
    || fail "not throttled: $fails failed guesses, $thr throttled answers"
done
log "2b. the throttle's 503 carries Retry-After (one REGISTER by hand from the throttled source)"
python3 - "$SIP_PORT" >"$WORK/throttled.txt" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.settimeout(3)
p = s.getsockname()[1]
m = (f"REGISTER sip:127.0.0.1:{sys.argv[1]} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKthr1\r\nMax-Forwards: 70\r\n"
     f"From: <sip:1000@127.0.0.1>;tag=t\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: thr1\r\nCSeq: 1 REGISTER\r\n"
     f"Contact: <sip:1000@127.0.0.1:{p}>\r\nAuthorization: Digest username=\"1000\", realm=\"pbx.test\", nonce=\"x\", uri=\"sip:127.0.0.1\", response=\"00000000000000000000000000000000\"\r\nContent-Length: 0\r\n\r\n")
s.sendto(m.encode(), ("127.0.0.1", int(sys.argv[1])))
print(s.recv(65535).decode(errors="replace"))
PY
head -1 "$WORK/throttled.txt" | sed 's/^/      /'; grep -i '^Retry-After' "$WORK/throttled.txt" | sed 's/^/      /'
if grep -q '^SIP/2.0 503' "$WORK/throttled.txt" && grep -qi '^Retry-After: *[0-9]' "$WORK/throttled.txt"; then
  pass "a throttled source gets 503 with Retry-After"
else
  fail "throttled source answer: $(head -1 "$WORK/throttled.txt" | tr -d '\r')"
fi

log "2c. a persistent guesser that ignores the 503s (guess.py, 60 s from 127.0.0.3)"
python3 "$RB_DIR/guess.py" 127.0.0.1 "$SIP_PORT" 1001 60 127.0.0.3 | tee "$WORK/guess.txt"
gc=$(sed -n 's/^RESULT checked=\([0-9]*\).*/\1/p' "$WORK/guess.txt"); gr=$(sed -n 's/.*rate_per_min=\([0-9.]*\).*/\1/p' "$WORK/guess.txt")
[ -n "$gc" ] && [ "$gc" -le 25 ] && pass "persistent guesser: $gc guesses checked in 60 s ($gr/min; the rest answered 503 + Retry-After)" \
  || fail "persistent guesser: $gc guesses checked in 60 s ($gr/min)"

log "3. 10,000 guessed MACs over HTTPS keep-alive, no proof"
python3 "$RB_DIR/macscan.py" "$PROV" 10000 | tee "$WORK/macscan.txt"
while IFS= read -r line; do case "$line" in PASS:*) pass "${line#PASS: }" ;; FAIL:*) fail "${line#FAIL: }" ;; esac; done <"$WORK/macscan.txt"
log "4. the server logs hold no password (grep pw10 / guess / response= in stdout+stderr)"
leaks=$(grep -c -E 'pw10[0-9][0-9]|guess[0-9]{4}|response="?[0-9a-f]{32}' "$WORK/stderr.log" "$WORK/stdout.log" | awk -F: '{s+=$2} END{print s+0}')
[ "$leaks" = 0 ] && pass "no password or digest response in the server's logs ($(wc -l <"$WORK/stderr.log") lines)" || fail "$leaks log lines with a password or digest response"
stop_deskline
summary
