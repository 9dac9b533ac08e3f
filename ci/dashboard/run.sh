#!/usr/bin/env bash
# The admin dashboard (GET /) in the system's headless Chromium, driven by playwright-core:
#   1. a deskline server on ephemeral loopback ports with a temp data dir (ci/lib.sh);
#   2. `npm ci` of playwright-core (pinned in package-lock.json; no browser download: it uses
#      /usr/bin/chromium);
#   3. ci/dashboard/dashboard-test.mjs: users + devices through the API, the page given the admin
#      token, phones register over UDP (ci/dashboard/phone.py, SHA-256/MD5 digest) and show up in
#      the registrations table live, a screenshot to docs/dashboard.png, "Deactivate" clicked ->
#      the row leaves, the user shows suspended, the phone's next REGISTER gets 403.
#
#   ci/dashboard/run.sh      (from anywhere; DESKLINE_BIN=target/debug/deskline, built if missing)
# Environment: CHROMIUM (/usr/bin/chromium), SCREENSHOT (docs/dashboard.png),
#              KEEP_WORK=1 keeps the temp dir (it is kept anyway when the test fails).
# Needs: chromium, node (>= 18) + npm, python3, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
. ci/lib.sh
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export SCREENSHOT="${SCREENSHOT:-$ROOT/docs/dashboard.png}"
need node npm python3 curl
[ -x "$CHROMIUM" ] || { echo "FAIL: no Chromium at $CHROMIUM (apt-get install chromium; .ci/run does)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/deskline-dashboard.XXXXXX)"
RESULT=1
on_exit() {
  cleanup
  if [ "$RESULT" = 0 ] && [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK" >&2; fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

if [ ! -x "$DESKLINE_BIN" ]; then
  log "no $DESKLINE_BIN: cargo build"
  cargo build
fi

log "npm ci (playwright-core, no browser download)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
( cd ci/dashboard && npm ci --no-audit --no-fund --loglevel=error )
info "node $(node --version), playwright-core $(node -p 'require("./ci/dashboard/node_modules/playwright-core/package.json").version')"
info "$("$CHROMIUM" --version 2>/dev/null | head -n1)"

DOMAIN="pbx.test"
log "dashboard: deskline on ephemeral loopback ports, work dir $WORK"
mkdir -p "$WORK/certs"
cat >"$WORK/deskline.toml" <<EOF
domain = "$DOMAIN"
data_dir = "$WORK/data"

[sip]
udp = ["127.0.0.1:0"]
tcp = ["127.0.0.1:0"]
tls = ["127.0.0.1:0"]
realm = "$DOMAIN"

[tls]
cert = "$WORK/certs/server.pem"
key = "$WORK/certs/server.key"

[provisioning]
https = ["127.0.0.1:0"]
templates = "$ROOT/provisioning-templates"

[admin]
listen = "127.0.0.1:0"
EOF
start_deskline "$WORK" "$WORK/deskline.toml"

log "headless Chromium against $ADMIN_URL/"
export ADMIN_URL TOKEN SIP_UDP WORK
export SIP_DOMAIN="$DOMAIN"
if ! node ci/dashboard/dashboard-test.mjs; then
  dump_server_logs
  printf '\n\033[1;31mFAIL: the dashboard test failed (see above)\033[0m\n' >&2
  exit 1
fi
stop_deskline
RESULT=0
log "dashboard: PASS (screenshot: ${SCREENSHOT#"$ROOT"/})"
