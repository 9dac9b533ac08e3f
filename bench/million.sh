#!/bin/bash
# One million bindings in one deskline process; restart (SIGTERM and kill -9) with all of them back.
#   bench/million.sh [COUNT=1000000] [RATE=4000]
# Builds nothing: run `cargo build --release` first. Everything else is in lib/million.py (its
# docstring says what it measures); extra flags go through, e.g. --sip-port, --admin-port, --bin.
# Needs: sipp, python3, ~3 GiB RAM and ~2 GiB disk under /tmp/regbench per million.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
COUNT="${1:-1000000}"; RATE="${2:-4000}"
shift $(( $# > 2 ? 2 : $# ))
[ -x "$HERE/../target/release/deskline" ] || { echo "no target/release/deskline: cargo build --release first" >&2; exit 1; }
command -v sipp >/dev/null || { echo "sipp is missing (apt-get install sip-tester)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 "$HERE/lib/million.py" --count "$COUNT" --rate "$RATE" "$@"
