# shellcheck shell=bash
# Shared by the robustness scripts (sourced). Builds on ci/lib.sh (start_deskline, stop_deskline, api).
#   rb_config WORK SIP_PORT ADMIN_PORT [EXTRA_SIP_TOML]  writes WORK/deskline.toml (MD5 only: sipp)
#   rb_users N [FIRST]                                     users u<n> + devices (SIP user n, password pw<n>)
#   rb_metric NAME_REGEX                                   sum of the matching /metrics samples
#   rb_rss PID                                             RSS in KiB
# Everything runs on loopback. The release binary is used unless DESKLINE_BIN is set.
RB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$RB_DIR/../.." && pwd)"
cd "$REPO"
DESKLINE_BIN="${DESKLINE_BIN:-$REPO/target/release/deskline}"
. "$REPO/ci/lib.sh"
RESULTS=()

[ -x "$DESKLINE_BIN" ] || { echo "no $DESKLINE_BIN: run cargo build --release first" >&2; exit 1; }

rb_config() { # WORK SIP_PORT ADMIN_PORT [EXTRA lines for [sip]]
  local w="$1" sp="$2" ap="$3" extra="${4:-}"
  mkdir -p "$w/certs"
  cat >"$w/deskline.toml" <<TOML
domain = "pbx.test"
data_dir = "$w/data"

[sip]
udp = ["127.0.0.1:$sp"]
tcp = ["127.0.0.1:$sp"]
tls = ["127.0.0.1:$((sp + 1))"]
realm = "pbx.test"
digest_algorithms = ["MD5"]
max_expires = 3600
$extra

[tls]
cert = "$w/certs/server.pem"
key = "$w/certs/server.key"

[provisioning]
https = ["127.0.0.1:$((ap + 1))"]
templates = "$REPO/provisioning-templates"

[admin]
listen = "127.0.0.1:$ap"
TOML
}

rb_users() { # N [FIRST]
  python3 "$RB_DIR/mkusers.py" "$ADMIN_URL" "$TOKEN" "$1" "${2:-1000}"
}

rb_metric() { # REGEX -> sum of samples whose "name{labels}" matches
  curl -s "$ADMIN_URL/metrics" | awk -v re="$1" '$1 ~ re { s += $2 } END { printf "%d\n", s }'
}

rb_rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

pass() { RESULTS+=("PASS: $*"); printf '  \033[32mPASS\033[0m %s\n' "$*"; }
fail() { RESULTS+=("FAIL: $*"); printf '  \033[31mFAIL\033[0m %s\n' "$*"; }
summary() { # exit status = number of FAILs
  local f=0 r
  echo; echo "=== $(basename "$0") summary ($(date -u +%FT%TZ), $(nproc) cores, $(uname -r))"
  for r in "${RESULTS[@]}"; do echo "  $r"; case "$r" in FAIL*) f=$((f + 1)) ;; esac; done
  [ "$f" = 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL ($f)"
  return "$f"
}

# sipp injection file for users FIRST..FIRST+N-1 (field0 user, field2 the [authentication] keyword)
rb_sipp_users() { # N FIRST OUT
  bash "$REPO/bench/sipp/gen-users.sh" "$1" "$2" "$3" >/dev/null
  echo "$3/users.csv"
}
