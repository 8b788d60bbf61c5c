#!/usr/bin/env bash
# Prints the path of a redis-server on stdout, installing Debian's package when none is found.
# The bench's BullMQ peer needs it; nothing else in the project does.
#
#   bash bench/scripts/redis-server.sh           # print the path (install if needed)
#   bash bench/scripts/redis-server.sh --check   # print the path, never install (exit 1 if none)
set -euo pipefail

log() { echo "redis-server.sh: $*" >&2; }

found() {
  if [[ -n "${REDIS_SERVER_BIN:-}" ]]; then
    [[ -x "$REDIS_SERVER_BIN" ]] && echo "$REDIS_SERVER_BIN" && return 0
    log "REDIS_SERVER_BIN=$REDIS_SERVER_BIN is not executable"
    return 1
  fi
  command -v redis-server 2>/dev/null && return 0
  [[ -x /usr/bin/redis-server ]] && echo /usr/bin/redis-server && return 0
  return 1
}

found && exit 0
if [[ "${1:-}" == "--check" ]]; then
  log "no redis-server found (set REDIS_SERVER_BIN or run without --check to install Debian's redis-server)"
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  log "no redis-server found and apt-get is not available: install Redis 6.2 or later yourself"
  log "(e.g. brew install redis, or the redis container image) and set REDIS_SERVER_BIN to its redis-server"
  exit 1
fi
if [[ "$(id -u)" != "0" ]]; then
  SUDO="sudo -n"
  log "not root: trying sudo -n for apt-get"
else
  SUDO=""
fi

log "installing redis-server with apt-get (Debian's package; the bench starts its own instance, no service needed)"
export DEBIAN_FRONTEND=noninteractive
# The package's postinst may try to start the system service; a policy-rc.d that says no keeps
# the machine's init out of it (the bench runs its own redis-server on its own port).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" && -z "$SUDO" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
cleanup() { if ((made_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT

if ! $SUDO apt-get install -y --no-install-recommends redis-server >&2; then
  log "apt-get install failed; updating the package lists once and retrying"
  $SUDO apt-get update >&2 || { log "apt-get update failed: is the Debian archive reachable?"; exit 1; }
  $SUDO apt-get install -y --no-install-recommends redis-server >&2 || {
    log "apt-get install -y redis-server failed; install Redis yourself and set REDIS_SERVER_BIN"
    exit 1
  }
fi
found || { log "redis-server was installed but is not on PATH"; exit 1; }
