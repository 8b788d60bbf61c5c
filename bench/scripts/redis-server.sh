#!/usr/bin/env bash
# Prints the path of a redis-server on stdout, installing Debian's package when none is found.
# The bench's two BullMQ peers need it (one Redis without persistence, one with
# `--appendonly yes --appendfsync always`); nothing else in the project does.
#
# Before printing the path it checks that this redis-server is recent enough for BullMQ (6.2+)
# and that it runs with an append-only file fsync'd on every write in a temp dir like the one the
# bench uses: it starts one on a unix socket only (no TCP port), inside a fresh temp dir, waits
# for it to write its append-only file, then stops it by its pid and deletes the dir.
#
#   bash bench/scripts/redis-server.sh           # print the path (install if needed)
#   bash bench/scripts/redis-server.sh --check   # print the path, never install (exit 1 if none)
set -euo pipefail

log() { echo "redis-server.sh: $*" >&2; }

# redis-server's version is at least 6.2 (BullMQ's minimum).
recent_enough() {
  local version major minor
  version=$("$1" --version | sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p')
  IFS=. read -r major minor _ <<<"$version"
  if ((major > 6 || (major == 6 && minor >= 2))); then return 0; fi
  log "$1 is Redis ${version:-of unknown version}; BullMQ needs 6.2 or later (set REDIS_SERVER_BIN to another)"
  return 1
}

# The check's redis-server and temp dir, stopped by its pid and deleted on any exit.
check_pid=""
check_dir=""
made_policy=0
policy=/usr/sbin/policy-rc.d
SUDO=""
on_exit() {
  if [[ -n "$check_pid" ]]; then kill "$check_pid" 2>/dev/null || true; fi
  if [[ -n "$check_dir" ]]; then rm -rf "$check_dir"; fi
  if ((made_policy)); then $SUDO rm -f "$policy"; fi
}
trap on_exit EXIT

# Starts redis-server as the fsync-always peer does and checks it wrote its append-only file.
fsync_always_works() {
  local bin=$1 i
  check_dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-redis-check.XXXXXX")
  "$bin" --port 0 --unixsocket "$check_dir/redis.sock" --save "" --appendonly yes --appendfsync always \
    --dir "$check_dir" --daemonize no >"$check_dir/log" 2>&1 &
  check_pid=$!
  local ok=1
  for ((i = 0; i < 100; i++)); do
    # Redis 7 keeps its append-only files in appendonlydir/, 6.x in appendonly.aof.
    if grep -qi "ready to accept connections" "$check_dir/log" 2>/dev/null &&
      [[ -n "$(find "$check_dir" -name '*.aof*' -print -quit)" ]]; then
      ok=0
      break
    fi
    kill -0 "$check_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ((ok)); then
    log "$bin did not start with --appendonly yes --appendfsync always in $check_dir; its log:"
    sed 's/^/  /' "$check_dir/log" >&2 || true
  fi
  kill "$check_pid" 2>/dev/null || true
  wait "$check_pid" 2>/dev/null || true
  check_pid=""
  rm -rf "$check_dir"
  check_dir=""
  return "$ok"
}

checked() {
  local bin
  bin=$(found) || return 1
  recent_enough "$bin" || exit 1
  fsync_always_works "$bin" || exit 1
  echo "$bin"
}

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

checked && exit 0
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
fi

log "installing redis-server with apt-get (Debian's package; the bench starts its own instance, no service needed)"
export DEBIAN_FRONTEND=noninteractive
# The package's postinst may try to start the system service; a policy-rc.d that says no keeps
# the machine's init out of it (the bench runs its own redis-server on its own port).
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && made_policy=1
fi

if ! $SUDO apt-get install -y --no-install-recommends redis-server >&2; then
  log "apt-get install failed; updating the package lists once and retrying"
  $SUDO apt-get update >&2 || { log "apt-get update failed: is the Debian archive reachable?"; exit 1; }
  $SUDO apt-get install -y --no-install-recommends redis-server >&2 || {
    log "apt-get install -y redis-server failed; install Redis yourself and set REDIS_SERVER_BIN"
    exit 1
  }
fi
checked || { log "redis-server was installed but is not on PATH"; exit 1; }
