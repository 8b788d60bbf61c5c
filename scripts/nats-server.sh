#!/usr/bin/env bash
# Finds a nats-server >= 2.11 and prints its path on stdout; installs one into the
# project-local cache from Debian's archive when none is found (Debian/Ubuntu only).
#
#   bash scripts/nats-server.sh            # print the path (install if needed)
#   bash scripts/nats-server.sh --check    # print the path, never install (exit 1 if none)
#
# Order: $NATS_SERVER_BIN, then nats-server on PATH, then .cache/nats-server/<ver>/nats-server.
# Debian bookworm ships 2.9.x, which has no per-message TTL: that one is refused. Installs only
# the pinned minor (NATS_PINNED_MINOR); a found binary of another minor >= 2.11 is used as it is.
set -euo pipefail

MIN_MAJOR=2
MIN_MINOR=11
# The minor the tests pin server behaviour on (TTL clamping, markers, atomic batches) and the only
# one this script installs; docker-compose.yml's nats image is the same (test/compose checks it).
NATS_PINNED_MINOR=2.15
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${NATS_SERVER_CACHE:-$ROOT/.cache/nats-server}"
MODE="${1:-}"

log() { echo "nats-server.sh: $*" >&2; }

# Prints the version (x.y.z) of the binary $1, or nothing.
version_of() {
  "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1
}

recent_enough() {
  local v="$1" major minor
  major="${v%%.*}"
  minor="${v#*.}"
  minor="${minor%%.*}"
  [[ -n "$major" && -n "$minor" ]] || return 1
  ((major > MIN_MAJOR || (major == MIN_MAJOR && minor >= MIN_MINOR)))
}

# Succeeds (and prints the path) when $1 is an executable nats-server that is recent enough.
accept() {
  local bin="$1" origin="$2" v
  [[ -x "$bin" ]] || return 1
  v="$(version_of "$bin")"
  if recent_enough "$v"; then
    echo "$bin"
    return 0
  fi
  log "ignoring $origin $bin: version '${v:-unknown}' is older than $MIN_MAJOR.$MIN_MINOR (no Nats-TTL)"
  return 1
}

if [[ -n "${NATS_SERVER_BIN:-}" ]]; then
  accept "$NATS_SERVER_BIN" "NATS_SERVER_BIN" && exit 0
  log "NATS_SERVER_BIN=$NATS_SERVER_BIN is not a usable nats-server >= $MIN_MAJOR.$MIN_MINOR"
  exit 1
fi

if command -v nats-server >/dev/null 2>&1; then
  accept "$(command -v nats-server)" "PATH" && exit 0
fi

for cached in "$CACHE"/*/nats-server; do
  [[ -e "$cached" ]] || continue
  accept "$cached" "cache" && exit 0
done

if [[ "$MODE" == "--check" ]]; then
  log "no nats-server >= $MIN_MAJOR.$MIN_MINOR found"
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  log "no nats-server >= $MIN_MAJOR.$MIN_MINOR found, and this is not a Debian/Ubuntu machine."
  log "Install one, then run again (or set NATS_SERVER_BIN):"
  log "  brew install nats-server"
  log "  docker run -p 4222:4222 nats:2.11 -js      (the official image, 2.11 or later)"
  log "  go install github.com/nats-io/nats-server/v2@latest"
  exit 1
fi

# Debian sid ships 2.11+; its .deb is a static Go binary that runs on bookworm. The apt
# client is pointed at a throw-away sources list, so the machine's apt setup is untouched.
log "installing nats-server from Debian's archive into $CACHE"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
echo "deb http://deb.debian.org/debian sid main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
attempt=1
until apt-get "${apt_opts[@]}" -qq update >&2; do
  ((attempt < 3)) || { log "apt-get update failed 3 times"; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done
(cd "$work" && apt-get "${apt_opts[@]}" -qq download nats-server >&2)
dpkg -x "$work"/nats-server_*.deb "$work/x"
bin="$work/x/usr/sbin/nats-server"
v="$(version_of "$bin")"
if ! recent_enough "$v"; then
  log "Debian's archive served nats-server '${v:-unknown}', older than $MIN_MAJOR.$MIN_MINOR"
  exit 1
fi
if [[ "${v%.*}" != "$NATS_PINNED_MINOR" ]]; then
  log "Debian's archive served nats-server $v, not the pinned $NATS_PINNED_MINOR.x: run the tests on it,"
  log "then move NATS_PINNED_MINOR here and the nats image in docker-compose.yml together"
  exit 1
fi
mkdir -p "$CACHE/$v"
install -m 0755 "$bin" "$CACHE/$v/nats-server"
log "installed nats-server $v"
echo "$CACHE/$v/nats-server"
