# shellcheck shell=bash
# Shared helpers for the CI scripts (sourced, not run).
#   start_deskline WORKDIR CONFIG   runs `deskline serve --config CONFIG` in the background, waits for
#                                   `deskline: ready`, sets DESKLINE_PID ADMIN_URL TOKEN SIP_UDP SIP_TCP
#   stop_deskline                   SIGTERM (then SIGKILL) the server started above
#   api METHOD PATH [JSON]          admin API call; body on stdout, status in $API_STATUS
#   api_expect CODE METHOD PATH [JSON]   the same, fails unless the status is CODE
# Everything talks to loopback only.

DESKLINE_BIN="${DESKLINE_BIN:-target/debug/deskline}"
DESKLINE_PID=""
BG_PIDS=()

log()  { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
info() { printf '  - %s\n' "$*"; }
die()  { printf '\n\033[1;31mFAIL: %s\033[0m\n' "$*" >&2; dump_server_logs; exit 1; }

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "FAIL: '$c' is not installed (apt-get install it first; .ci/run does)" >&2; exit 1; }
  done
}

dump_server_logs() {
  if [ -n "${DESKLINE_WORK:-}" ] && [ -d "$DESKLINE_WORK" ]; then
    echo "--- deskline stdout ($DESKLINE_WORK/stdout.log) ---" >&2
    tail -n 30 "$DESKLINE_WORK/stdout.log" >&2 2>/dev/null || true
    echo "--- deskline stderr, last 60 lines ($DESKLINE_WORK/stderr.log) ---" >&2
    tail -n 60 "$DESKLINE_WORK/stderr.log" >&2 2>/dev/null || true
  fi
}

cleanup() {
  local p
  for p in "${BG_PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  stop_deskline
}

# Reads `deskline: listening for KIND on ADDR` lines from the server's stdout.
listener() { # KIND
  sed -n "s/^deskline: listening for $1 on //p" "$DESKLINE_WORK/stdout.log" | head -n1 | sed 's#^https\?://##; s#/$##'
}

start_deskline() { # WORKDIR CONFIG
  DESKLINE_WORK="$1"; local cfg="$2"
  [ -x "$DESKLINE_BIN" ] || die "no server binary at $DESKLINE_BIN (run cargo build first)"
  info "starting $DESKLINE_BIN serve --config $cfg"
  "$DESKLINE_BIN" serve --config "$cfg" >"$DESKLINE_WORK/stdout.log" 2>"$DESKLINE_WORK/stderr.log" </dev/null &
  DESKLINE_PID=$!
  for _ in $(seq 1 300); do
    if grep -qx 'deskline: ready' "$DESKLINE_WORK/stdout.log" 2>/dev/null; then break; fi
    if ! kill -0 "$DESKLINE_PID" 2>/dev/null; then
      DESKLINE_PID=""
      die "deskline exited before printing 'deskline: ready'"
    fi
    sleep 0.1
  done
  grep -qx 'deskline: ready' "$DESKLINE_WORK/stdout.log" || die "deskline printed no 'deskline: ready' within 30 s"
  sed 's/^/    | /' "$DESKLINE_WORK/stdout.log"
  local admin; admin="$(listener 'admin API')"
  [ -n "$admin" ] || die "deskline printed no admin API address"
  ADMIN_URL="http://$admin"
  SIP_UDP="$(listener 'SIP\/UDP')"
  SIP_TCP="$(listener 'SIP\/TCP')"
  local token_file
  token_file="$(sed -n 's/^deskline: admin token written to //p' "$DESKLINE_WORK/stdout.log" | head -n1)"
  [ -n "$token_file" ] || token_file="$DESKLINE_WORK/data/admin.token"
  [ -r "$token_file" ] || die "cannot read the admin token at $token_file"
  TOKEN="$(tr -d '[:space:]' <"$token_file")"
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN_URL/healthz" || true)"
  [ "$code" = 200 ] || die "GET $ADMIN_URL/healthz answered $code"
  info "deskline pid $DESKLINE_PID ready: admin $ADMIN_URL, SIP/UDP $SIP_UDP, SIP/TCP $SIP_TCP, /healthz 200"
}

stop_deskline() {
  if [ -n "${DESKLINE_PID:-}" ]; then
    kill -TERM "$DESKLINE_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$DESKLINE_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$DESKLINE_PID" 2>/dev/null || true
    wait "$DESKLINE_PID" 2>/dev/null || true
    DESKLINE_PID=""
  fi
}

API_STATUS=""
api() { # METHOD PATH [JSON]  -> body on stdout, status in API_STATUS (via a file: subshells)
  local method="$1" path="$2" body="${3:-}" out
  out="$(mktemp)"
  local args=(-sS -o "$out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN")
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data "$body"); fi
  API_STATUS="$(curl "${args[@]}" "$ADMIN_URL$path" || echo 000)"
  echo "$API_STATUS" >"$DESKLINE_WORK/.api_status"
  cat "$out"; rm -f "$out"
}

api_expect() { # CODE METHOD PATH [JSON]
  local want="$1"; shift
  local body status
  body="$(api "$@")"
  status="$(cat "$DESKLINE_WORK/.api_status")"
  if [ "$status" != "$want" ]; then
    die "$1 $2 ${3:-} -> HTTP $status (expected $want): $body"
  fi
  printf '%s' "$body"
}
