#!/usr/bin/env bash
# sipp against deskline: N users made through the admin API, then bench/sipp/register_auth.xml
# (REGISTER -> 401 -> REGISTER with MD5 digest -> 200), one user per call, then
# bench/sipp/unregister.xml for the same users; over UDP, then over TCP. Requires 0 failed calls,
# N bindings after each register run and 0 after each unregister run. Prints the achieved rate.
#
#   ci/sipp-register.sh            (from the repo root; DESKLINE_BIN=target/debug/deskline)
# Environment: SIPP_USERS (100) SIPP_RATE (100 calls/s) SIPP_TRANSPORTS ("u1 t1")
#              SIP_PORT, ADMIN_PORT (0 = ephemeral, the default: the printed ports are used; set
#              e.g. SIP_PORT=5080 ADMIN_PORT=9081 for fixed ones) SIPP_LOCAL_PORT (15062)
#              KEEP_WORK=1 keeps the temp dir.
# Debian's sipp 3.6 knows MD5 digest only and reads only the first WWW-Authenticate row
# (SHA-256 first makes it fail with "authentication must use MD5"), so this server instance
# offers MD5 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
need sipp curl jq

N="${SIPP_USERS:-100}"
RATE="${SIPP_RATE:-100}"
TRANSPORTS="${SIPP_TRANSPORTS:-u1 t1}"
SIP_PORT="${SIP_PORT:-0}"
ADMIN_PORT="${ADMIN_PORT:-0}"
LOCAL_PORT="${SIPP_LOCAL_PORT:-15062}"
FIRST=1000

WORK="$(mktemp -d /tmp/deskline-sipp.XXXXXX)"
trap 'cleanup; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

log "sipp: deskline with SIP on 127.0.0.1:$SIP_PORT (UDP+TCP), admin on 127.0.0.1:$ADMIN_PORT (0: ephemeral), work dir $WORK"
cat >"$WORK/deskline.toml" <<EOF
domain = "pbx.test"
data_dir = "$WORK/data"

[sip]
udp = ["127.0.0.1:$SIP_PORT"]
tcp = ["127.0.0.1:$SIP_PORT"]
tls = ["127.0.0.1:0"]
realm = "pbx.test"
digest_algorithms = ["MD5"]

[tls]
cert = "$WORK/certs/server.pem"
key = "$WORK/certs/server.key"

[provisioning]
https = ["127.0.0.1:0"]
templates = "$PWD/provisioning-templates"

[admin]
listen = "127.0.0.1:$ADMIN_PORT"
EOF
mkdir -p "$WORK/certs"
start_deskline "$WORK" "$WORK/deskline.toml"

log "sipp: creating $N users and devices ($FIRST..$((FIRST + N - 1)), SIP user <n>, password pw<n>) via the admin API"
for n in $(seq "$FIRST" $((FIRST + N - 1))); do
  mac="$(printf '00a0c9%06x' "$n")"
  api_expect 201 POST /api/v1/users \
    "{\"username\":\"u$n\",\"display_name\":\"User $n\",\"extension\":\"$n\"}" >/dev/null
  api_expect 201 POST /api/v1/devices \
    "{\"mac\":\"$mac\",\"user\":\"u$n\",\"extension\":\"$n\",\"sip_username\":\"$n\",\"sip_password\":\"pw$n\"}" >/dev/null
done
info "created $N users and $N devices"

bench/sipp/gen-users.sh "$N" "$FIRST" "$WORK/users" >/dev/null
info "sipp injection file: $WORK/users/users.csv ($(($(wc -l <"$WORK/users/users.csv") - 1)) users)"

# Runs one sipp scenario; prints successful/failed/rate; returns sipp's exit status.
run_sipp() { # NAME SCENARIO TRANSPORT(u1|t1)
  local name="$1" scenario="$2" tr="$3" rc=0 target
  case "$tr" in u*) target="$SIP_UDP" ;; t*) target="$SIP_TCP" ;; *) die "unknown sipp transport $tr" ;; esac
  info "sipp $scenario -> $target: $N calls at $RATE/s, transport $tr (local port $LOCAL_PORT)"
  ( cd "$WORK" && timeout 180 sipp "$target" -sf "$OLDPWD/$scenario" -inf users/users.csv \
      -key expires 3600 -m "$N" -r "$RATE" -t "$tr" -i 127.0.0.1 -p "$LOCAL_PORT" \
      -nostdin -trace_err -trace_stat -stf "$name.stats.csv" -fd 1 -trace_screen \
      -timeout 120s -timeout_error -recv_timeout 5000 >"$name.out" 2>&1 ) || rc=$?
  local stats="$WORK/$name.stats.csv" ok="?" failed="?" rate="?" elapsed="?"
  if [ -s "$stats" ]; then
    read -r ok failed rate elapsed < <(awk -F';' '
      NR==1 { for (i=1;i<=NF;i++) col[$i]=i; next }
      { last=$0 }
      END { split(last, f, ";");
            printf "%s %s %s %s\n", f[col["SuccessfulCall(C)"]], f[col["FailedCall(C)"]], f[col["CallRate(C)"]], f[col["ElapsedTime(C)"]] }' "$stats")
  fi
  echo "  sipp $name: successful=$ok failed=$failed achieved_rate=${rate} calls/s elapsed=$elapsed exit=$rc"
  if [ "$rc" != 0 ] || [ "$failed" != 0 ] || [ "$ok" != "$N" ]; then
    echo "--- sipp output ($name) ---" >&2; tail -n 40 "$WORK/$name.out" >&2 || true
    for f in "$WORK"/*errors.log; do [ -f "$f" ] && { echo "--- $f ---" >&2; tail -n 30 "$f" >&2; }; done
    return 1
  fi
}

count_bindings() {
  api_expect 200 GET /api/v1/registrations | jq 'if type=="array" then length else ([.[]|arrays][0]|length) end'
}

for tr in $TRANSPORTS; do
  log "sipp ($tr): register_auth.xml"
  run_sipp "register-$tr" bench/sipp/register_auth.xml "$tr" || die "sipp register_auth ($tr): not every registration succeeded"
  count="$(count_bindings)"
  info "GET /api/v1/registrations lists $count bindings"
  [ "$count" = "$N" ] || die "expected $N bindings after the sipp run ($tr), the API lists $count"
  sample="$(api_expect 200 GET "/api/v1/registrations?aor=sip:$FIRST@pbx.test")"
  echo "$sample" | jq -e 'length == 1' >/dev/null || die "registrations?aor=sip:$FIRST@pbx.test: $sample"
  info "binding of $FIRST: $(echo "$sample" | jq -c '.[0] | {aor, contact, transport, device, user_agent, expires_in}')"

  log "sipp ($tr): unregister.xml (Contact: *, Expires: 0)"
  run_sipp "unregister-$tr" bench/sipp/unregister.xml "$tr" || die "sipp unregister ($tr): not every unregistration succeeded"
  count="$(count_bindings)"
  [ "$count" = 0 ] || die "expected 0 bindings after unregistering ($tr), the API lists $count"
  info "0 bindings left"
done

log "sipp: PASS ($N registrations and $N unregistrations over each of: $TRANSPORTS; 0 failures)"
