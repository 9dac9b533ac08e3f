#!/usr/bin/env bash
# curl, as a phone, fetches its config from deskline's HTTPS provisioning server:
#   1. `deskline certs init` makes a server CA, a device CA and a client certificate for one MAC;
#   2. a user and a device (Yealink) made through the admin API;
#   3. with the device certificate: 200, the Yealink config with the line enabled and its secret;
#   4. without proof, or with the certificate of another MAC: 401, the same bytes for a known and
#      an unknown MAC (no secret);
#   5. the user deactivated: the same fetch shows the line disabled, the suspension message, and no
#      secret; reactivated: enabled again.
#   ci/provisioning-curl.sh      (from the repo root; DESKLINE_BIN=target/debug/deskline)
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
need curl jq

MAC=805ec0a1b2c3
OTHER=805ec0d4e5f6
UA="Yealink SIP-T46U 108.86.0.45 80:5e:c0:a1:b2:c3"
WORK="$(mktemp -d /tmp/deskline-prov.XXXXXX)"
trap 'cleanup; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

log "provisioning: certificates for device $MAC and $OTHER"
"$DESKLINE_BIN" certs init "$WORK/certs" --device "$MAC" --device "$OTHER" >/dev/null
for f in ca.pem server.pem device-ca.pem "devices/$MAC.pem" "devices/$MAC.key"; do
  [ -s "$WORK/certs/$f" ] || die "certs init wrote no $f"
done
[ "$(stat -c %a "$WORK/certs/devices/$MAC.key")" = 600 ] || die "device key is not mode 0600"

cat >"$WORK/deskline.toml" <<EOF
domain = "pbx.test"
data_dir = "$WORK/data"
[sip]
udp = ["127.0.0.1:0"]
tcp = []
tls = ["127.0.0.1:0"]
realm = "pbx.test"
[tls]
cert = "$WORK/certs/server.pem"
key = "$WORK/certs/server.key"
device_ca = ["$WORK/certs/device-ca.pem"]
[provisioning]
https = ["127.0.0.1:0"]
templates = "$PWD/provisioning-templates"
[admin]
listen = "127.0.0.1:0"
EOF
start_deskline "$WORK" "$WORK/deskline.toml"
HTTPS="$(listener 'HTTPS provisioning')"
info "HTTPS provisioning on $HTTPS"

api_expect 201 POST /api/v1/users '{"username":"alice","display_name":"Alice Example","extension":"1001"}' >/dev/null
api_expect 201 POST /api/v1/devices "{\"mac\":\"$MAC\",\"user\":\"alice\",\"vendor\":\"yealink\",\"model\":\"T46U\"}" >/dev/null
SECRET="$(api GET "/api/v1/devices/$MAC/sip-credentials" | jq -r .password)"
[ -n "$SECRET" ] && [ "$SECRET" != null ] || die "no SIP credentials for $MAC"

fetch() { # OUT_FILE [curl args...] -> prints the HTTP status
  local out="$1"; shift
  curl -sS -o "$out" -w '%{http_code}' --cacert "$WORK/certs/ca.pem" -A "$UA" "$@" "https://$HTTPS/$MAC.cfg" || echo 000
}
with_cert=(--cert "$WORK/certs/devices/$MAC.pem" --key "$WORK/certs/devices/$MAC.key")

log "fetch with the device certificate"
code="$(fetch "$WORK/active.cfg" "${with_cert[@]}")"
[ "$code" = 200 ] || die "fetch with the device certificate answered $code"
grep -q '^account.1.enable *= *1' "$WORK/active.cfg" || die "active config has no enabled line: $(cat "$WORK/active.cfg")"
grep -qF "$SECRET" "$WORK/active.cfg" || die "active config does not carry the device's secret"
info "200, line enabled, the device's own secret"

log "fetch without proof, and with another MAC's certificate"
code="$(fetch "$WORK/anon.out")"; [ "$code" = 401 ] || die "no proof answered $code"
code="$(fetch "$WORK/other.out" --cert "$WORK/certs/devices/$OTHER.pem" --key "$WORK/certs/devices/$OTHER.key")"
[ "$code" = 401 ] || die "another MAC's certificate answered $code"
code="$(curl -sS -o "$WORK/unknown.out" -w '%{http_code}' --cacert "$WORK/certs/ca.pem" -A "$UA" "https://$HTTPS/001565000001.cfg")"
[ "$code" = 401 ] || die "unknown MAC answered $code"
cmp -s "$WORK/anon.out" "$WORK/unknown.out" || die "known and unknown MACs get different bodies"
! grep -qF "$SECRET" "$WORK/anon.out" "$WORK/other.out" || die "a secret leaked without proof"
info "401 each time, identical bodies for known and unknown MACs, no secret"

log "deactivate alice: the config shows the line disabled and the message"
api_expect 200 POST /api/v1/users/alice/deactivate >/dev/null
code="$(fetch "$WORK/suspended.cfg" "${with_cert[@]}")"
[ "$code" = 200 ] || die "suspended fetch answered $code"
grep -q '^account.1.enable *= *0' "$WORK/suspended.cfg" || die "suspended config keeps the line enabled"
grep -q 'Account Suspended' "$WORK/suspended.cfg" || die "suspended config has no message"
! grep -qF "$SECRET" "$WORK/suspended.cfg" || die "suspended config still carries the secret"
info "line disabled, 'Account Suspended', no secret"

api_expect 200 POST /api/v1/users/alice/reactivate >/dev/null
code="$(fetch "$WORK/again.cfg" "${with_cert[@]}")"
grep -q '^account.1.enable *= *1' "$WORK/again.cfg" || die "reactivated config has no enabled line"
last="$(api GET "/api/v1/devices/$MAC" | jq -r .last_config_fetch.file)"
[ "$last" = "$MAC.cfg" ] || die "the device does not record its last fetch ($last)"
info "reactivated: line enabled again; the device records its last fetch ($last)"
log "provisioning-curl: OK"
